/**
 * A module's identity that is the same on every machine that has the same code: the package it
 * belongs to (its name, and its version when it is an installed dependency) and its path inside
 * that package, so that two modules with one source are told apart, while two checkouts of one
 * project in different folders share keys.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Package {
  root: string;
  label: string;
}

const packages = new Map<string, Package | null>();
const identities = new Map<string, string>();

function packageOf(dir: string): Package | null {
  const known = packages.get(dir);
  if (known !== undefined) return known;
  let found: Package | null = null;
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
    const name = typeof manifest.name === 'string' ? manifest.name : '';
    // an installed dependency changes only with its version; the project's own code is hashed
    const installed = dir.split(sep).includes('node_modules');
    const version = installed && typeof manifest.version === 'string' ? `@${manifest.version}` : '';
    found = { root: dir, label: `${name}${version}` };
  } catch {
    const parent = dirname(dir);
    found = parent === dir ? null : packageOf(parent);
  }
  packages.set(dir, found);
  return found;
}

/** `package[@version]:path/in/package.js` for a file URL; other URLs (node:, data:) as they are. */
export function moduleIdentity(url: string): string {
  const known = identities.get(url);
  if (known !== undefined) return known;
  let identity = url;
  if (url.startsWith('file:')) {
    try {
      const file = fileURLToPath(url);
      const owner = packageOf(dirname(file));
      if (owner !== null) identity = `${owner.label}:${relative(owner.root, file).split(sep).join('/')}`;
    } catch {
      // a URL that is not a path: kept whole
    }
  }
  identities.set(url, identity);
  return identity;
}

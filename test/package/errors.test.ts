/**
 * src/errors.ts is the one list of error classes and codes: the docs' table is generated from it,
 * every code the sources use is in it, every row in it is used, and both entries export every class.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as errors from '../../src/errors.js';
import * as core from '../../src/index.js';
import { errorTables, generatedPart } from '../helpers/error-table.js';

const root = join(import.meta.dirname, '..', '..');
const { CairnError, ERROR_CODES, WARNING_CODES } = errors;

/** Node's own codes that cairn reads off errors it did not make. */
const NODE_CODES = ['ERR_MODULE_NOT_FOUND', 'ERR_PARSE_ARGS_UNKNOWN_OPTION'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sources(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

const errorClasses = Object.entries(errors).filter(
  (entry): entry is [string, typeof CairnError] => typeof entry[1] === 'function' && (entry[1] === CairnError || entry[1].prototype instanceof CairnError),
);

describe('errors.ts lists every error', () => {
  it('docs/errors.md holds the table generated from ERROR_CODES and WARNING_CODES', () => {
    const page = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
    // on a mismatch, paste the expected text into the page
    expect(generatedPart(page)).toBe(errorTables());
  });

  it('every code used in src/ is listed, and every listed code is used', () => {
    const used = new Map<string, string>();
    for (const file of sources(join(root, 'src'))) {
      if (file.endsWith(join('src', 'errors.ts'))) continue;
      for (const match of readFileSync(file, 'utf8').matchAll(/'((?:ERR|CAIRN)_[A-Z0-9_]+)'/g)) used.set(match[1]!, relative(root, file));
    }
    const listed = [...Object.keys(ERROR_CODES), ...Object.keys(WARNING_CODES)];
    const unlisted = [...used].filter(([code]) => !listed.includes(code) && !NODE_CODES.includes(code));
    expect(unlisted).toEqual([]);
    // the defaults live in errors.ts itself (ERR_LOCATION, ERR_AUTH, the classes' own codes)
    const own = readFileSync(join(root, 'src', 'errors.ts'), 'utf8');
    const constructed = [...own.matchAll(/(?:super\(|\?\? |return )[^;]*?'((?:ERR)_[A-Z0-9_]+)'/g)].map((match) => match[1]!);
    expect(listed.filter((code) => !used.has(code) && !constructed.includes(code))).toEqual([]);
  });

  it('every class is listed with its codes, documented, and exported by the core entry and cairn-lake/errors', () => {
    const page = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
    const carriers = new Set(Object.values(ERROR_CODES).flatMap(({ classes }) => classes));
    expect(errorClasses.length).toBeGreaterThan(15);
    for (const [name, Class] of errorClasses) {
      expect(Class.name).toBe(name);
      expect(page, name).toContain(`| \`${name}\` |`);
      if (Class !== CairnError) expect(carriers.has(name as never), name).toBe(true);
      expect((core as Record<string, unknown>)[name], name).toBe(Class);
    }
    for (const name of carriers) expect(errorClasses.map(([exported]) => exported)).toContain(name);
  });

  it('an error names its class and carries its code and cause', () => {
    const cause = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    const error = new errors.LocationError('write failed', 'Disk(/lake)', { cause, code: errors.storageErrorCode(cause) });
    expect([error.name, error.code, error.cause, error.location]).toEqual(['LocationError', 'ERR_NO_SPACE', cause, 'Disk(/lake)']);
    expect(ERROR_CODES[error.code].classes).toContain('LocationError');
    const file = new errors.ConfigFileError('/x/cairn.config.yaml', 3, 'storage.disk', 'bad');
    expect([file.name, file.code, file.message]).toEqual(['ConfigFileError', 'ERR_CONFIG', '/x/cairn.config.yaml:3: storage.disk: bad']);
    expect(file).toBeInstanceOf(errors.ConfigError);
  });
});

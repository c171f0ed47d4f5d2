import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Location } from '../locations/interface.js';
import type { HashKeyStorage, HashKeyStorageOptions } from '../storage/hash-key-storage.js';
import { type BuildContext, kindOf, locationKinds } from './kinds.js';
import { type ConfigNode, parseConfigText } from './node.js';
import { fieldValue, stringValue } from './values.js';

/** The names looked for, in this order, in each folder from the working folder up. */
export const CONFIG_NAMES = ['cairn.config.yaml', 'cairn.config.yml', 'cairn.config.json'];

/** The nearest config file from `start` up to the root, or null. */
export function findConfig(start = process.cwd()): string | null {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    for (const name of CONFIG_NAMES) if (existsSync(join(dir, name))) return join(dir, name);
    if (dirname(dir) === dir) return null;
  }
}

/** What a config file describes: the arguments of `new HashKeyStorage(local, options)`. */
export interface StorageConfig {
  file: string;
  local: Location;
  options: HashKeyStorageOptions;
}

export interface LoadOptions {
  /** Where secrets (`${env:NAME}`) come from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where the search for a config file starts. @default the working folder */
  cwd?: string;
}

const TOP_FIELDS = ['storage', 'remote', 'fetch', 'error', 'labels'];

/**
 * Reads a config file (the given one, or the nearest `cairn.config.{yaml,yml,json}` from the
 * working folder up) and builds its locations. Errors are ConfigFileError: file, line, field.
 */
export async function loadConfig(path?: string, options: LoadOptions = {}): Promise<StorageConfig> {
  const file = path ? resolve(options.cwd ?? process.cwd(), path) : findConfig(options.cwd);
  if (file === null) {
    throw new ConfigError(`No config file found: looked for ${CONFIG_NAMES.join(', ')} in ${resolve(options.cwd ?? process.cwd())} and the folders above it`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read the config file ${file}: ${(error as Error).message}`, { cause: error });
  }
  const env = options.env ?? process.env;
  const top: ConfigNode = parseConfigText(text, file);
  if (!top.isMap) top.fail('a config file holds a mapping with at least `storage:`');
  const fields = new Map(top.entries());
  for (const [key, node] of fields) if (!TOP_FIELDS.includes(key)) node.fail(`unknown field "${key}" (known: ${TOP_FIELDS.join(', ')})`);
  const storage = fields.get('storage');
  if (!storage) top.fail('missing `storage:` (the location values are written to)');
  const context = { dir: dirname(file), env };
  const local = await buildLocation(storage, context);
  const result: HashKeyStorageOptions = {};
  const remote = fields.get('remote');
  if (remote && !remote.isNull) result.remote = await buildLocation(remote, context);
  const fetch = fields.get('fetch');
  if (fetch) result.fetch = fieldValue(fetch, 'boolean', env) as boolean;
  const error = fields.get('error');
  if (error) result.error = fieldValue(error, 'boolean', env) as boolean;
  const labels = fields.get('labels');
  if (labels) result.labels = labels.items().map((item) => stringValue(item, env));
  return { file, local, options: result };
}

/** Builds a location node: a string is a Disk folder, a list a Fanout, a mapping `{ <kind>: … }`. */
export async function buildLocation(
  node: ConfigNode,
  where: { dir: string; env: NodeJS.ProcessEnv },
  extra: readonly string[] = [],
): Promise<Location> {
  const build = (inner: ConfigNode, fields?: readonly string[]) => buildLocation(inner, where, fields);
  if (node.isScalar && typeof node.scalar === 'string') return kindOf('disk')!.factory(node, { ...where, build, siblings: new Map() });
  if (node.isSeq) return kindOf('fanout')!.factory(node, { ...where, build, siblings: new Map() });
  if (!node.isMap) node.fail(`expected a location: a folder, a list (Fanout) or one of ${locationKinds().join(', ')}`);
  const entries = node.entries();
  const kinds = entries.filter(([key]) => kindOf(key) !== undefined);
  if (kinds.length !== 1) {
    node.fail(kinds.length === 0
      ? `expected one of ${locationKinds().join(', ')}, got ${entries.map(([key]) => key).join(', ') || 'nothing'}`
      : `one location per mapping, got ${kinds.map(([key]) => key).join(' and ')}`);
  }
  const [name, inner] = kinds[0]!;
  const kind = kindOf(name)!;
  const siblings = new Map(entries.filter(([key]) => key !== name));
  // a typo beside the kind (`writes: false`) must not be ignored: it would change what the level does
  for (const [key, sibling] of siblings) {
    if (!kind.siblings.includes(key) && !extra.includes(key)) {
      const known = [...kind.siblings, ...extra];
      sibling.fail(`unknown field "${key}" beside \`${name}\`${known.length ? ` (known here: ${known.join(', ')})` : ''}`);
    }
  }
  const context: BuildContext = { ...where, build, siblings };
  return kind.factory(inner, context);
}

/** The storage a config file describes (`HashKeyStorage.fromConfig`). */
export async function storageFromConfig(path?: string, options: LoadOptions = {}): Promise<HashKeyStorage<boolean>> {
  const config = await loadConfig(path, options);
  const { HashKeyStorage } = await import('../storage/hash-key-storage.js');
  return new HashKeyStorage(config.local, config.options);
}

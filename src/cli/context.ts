import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CairnError } from '../errors.js';
import { Disk, type DiskOptions } from '../locations/disk.js';
import { HashKeyStorage } from '../storage/hash-key-storage.js';
import { ProgressView } from './progress.js';

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends CairnError {
  constructor(message: string) {
    super(message, 'ERR_USAGE');
  }
}

/** Options every command takes. */
export const COMMON = {
  config: { type: 'string', short: 'c' },
  lake: { type: 'string', short: 'l' },
  group: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

export function parse(args: string[], options: ParseArgsConfig['options'], positionals = true): Parsed {
  try {
    const { values, positionals: rest } = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: positionals, strict: true });
    return { values: values as Values, positionals: rest };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** The lake a command works on: `--lake DIR`, else `--config FILE`, else the nearest config file, else $CAIRN_LAKE. */
export async function openStorage(values: Values): Promise<HashKeyStorage> {
  const lake = str(values, 'lake');
  if (lake) return new HashKeyStorage(new Disk(lake, diskOptions(values)));
  const config = str(values, 'config');
  const { findConfig, storageFromConfig } = await import('../config/load.js');
  if (config || findConfig()) return storageFromConfig(config);
  if (process.env.CAIRN_LAKE) return new HashKeyStorage(new Disk(process.env.CAIRN_LAKE, diskOptions(values)));
  throw new UsageError('No lake: give --lake DIR, --config FILE, or put a cairn.config.yaml in this folder or above (see `cairn init`)');
}

export function diskOptions(values: Values): DiskOptions {
  const group = str(values, 'group');
  return group === undefined ? {} : { group, groupWritable: true };
}

/** A progress view on stderr, silent with --json or --quiet. */
export function progress(values: Values, label: string): ProgressView {
  return new ProgressView(label, process.stderr, !values.json && !values.quiet);
}

/** Writes to stdout and waits for it to drain (large outputs, pipes). */
export function out(text: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(text)) resolve();
    else process.stdout.once('drain', () => resolve());
  });
}

export function json(value: unknown): Promise<void> {
  return out(JSON.stringify(value, null, 2) + '\n');
}

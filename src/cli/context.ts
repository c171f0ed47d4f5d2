import { parseArgs, type ParseArgsConfig } from 'node:util';
import { debugLog } from '../debug.js';
import { UsageError } from '../errors.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_NAME } from '../locations/lake/config.js';
import { Disk, type DiskOptions } from '../locations/disk/disk.js';
import type { Location } from '../locations/interface.js';
import { PACKED_FILE } from '../locations/packed/packed-db.js';
import { HashKeyStorage } from '../storage/hash-key-storage.js';
import { nearest } from './help.js';
import { clearBars, ProgressView } from './progress.js';
import { optionsOf, specOf, type CommandSpec } from './spec.js';

export { UsageError } from '../errors.js';

/** The parser's view of a command's table: the options and short flags its help lists, no others. */
function parserOptions(spec: CommandSpec): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(
    optionsOf(spec).map((option) => [option.name, { type: option.arg ? 'string' : 'boolean', ...(option.short ? { short: option.short } : {}) } as const]),
  );
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  values: Values;
  positionals: string[];
}

/** parseArgs's message, shortened, with the nearest option for one it does not know. */
function explain(error: NodeJS.ErrnoException, spec: CommandSpec): string {
  const unknown = error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /Unknown option '(-{1,2}[^']+)'/.exec(error.message) : null;
  if (!unknown) return error.message;
  const typed = unknown[1]!.replace(/^-+/, '');
  const guess = nearest(typed, optionsOf(spec).map((option) => option.name));
  return `unknown option ${unknown[1]}${guess ? `: did you mean --${guess}?` : ''}`;
}

/** Parses the arguments of the command `name` against its table in spec.ts. */
export function parse(args: string[], name: string): Parsed {
  const spec = specOf(name);
  if (!spec) throw new Error(`no table for the command ${name}`);
  try {
    const { values, positionals } = parseArgs({ args, options: parserOptions(spec), allowPositionals: spec.positionals, strict: true });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new UsageError(`${explain(error as NodeJS.ErrnoException, spec)} (see \`cairn ${spec.name} --help\`)`);
  }
}

export function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

const log = debugLog('cli');

/**
 * The store in a lake folder: a Packed store when it holds `packed.db` (made by `cairn init
 * --packed`), else a Disk (tarn's layout, with its config.yml).
 */
export async function lakeAt(dir: string, given: string, values: Values, options: DiskOptions = {}): Promise<Location> {
  existingLake(dir, given);
  if (existsSync(join(dir, PACKED_FILE))) {
    const { Packed } = await import('../locations/packed/packed.js');
    return new Packed(dir);
  }
  return new Disk(dir, { ...diskOptions(values), ...options });
}

/** The lake a command works on: `--lake DIR`, else `--config FILE`, else the nearest config file, else $CAIRN_LAKE. */
export async function openStorage(values: Values): Promise<HashKeyStorage<boolean>> {
  const lake = str(values, 'lake');
  if (lake) {
    log(`lake from --lake: ${lake}`);
    return new HashKeyStorage(await lakeAt(lake, '--lake', values));
  }
  const config = str(values, 'config');
  const { findConfig, storageFromConfig } = await import('../config/load.js');
  const found = config ?? findConfig();
  if (found) {
    log(`storage from the config file ${found}`);
    return storageFromConfig(config);
  }
  log(`lake from $CAIRN_LAKE: ${process.env.CAIRN_LAKE || '(not set)'}`);
  if (process.env.CAIRN_LAKE) return new HashKeyStorage(await lakeAt(process.env.CAIRN_LAKE, '$CAIRN_LAKE', values));
  throw new UsageError(
    'No lake: give --lake DIR (a lake made by `cairn init DIR`), --config FILE, set $CAIRN_LAKE, or put a cairn.config.yaml in this folder or above',
  );
}

/**
 * `dir` when it is a lake (a folder with tarn's config.yml, or a Packed store's packed.db); else a
 * usage error. Only `init` makes lakes: a mistyped --lake must not become a new empty lake that
 * `ls` or `gc` report on.
 */
export function existingLake(dir: string, given: string): string {
  if (existsSync(join(dir, CONFIG_NAME)) || existsSync(join(dir, PACKED_FILE))) return dir;
  const what = existsSync(dir) ? 'is not a lake (it has no config.yml, nor a packed.db)' : 'does not exist';
  throw new UsageError(`${given} ${dir} ${what}; make one with \`cairn init ${dir}\``);
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
  clearBars();
  return new Promise((resolve) => {
    if (process.stdout.write(text)) resolve();
    else process.stdout.once('drain', () => resolve());
  });
}

export function json(value: unknown): Promise<void> {
  return out(JSON.stringify(value, null, 2) + '\n');
}

/**
 * A JSON array written as it is made, one element per line (`[`, the elements, `]`): the output
 * is one JSON document, memory does not grow with its length, and `wc -l` counts the rows (+ 2).
 */
export class JsonLines {
  private count = 0;
  private readonly output = new BufferedOutput();

  /** `prefix` comes before the array (`{"removed":` makes it the first field of an object closed by `end`). */
  constructor(private readonly prefix = '') {}

  push(value: unknown): Promise<void> {
    return this.output.write(`${this.count++ === 0 ? `${this.prefix}[\n` : ',\n'}${JSON.stringify(value)}`);
  }

  /** Closes the array; `rest` (an object) adds its fields after it, closing the object `prefix` opened. */
  async end(rest?: Record<string, unknown>): Promise<void> {
    const array = this.count === 0 ? `${this.prefix}[]` : '\n]';
    const tail = rest === undefined ? '' : Object.keys(rest).length === 0 ? '}' : `,${JSON.stringify(rest).slice(1)}`;
    await this.output.write(`${array}${tail}\n`);
    await this.output.flush();
  }
}

/** Lines gathered into writes of about 64 KiB: a write to stdout per row costs more than the row. */
export class BufferedOutput {
  private parts: string[] = [];
  private length = 0;

  write(text: string): Promise<void> {
    this.parts.push(text);
    this.length += text.length;
    return this.length >= 65_536 ? this.flush() : Promise.resolve();
  }

  flush(): Promise<void> {
    if (this.parts.length === 0) return Promise.resolve();
    const text = this.parts.join('');
    this.parts = [];
    this.length = 0;
    return out(text);
  }
}

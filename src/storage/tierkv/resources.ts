import { resolve } from 'node:path';
import { ConfigError } from '../../errors.js';
import { parseFraction, parseSize } from '../../size.js';
import { codecFor, type Codec, type Compression } from './codec.js';

/**
 * How full a resource may get, a soft target as in the seed: a number is a fraction (0.9 = until
 * 90 % of the machine's memory, or of the filesystem, is in use, counted as psutil and df count:
 * `used / (used + available)`), a string a byte size (`'200GB'`, `'4096B'`) that the store's own
 * values on that resource may take.
 */
export type Limit = number | string;

/** A parsed limit: a fraction of the whole resource in use, or bytes held by this store. */
export type ParsedLimit = { fraction: number } | { bytes: number };

export function parseLimit(limit: Limit, what: string): ParsedLimit {
  // a number is a fraction, as the seed's `limit=0.9`: 1.5 or 4096 is a mistake, not a byte count
  if (typeof limit === 'number') {
    if (limit > 1) throw new ConfigError(`Invalid ${what}: ${limit} (a number is a fraction between 0 and 1; a byte size is a string such as '4096B' or '200GB')`);
    return { fraction: parseFraction(limit, what) };
  }
  return { bytes: parseSize(limit, what) };
}

export interface ResourceMemoryOptions {
  /** Fraction of the machine's memory in use, or bytes of values kept in memory. @default 0.9 */
  limit?: Limit;
  /** `true` (lz4), `false`, or a codec name: 'lz4', 'gzip', 'brotli'. @default false */
  compression?: Compression;
}

/** Tier 0: values in this process's memory (a cairn `Memory` location). */
export class ResourceMemory {
  readonly kind = 'memory' as const;
  readonly limit: ParsedLimit;
  readonly codec: Codec;

  constructor(options: ResourceMemoryOptions = {}) {
    this.limit = parseLimit(options.limit ?? 0.9, 'ResourceMemory limit');
    this.codec = codecFor(options.compression);
  }
}

export interface ResourceFilesystemOptions {
  /** Folder of this tier; the store lives in `<path>/<store name>/`. */
  path: string;
  /** Fraction of the filesystem in use, or bytes of values this store may keep there. @default 0.9 */
  limit?: Limit;
  /** `true` (lz4), `false`, or a codec name: 'lz4', 'gzip', 'brotli'. @default false */
  compression?: Compression;
  /**
   * true: fsync every commit (SQLite `synchronous=FULL`, Disk blobs fsynced) so acknowledged sets
   * survive a power cut too (the same as `durability: 'power'`). false: acknowledged sets survive
   * `kill -9` of the process (committed to SQLite's WAL, `synchronous=NORMAL`) but not a power cut.
   * @default false
   */
  fsync?: boolean;
  /**
   * 'process' (the default): acknowledged sets survive the process being killed (`kill -9`);
   * 'power': a power cut too (`fsync: true`); 'exit': the seed notebook's semantics, sets kept in
   * memory and saved at `close()`, process exit, SIGINT or SIGTERM, lost on `kill -9` or a crash.
   */
  durability?: Durability;
}

export type Durability = 'process' | 'power' | 'exit';

/** A tier on a filesystem: a SQLite file for the tag index and small values, Disk blobs for large ones. */
export class ResourceFilesystem {
  readonly kind = 'filesystem' as const;
  readonly path: string;
  readonly limit: ParsedLimit;
  readonly codec: Codec;
  readonly fsync: boolean;
  readonly durability: Durability;

  constructor(options: ResourceFilesystemOptions) {
    if (!options || typeof options.path !== 'string' || options.path === '') {
      throw new ConfigError('ResourceFilesystem needs a path');
    }
    this.path = resolve(options.path);
    this.limit = parseLimit(options.limit ?? 0.9, 'ResourceFilesystem limit');
    this.codec = codecFor(options.compression);
    const durability = options.durability ?? (options.fsync ? 'power' : 'process');
    if (durability !== 'process' && durability !== 'power' && durability !== 'exit') {
      throw new ConfigError(`Invalid durability ${JSON.stringify(durability)}: 'process', 'power' or 'exit'`);
    }
    if (options.fsync !== undefined && options.fsync !== (durability === 'power')) {
      throw new ConfigError(`fsync: ${options.fsync} contradicts durability: '${durability}'`);
    }
    this.fsync = durability === 'power';
    this.durability = durability;
  }
}

export type Resource = ResourceMemory | ResourceFilesystem;

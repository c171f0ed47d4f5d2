import { resolve } from 'node:path';
import { ConfigError } from '../../errors.js';
import { parseFraction, parseSize } from '../../size.js';
import { codecFor, type Codec, type Compression } from './codec.js';

/**
 * How full a resource may get, a soft target as in the seed: a fraction (0.9 = until 90 % of the
 * machine's memory, or of the filesystem, is in use) or a byte size (`'200GB'`, `4096`) that the
 * store's own values on that resource may take.
 */
export type Limit = number | string;

/** A parsed limit: a fraction of the whole resource in use, or bytes held by this store. */
export type ParsedLimit = { fraction: number } | { bytes: number };

export function parseLimit(limit: Limit, what: string): ParsedLimit {
  // a number above 1 is a byte count; 0..1 is a fraction, as the seed's `limit=0.9`
  if (typeof limit === 'number' && limit <= 1) return { fraction: parseFraction(limit, what) };
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
   * fsync every commit (SQLite `synchronous=FULL`, Disk blobs fsynced) so acknowledged sets
   * survive a power cut too; false still survives `kill -9` but not a power cut. @default true
   */
  fsync?: boolean;
}

/** A tier on a filesystem: a SQLite file for the tag index and small values, Disk blobs for large ones. */
export class ResourceFilesystem {
  readonly kind = 'filesystem' as const;
  readonly path: string;
  readonly limit: ParsedLimit;
  readonly codec: Codec;
  readonly fsync: boolean;

  constructor(options: ResourceFilesystemOptions) {
    if (!options || typeof options.path !== 'string' || options.path === '') {
      throw new ConfigError('ResourceFilesystem needs a path');
    }
    this.path = resolve(options.path);
    this.limit = parseLimit(options.limit ?? 0.9, 'ResourceFilesystem limit');
    this.codec = codecFor(options.compression);
    this.fsync = options.fsync ?? true;
  }
}

export type Resource = ResourceMemory | ResourceFilesystem;

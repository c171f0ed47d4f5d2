/**
 * The EntryIndex that goes with a location given as `index` (or found in a HashKeyStorage). One
 * case per kind of location that can hold call keys beside (never inside) its content-addressed
 * values: a SQLite file in a folder or a Disk's `tools/`, a map for Memory, a key space of their
 * own for Redis and S3 (which verify every value against its sha256 key, so entries keyed by call
 * keys cannot live among their values). Anything else is a ConfigError that says what to pass.
 */
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { adminOf } from '../locations/admin.js';
import type { Location } from '../locations/interface.js';
import { Memory } from '../locations/memory.js';
import { RedisLocation } from '../locations/redis/redis.js';
import { S3 } from '../locations/s3/s3.js';
import type { EntryIndex } from './entry-index.js';
import { MemoryIndex } from './index-memory.js';
import { RedisIndex } from './index-redis.js';
import { S3Index } from './index-s3.js';
import { SqliteIndex } from './index-sqlite.js';

/** The index file of a cache folder. */
export const FOLDER_INDEX = 'index.sqlite';

export function indexFor(location: Location | string, options: { fsync?: boolean } = {}): EntryIndex {
  if (typeof location === 'string') return new SqliteIndex(join(resolve(location), FOLDER_INDEX), options.fsync);
  const admin = adminOf(location);
  // a local store's side folder (a Disk's tools/), where its own walk (keys, gc, verify) never looks
  if (admin !== null) return new SqliteIndex(join(admin.sideFolder, 'smart-cache-index.sqlite'), options.fsync);
  switch (true) {
    case location instanceof Memory:
      return new MemoryIndex();
    case location instanceof RedisLocation:
      return new RedisIndex(location);
    case location instanceof S3:
      return new S3Index(location);
    default:
      throw new ConfigError(
        `smartCache cannot keep its index in ${location.name}: pass { index, storage } with index a folder, a Disk, a Packed store, a Memory, a RedisLocation, an S3 location or an EntryIndex object`,
      );
  }
}

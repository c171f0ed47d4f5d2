/**
 * smartCache's `lock` option, in a file of its own: the public declarations reach it, and it names
 * no Redis type, so `cairn-lake/cache` type-checks without ioredis installed.
 */
import type { Location } from '../locations/interface.js';

export interface LockOptions {
  /** Folder of the lock files. @default `locks` inside the cache folder (required for other `where` forms, unless `redis` is given) */
  dir?: string;
  /**
   * Keep the locks in Redis instead, for processes on several machines: a RedisLocation (its
   * server, prefix and connection settings; anything else is a ConfigError). Typed as a Location
   * so that the declarations of `cairn-lake/cache` need no ioredis types. @default none
   */
  redis?: Location;
  /** A lock not renewed for this many milliseconds is taken over (its holder is presumed dead). @default 30000 */
  lease?: number;
  /** Milliseconds between checks while waiting. @default 25 */
  poll?: number;
}

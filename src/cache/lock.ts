/**
 * A cross-process lock on one cache key, so that other processes wait for the first one instead
 * of computing too. Two kinds: lock files in a folder (processes of one machine, or of several
 * sharing a filesystem), and keys in Redis (processes on several machines).
 *
 * Either way the lock holds a token `host:pid:random` and a lease that a worker thread renews while
 * the holder computes (lock-renewal.ts), so a function that blocks the event loop keeps its lock.
 * Others wait (never fail) until the lock is released, the result has appeared, the lease has run
 * out (a holder that died or lost its machine), or, at once, when the holder's process is gone
 * from this host.
 */
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { RedisLocation } from '../locations/redis/redis.js';
import { acquireFileLock } from './lock-file.js';
import { acquireRedisLock } from './lock-redis.js';
import type { LockOptions } from './lock-options.js';

/** A lock option with its defaults applied. */
export type ResolvedLock = { kind: 'file'; dir: string; lease: number; poll: number } | { kind: 'redis'; redis: RedisLocation; lease: number; poll: number };

export type Release = () => Promise<void>;

/** The lock a smartCache takes per key, from its `lock` option; null for none. */
export function resolveLock(lock: boolean | LockOptions | undefined, folder: string | null): ResolvedLock | null {
  if (lock === undefined || lock === false) return null;
  const given: LockOptions = lock === true ? {} : lock;
  const lease = given.lease ?? 30_000;
  const poll = given.poll ?? 25;
  if (!(lease > 0) || !(poll > 0)) throw new ConfigError(`smartCache: the lock's lease and poll must be positive numbers of milliseconds (got ${lease} and ${poll})`);
  if (given.redis !== undefined) {
    if (!(given.redis instanceof RedisLocation)) throw new ConfigError('smartCache: lock.redis must be a RedisLocation');
    return { kind: 'redis', redis: given.redis, lease, poll };
  }
  const dir = given.dir ?? (folder === null ? undefined : join(folder, 'locks'));
  if (dir === undefined) throw new ConfigError('smartCache: the lock option needs a dir (or redis) when the cache is not a folder');
  return { kind: 'file', dir, lease, poll };
}

/** Takes the lock for `key`, or resolves to null as soon as `done()` says the result is there. */
export function acquireLock(lock: ResolvedLock, key: string, done: () => Promise<boolean>): Promise<Release | null> {
  return lock.kind === 'file' ? acquireFileLock(lock, key, done) : acquireRedisLock(lock, key, done);
}

/**
 * A cross-process lock on one cache key: a lock file created exclusively, with a lease that the
 * holder renews while it computes. Others wait (never fail) until the file is gone, the lease has
 * run out (a crashed holder), or the result has appeared.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LocationError } from '../errors.js';

export interface LockOptions {
  /** Folder of the lock files. @default `locks` inside the cache folder (required for other `where` forms) */
  dir?: string;
  /** A lock not renewed for this many milliseconds is taken over (its holder is presumed dead). @default 30000 */
  lease?: number;
  /** Milliseconds between checks while waiting. @default 25 */
  poll?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export type Release = () => Promise<void>;

/**
 * Takes the lock for `key`, or resolves to null as soon as `done()` says the result is there.
 */
export async function acquireLock(options: Required<LockOptions>, key: string, done: () => Promise<boolean>): Promise<Release | null> {
  const file = join(options.dir, `${key}.lock`);
  const token = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
  await fsp.mkdir(options.dir, { recursive: true });
  for (;;) {
    try {
      await fsp.writeFile(file, token, { flag: 'wx' });
      const renew = setInterval(() => {
        const now = new Date();
        fsp.utimes(file, now, now).catch(() => undefined);
      }, Math.max(10, options.lease / 3));
      renew.unref();
      return async () => {
        clearInterval(renew);
        // remove only our own lock: after a takeover the file belongs to someone else
        const current = await fsp.readFile(file, 'utf8').catch(() => null);
        if (current === token) await fsp.rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new LocationError(`Cannot create the lock file ${file}`, `lock(${options.dir})`, { cause: error });
      }
    }
    if (await done()) return null;
    const stat = await fsp.stat(file).catch(() => null);
    if (stat !== null && Date.now() - stat.mtimeMs > options.lease) {
      // a stale lock: move it aside atomically so only one waiter takes it over
      const aside = `${file}.${randomBytes(6).toString('hex')}.stale`;
      if (await fsp.rename(file, aside).then(() => true, () => false)) {
        // another waiter may have taken it over between our stat and rename: give a fresh lock back
        const moved = await fsp.stat(aside).catch(() => null);
        if (moved !== null && Date.now() - moved.mtimeMs <= options.lease) await fsp.link(aside, file).catch(() => undefined);
        await fsp.rm(aside, { force: true });
      }
      continue;
    }
    await sleep(options.poll);
  }
}

/**
 * Lock files: `<dir>/<key>.lock`, created exclusively, holding the holder's token; the file's
 * modification time is its lease, renewed by the worker thread of lock-renewal.ts.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { LocationError } from '../errors.js';
import type { Release, ResolvedLock } from './lock.js';
import { holderIsGone, lockToken, sleep } from './lock-token.js';
import { renew } from './lock-renewal.js';

export async function acquireFileLock(options: Extract<ResolvedLock, { kind: 'file' }>, key: string, done: () => Promise<boolean>): Promise<Release | null> {
  const file = join(options.dir, `${key}.lock`);
  const token = lockToken();
  await fsp.mkdir(options.dir, { recursive: true });
  for (;;) {
    try {
      await fsp.writeFile(file, token, { flag: 'wx' });
      return await held(file, token, options.lease);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new LocationError(`Cannot create the lock file ${file}: ${(error as Error).message}`, `lock(${options.dir})`, { cause: error });
      }
    }
    if (await done()) return null;
    const [holder, stat] = await Promise.all([fsp.readFile(file, 'utf8').catch(() => null), fsp.stat(file).catch(() => null)]);
    if (holder !== null && holderIsGone(holder)) {
      await takeOver(file, (moved) => moved.holder === holder);
      continue;
    }
    if (stat !== null && Date.now() - stat.mtimeMs > options.lease) {
      await takeOver(file, (moved) => Date.now() - moved.mtimeMs > options.lease);
      continue;
    }
    await sleep(options.poll);
  }
}

/** The lock is ours: its lease is renewed until it is released. */
async function held(file: string, token: string, lease: number): Promise<Release> {
  let renewal;
  try {
    renewal = await renew({ kind: 'file', file, token, ms: lease });
  } catch (error) {
    await fsp.rm(file, { force: true });
    throw error;
  }
  return async () => {
    await renewal.stop();
    // remove only our own lock: after a takeover the file belongs to someone else
    const current = await fsp.readFile(file, 'utf8').catch(() => null);
    if (current === token) await fsp.rm(file, { force: true });
  };
}

/**
 * Moves a lock judged dead aside atomically, so only one waiter takes it over. If what was moved
 * no longer fits `stillDead` (another waiter took it over in between), it is put back.
 */
async function takeOver(file: string, stillDead: (moved: { holder: string | null; mtimeMs: number }) => boolean): Promise<void> {
  const aside = `${file}.${randomBytes(6).toString('hex')}.stale`;
  if (!(await fsp.rename(file, aside).then(() => true, () => false))) return;
  const [holder, stat] = await Promise.all([fsp.readFile(aside, 'utf8').catch(() => null), fsp.stat(aside).catch(() => null)]);
  if (stat !== null && !stillDead({ holder, mtimeMs: stat.mtimeMs })) await fsp.link(aside, file).catch(() => undefined);
  await fsp.rm(aside, { force: true });
}

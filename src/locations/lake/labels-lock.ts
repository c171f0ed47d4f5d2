/**
 * The lock around a read-merge-write of a key's labels file, so that writers in other processes
 * (over SFTP, SCP, or Disk on the server) never drop each other's labels: `<labels file>.lock`,
 * beside the file, as Disk names it (tarn reads the .json file and ignores the lock). It is taken
 * by an exclusive create that holds the taker's token; a lock whose token has not changed for
 * STALE_LOCK_MS is taken to be left by a killed writer and broken, under a guard
 * (`<lock>.break`) so that two waiters never both break it and one removes the other's fresh lock.
 *
 * API
 * - `withLabelsLock(io, labelsFile, task)`: runs `task` holding the lock; the lock is released
 *   (when it is still ours) however `task` ends.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** A lock (or guard) whose token stayed the same this long is left by a writer that is gone. Disk uses the same age. */
export const STALE_LOCK_MS = 30_000;

/** What the lock needs of a transport. */
export interface LockFiles {
  createExclusive(path: string, text: string): Promise<boolean>;
  readText(path: string): Promise<string | null>;
  remove(path: string): Promise<boolean>;
}

export function labelsLockPath(labelsFile: string): string {
  return `${labelsFile}.lock`;
}

export async function withLabelsLock<T>(io: LockFiles, labelsFile: string, task: () => Promise<T>): Promise<T> {
  const lock = labelsLockPath(labelsFile);
  // not a pid: the server's clock and processes are not ours, so a lock is stale by age alone
  const token = `remote-${randomBytes(9).toString('hex')}`;
  await acquire(io, lock, token);
  try {
    return await task();
  } finally {
    // only our own lock is removed (a waiter that took ours for stale holds its own)
    if ((await io.readText(lock)) === token) await io.remove(lock);
  }
}

/** Remembers how long a file has held the same token, by this process's clock. */
class Watch {
  private holder: string | null = null;
  private since = 0;

  /** True once `holder` has been seen unchanged for STALE_LOCK_MS. */
  stale(holder: string | null): boolean {
    const now = Date.now();
    if (holder === null || holder !== this.holder) {
      this.holder = holder;
      this.since = now;
      return false;
    }
    return now - this.since > STALE_LOCK_MS;
  }
}

async function acquire(io: LockFiles, lock: string, token: string): Promise<void> {
  const lockWatch = new Watch();
  const guardWatch = new Watch();
  for (let attempt = 0; ; attempt++) {
    if (await io.createExclusive(lock, token)) return;
    const holder = await io.readText(lock);
    // ours: a create whose answer was lost, then retried
    if (holder === token) return;
    if (lockWatch.stale(holder)) await breakStale(io, lock, holder!, token, guardWatch);
    // holders keep it for a few round trips: poll fast at first, then back off (with jitter)
    await sleep(attempt < 5 ? 2 : 10 + Math.random() * 40);
  }
}

/** Removes `lock` if it still holds the stale `holder`, as the one holder of its guard. */
async function breakStale(io: LockFiles, lock: string, holder: string, token: string, guardWatch: Watch): Promise<void> {
  const guard = `${lock}.break`;
  if (!(await io.createExclusive(guard, token))) {
    // a breaker killed while it held the guard would stop every waiter: its guard goes too
    const breaker = await io.readText(guard);
    if (guardWatch.stale(breaker) && (await io.readText(guard)) === breaker) await io.remove(guard);
    return;
  }
  try {
    if ((await io.readText(lock)) === holder) await io.remove(lock);
  } finally {
    await io.remove(guard);
  }
}

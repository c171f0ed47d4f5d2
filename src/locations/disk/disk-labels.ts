import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { labelsText, mergeLabels, parseLabels } from '../lake/labels.js';
import { leftByDeadProcess, PROCESS_TAG } from './disk-liveness.js';

/**
 * tarn's JsonLabels: `tools/labels/ab/<rest>.json` holds the JSON list of a key's labels, the
 * union of every write's. A read-merge-write of that file is guarded by a lock file beside it
 * (`<rest>.json.lock`, created exclusively), so that concurrent writers (threads, processes)
 * never drop each other's labels. tarn reads the .json file and ignores the lock.
 */

/** A lock held longer than this is taken to be left by a hung or killed process on another host. */
const STALE_LOCK_MS = 30_000;

let acquisitions = 0;

export function lockPathOf(labelsFile: string): string {
  return `${labelsFile}.lock`;
}

/**
 * Adds `labels` to the set in `file` and returns true when the file changed. `writeAtomically`
 * writes the merged list through a temp file and a rename; `ensureDir` creates the folder.
 */
export async function mergeLabelsFile(
  file: string,
  labels: readonly string[],
  io: { ensureDir: () => Promise<void>; writeAtomically: (text: string) => Promise<void>; tempPath: () => string },
): Promise<boolean> {
  // most writes repeat labels already stored: no lock needed to see that
  const before = await readLabelsFile(file);
  if (before !== null && labels.every((label) => before.includes(label))) return false;
  const release = await lock(lockPathOf(file), io.ensureDir, io.tempPath());
  try {
    const merged = mergeLabels(await readLabelsFile(file), labels);
    if (merged === null) return false;
    await io.writeAtomically(labelsText(merged));
    return true;
  } finally {
    await release();
  }
}

/** The labels in `file`, null when there is none. */
export async function readLabelsFile(file: string): Promise<string[] | null> {
  try {
    return parseLabels(await fsp.readFile(file, 'utf8'), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Takes the lock file (waiting for its holder, breaking it when the holder is gone); returns its
 * release. The lock appears with its holder's token in it (a hard link of the temp file `tmp`):
 * a holder killed at any moment leaves a lock that names it, never an empty one.
 */
async function lock(path: string, ensureDir: () => Promise<void>, tmp: string): Promise<() => Promise<void>> {
  const token = `${PROCESS_TAG}.${(acquisitions++).toString(36)}`;
  await fsp.writeFile(tmp, token, { flag: 'wx' });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await fsp.link(tmp, path);
        return async () => {
          // only our own lock is removed (a holder that took ours as stale has its own)
          if ((await fsp.readFile(path, 'utf8').catch(() => null)) === token) await fsp.rm(path, { force: true });
        };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') await ensureDir();
        else if (code !== 'EEXIST') throw error;
        else await breakIfStale(path);
      }
      // holders keep it for microseconds: poll fast at first, then back off
      await sleep(attempt < 20 ? 1 : 10);
    }
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/** True when the lock at `path` is left by a holder that is gone, or held for too long. */
async function isStale(path: string): Promise<{ holder: string } | null> {
  let holder: string;
  let mtime: number;
  try {
    [holder, mtime] = await Promise.all([fsp.readFile(path, 'utf8'), fsp.stat(path).then((stat) => stat.mtimeMs)]);
  } catch {
    return null; // released meanwhile
  }
  const age = Date.now() - mtime;
  // a token is `<process tag>.<n>`; an empty file is a breaker killed between create and write
  const stale = (holder !== '' && leftByDeadProcess(holder)) || age > STALE_LOCK_MS || (holder === '' && age > 1000);
  return stale ? { holder } : null;
}

/**
 * Removes the lock at `path` when its holder is gone (a dead process of this host) or it is older
 * than STALE_LOCK_MS. Only the holder of the guard `<lock>.break` removes a lock, and it looks
 * again once it holds the guard: a lock taken meanwhile by a live writer is never removed.
 */
export async function breakIfStale(path: string): Promise<boolean> {
  if ((await isStale(path)) === null) return false;
  const guard = `${path}.break`;
  try {
    await fsp.writeFile(guard, `${PROCESS_TAG}.b${(acquisitions++).toString(36)}`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    await breakGuardIfStale(guard);
    return false; // another breaker is at it
  }
  try {
    if ((await isStale(path)) === null) return false;
    await fsp.rm(path, { force: true });
    return true;
  } finally {
    await fsp.rm(guard, { force: true });
  }
}

/**
 * Removes a guard left by a breaker that was killed. It is first renamed to a name of ours, so
 * that of two such removers only one removes it, and a guard taken meanwhile is put back.
 */
export async function breakGuardIfStale(guard: string): Promise<void> {
  const stale = await isStale(guard);
  if (stale === null) return;
  const aside = `${guard}.${PROCESS_TAG}`;
  try {
    await fsp.rename(guard, aside);
  } catch {
    return; // another remover took it
  }
  const taken = await fsp.readFile(aside, 'utf8').catch(() => stale.holder);
  if (taken !== stale.holder) await fsp.link(aside, guard).catch(() => undefined); // a live breaker's: give it back
  await fsp.rm(aside, { force: true });
}

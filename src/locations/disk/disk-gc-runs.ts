import { closeSync, existsSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Key } from '../../key.js';

/**
 * The protocol between gc and writers of a Disk lake (gc's side is in disk-gc-run.ts).
 *
 * A gc run registers itself as a folder `tools/gc/<run>` (tarn ignores `tools/`), moves the blobs
 * it evicts into that folder, and before removing one checks for a pin `<run>/<key>.pin`: a pinned
 * blob is put back. A finished run renames its folder to `<run>.done`, and the next run removes
 * the `.done` names when it registers (only then).
 *
 * A writer takes a read of the names made before it began (a Disk keeps its last one), pins the
 * key in every active run, writes, then reads the names again; while they changed, it pins the
 * new runs and checks that its blob (and labels) are still in place, rewriting them if not. When
 * two reads in a row agree, every run that started before the write is acknowledged was pinned
 * before the writer last saw its blob in place: such a run either moved the blob before that
 * check (the writer rewrote it) or after the pin (the run puts it back). A run that came and went
 * between two reads leaves its `.done` name (or a newer run's name), so the reads cannot agree
 * across it.
 */

export function runsFolder(root: string): string {
  return join(root, 'tools', 'gc');
}

/** Names in the runs folder, sorted ([] when there is none). Synchronous: a write reads it once. */
export function runNames(folder: string): string[] {
  if (!existsSync(folder)) return [];
  try {
    return readdirSync(folder).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** What a write saw in the runs folder: the names, and the folder's stat when they were read. */
export interface RunsView {
  names: string[];
  /** inode, times, size and link count of the folder; null when there is no folder. */
  stamp: string | null;
  /** The folder's mtime was long enough before the read that a later change must move it. */
  settled: boolean;
}

/**
 * Timestamps are coarse (a clock tick): a change within the tick of the folder's mtime may leave
 * it as it was. A folder last changed this long before we looked cannot hide a later change.
 */
const SETTLED_MS = 100;

/**
 * Reads the runs folder, or returns `previous` when its stat shows it unchanged (a stat costs a
 * few µs, listing it several times that). `trustStat`: only on a local filesystem, whose times
 * come from this machine's clock; a network mount's come from the server's.
 */
export function readRuns(folder: string, previous: RunsView | null, trustStat: boolean): RunsView {
  // times in ms as doubles keep a fraction of a µs: finer than any clock tick
  const stat = statSync(folder, { throwIfNoEntry: false });
  if (stat === undefined) return { names: [], stamp: null, settled: true };
  const stamp = `${stat.ino}:${stat.mtimeMs}:${stat.ctimeMs}:${stat.size}:${stat.nlink}`;
  if (trustStat && previous !== null && previous.settled && previous.stamp === stamp) return previous;
  const settled = Date.now() - stat.mtimeMs > SETTLED_MS;
  return { names: runNames(folder), stamp, settled };
}

/** An active run: not finished (`.done`), not being set up or undone (a leading dot). */
export function isActiveRun(name: string): boolean {
  return !name.startsWith('.') && !name.endsWith('.done');
}

export function pinPath(runFolder: string, key: Key): string {
  return join(runFolder, `${key}.pin`);
}

/** Pins `key` in every active run of `names` not pinned yet (`pinned` is updated). */
export function pinInRuns(folder: string, names: readonly string[], key: Key, pinned: Set<string>): void {
  for (const name of names) {
    if (!isActiveRun(name) || pinned.has(name)) continue;
    pinned.add(name);
    try {
      closeSync(openSync(pinPath(join(folder, name), key), 'w', 0o666));
    } catch (error) {
      // the run finished meanwhile (its folder was renamed): nothing left to pin
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

export function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, index) => name === b[index]);
}

import { existsSync, promises as fsp, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Key } from '../../key.js';
import { isActiveRun, pinPath, runNames, runsFolder } from './disk-gc-runs.js';
import { readLabelsFile } from './disk-labels.js';
import { HOST_TAG, leftByDeadProcess, parseTag, PROCESS_TAG } from './disk-liveness.js';
import type { Disk } from './disk.js';

/** A run of another host still registered after this long is taken to be dead. */
const FOREIGN_RUN_MS = 86_400_000;

const KEY_NAME = /^[0-9a-f]{64}$/;

/**
 * gc's side of the protocol of disk-gc-runs.ts, for one Disk: the run's folder, where evicted
 * blobs and their marks and labels wait until they are removed, or put back when a writer pinned
 * their key. Killed, a run leaves its folder active; the next run puts everything in it back.
 */
export class GcRun {
  private constructor(
    private readonly disk: Disk,
    private readonly folder: string,
  ) {}

  /**
   * Registers a run: removes the names of finished runs, undoes the runs of killed processes,
   * then makes this run's folder appear at once, by a rename.
   */
  static async start(disk: Disk): Promise<GcRun> {
    await disk.recovered();
    const runs = runsFolder(disk.root);
    await disk.makeFolder(runs);
    // only a run that registers removes `.done` names (see disk-gc-runs.ts)
    for (const name of runNames(runs)) {
      if (name.endsWith('.done')) await fsp.rm(join(runs, name), { recursive: true, force: true, maxRetries: 5 });
    }
    await undoDeadRuns(disk);
    const name = `${Date.now().toString(36)}.${PROCESS_TAG}`;
    const setup = join(runs, `.${name}`);
    await disk.makeFolder(setup);
    await fsp.rename(setup, join(runs, name));
    return new GcRun(disk, join(runs, name));
  }

  /** The run's folder. */
  get path(): string {
    return this.folder;
  }

  /** Moves the blob of `key` into the run's folder; false when it is not stored. */
  async takeBlob(key: Key): Promise<boolean> {
    return (await this.disk.moveAside(key, this.folder, key)) !== null;
  }

  /** True when a writer pinned `key` in this run: what was taken must go back. */
  async pinned(key: Key): Promise<boolean> {
    return (await fsp.stat(pinPath(this.folder, key)).catch(() => null)) !== null;
  }

  /**
   * Removes for good what was taken of `key` (its blob, if taken) with its mark and labels, unless
   * a writer pins the key meanwhile: then it all goes back. True when removed.
   */
  async discard(key: Key): Promise<boolean> {
    const { mark, labels } = this.disk.sidecars(key);
    await Promise.all([moveIfThere(mark, join(this.folder, `${key}.mark`)), moveIfThere(labels, join(this.folder, `${key}.json`))]);
    // a writer that pins after this check finds its blob or labels gone, and writes them again;
    // one that pinned before it is honoured here
    if (await this.pinned(key)) {
      await putBack(this.disk, this.folder, key);
      return false;
    }
    await Promise.all(['', '.mark', '.json'].map((suffix) => fsp.rm(join(this.folder, key + suffix), { force: true })));
    return true;
  }

  /** Puts back what was taken of `key`. */
  putBack(key: Key): Promise<boolean> {
    return putBack(this.disk, this.folder, key);
  }

  /** Ends the run: its name becomes `<run>.done` (writers stop pinning), then its pins are removed. */
  async finish(): Promise<void> {
    const done = `${this.folder}.done`;
    await fsp.rename(this.folder, done);
    // anything but pins is what a failed step left: put it back rather than lose it
    await putBackAll(this.disk, done);
  }
}


/**
 * Undoes a killed run: it is first renamed to a name writers ignore (and another gc does not
 * undo it twice), then every blob, mark and labels file in it is put back.
 */
async function undo(disk: Disk, folder: string): Promise<void> {
  const aside = join(dirname(folder), `.undo.${PROCESS_TAG}.${basename(folder)}`);
  try {
    await fsp.rename(folder, aside);
  } catch {
    return; // another gc is undoing it
  }
  await putBackAll(disk, aside);
  await fsp.rm(aside, { recursive: true, force: true, maxRetries: 5 });
}

/** Puts back every key `folder` holds something of (blob, mark, labels), and removes its pins. */
async function putBackAll(disk: Disk, folder: string): Promise<void> {
  const names = await fsp.readdir(folder);
  const keys = new Set(names.filter((name) => !name.endsWith('.pin')).map((name) => name.slice(0, 64)).filter((key) => KEY_NAME.test(key)));
  for (const key of keys) await putBack(disk, folder, key);
  for (const name of names) if (name.endsWith('.pin')) await fsp.rm(join(folder, name), { force: true });
}

/**
 * True when `key` may have a blob elsewhere than its place: in another active run's folder (a gc
 * running beside this one), or anywhere while a killed run is being undone. Its mark and labels
 * are then not orphans.
 */
export function mayBeAside(root: string, key: Key, ownRun: string): boolean {
  const runs = runsFolder(root);
  return runNames(runs).some(
    (name) => name.startsWith('.undo.') || (isActiveRun(name) && join(runs, name) !== ownRun && existsSync(join(runs, name, key))),
  );
}

/** True when a killed gc run waits to be undone (the Disk constructor checks this: one readdir). */
export function deadRunsLeft(root: string): boolean {
  const runs = runsFolder(root);
  return runNames(runs).some((name) => !name.endsWith('.done') && isDeadSync(join(runs, name)));
}

/** True when the run's process is gone (this host), or the run is a day old (another host). */
function isDeadSync(folder: string): boolean {
  const name = basename(folder);
  if (leftByDeadProcess(name)) return true;
  const tag = parseTag(name);
  if (tag !== null && tag.host === HOST_TAG) return false;
  const stat = statSync(folder, { throwIfNoEntry: false });
  return stat !== undefined && Date.now() - stat.mtimeMs > FOREIGN_RUN_MS;
}

/** Undoes the runs left by killed gc processes (every gc does when it starts). Returns how many. */
export async function undoDeadRuns(disk: Disk): Promise<number> {
  const runs = runsFolder(disk.root);
  let undone = 0;
  for (const name of runNames(runs)) {
    if (name.endsWith('.done') || !(isDeadSync(join(runs, name)))) continue;
    await undo(disk, join(runs, name));
    undone++;
  }
  return undone;
}

/**
 * Puts back what `folder` holds of `key`: its blob (unless one was written again meanwhile), its
 * labels (merged into any written meanwhile) and its mark (unless there is a newer one).
 */
async function putBack(disk: Disk, folder: string, key: Key): Promise<boolean> {
  const blob = join(folder, key);
  const restored = (await fsp.stat(blob).catch(() => null)) !== null && (await disk.restore(key, blob));
  const takenLabels = await readLabelsFile(join(folder, `${key}.json`));
  if (takenLabels !== null && takenLabels.length > 0) await disk.addLabels(key, takenLabels);
  await fsp.rm(join(folder, `${key}.json`), { force: true });
  const takenMark = join(folder, `${key}.mark`);
  if ((await fsp.stat(takenMark).catch(() => null)) !== null) {
    const { mark } = disk.sidecars(key);
    await disk.makeFolder(dirname(mark));
    await fsp.link(takenMark, mark).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error; // a newer mark was made meanwhile
    });
    await fsp.rm(takenMark, { force: true });
  }
  return restored;
}

async function moveIfThere(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * A Disk's administration view (admin.ts): its listing with sizes and last uses, temp files,
 * quarantine (`tools/quarantine/`, where tarn's walk never looks), labels, and gc runs through
 * the pinning protocol of disk-gc-runs.ts.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Key } from '../../key.js';
import type { AdminUsage, Collection, CollectOptions, Eviction, LakeAdmin, StoredItem, ThreadOpen, TidyReport } from '../admin.js';
import { folderUsage } from '../folder-usage.js';
import { GcRun, mayBeAside } from './disk-gc-run.js';
import { hashFile } from './disk-io.js';
import { breakGuardIfStale, breakIfStale } from './disk-labels.js';
import { leftByDeadProcess } from './disk-liveness.js';
import type { Disk } from './disk.js';

/** Where verify sets bad blobs aside: under `tools/`, which tarn's contents() skips (a folder at the root would be listed by its glob). */
export const QUARANTINE = join('tools', 'quarantine');
/** Where older cairn versions put them (tarn's contents() fails on it: gc moves what is there into QUARANTINE). */
const LEGACY_QUARANTINE = '.quarantine';

/** Files up to this size are hashed from one synchronous read (microseconds from the page cache); larger ones are streamed. */
const READ_WHOLE = 1024 * 1024;

const KEY = /^[0-9a-f]{64}$/;

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

export class DiskAdmin implements LakeAdmin {
  readonly folder: string;
  readonly sideFolder: string;

  constructor(readonly location: Disk) {
    this.folder = location.root;
    this.sideFolder = join(location.root, 'tools');
  }

  async *items(options: { lastUsed?: boolean } = {}): AsyncIterable<StoredItem> {
    const disk = this.location;
    for await (const key of disk.keys()) {
      // a stat is microseconds: synchronous calls beat a trip to the thread pool per key
      const stat = statSync(disk.pathOf(key), { throwIfNoEntry: false });
      if (stat === undefined) continue; // deleted while we walked
      let lastUsed: Date | null = null;
      if (options.lastUsed) lastUsed = statSync(disk.sidecars(key).mark, { throwIfNoEntry: false })?.mtime ?? stat.mtime;
      yield { key, size: stat.size, lastUsed };
    }
  }

  async usage(): Promise<AdminUsage> {
    const temp = await folderUsage(this.location.tmpDir);
    const quarantine = await folderUsage(join(this.folder, QUARANTINE));
    const legacy = await folderUsage(join(this.folder, LEGACY_QUARANTINE));
    return { temp, quarantine: { count: quarantine.count + legacy.count, bytes: quarantine.bytes + legacy.bytes } };
  }

  async hashStored(key: Key, size?: number): Promise<string | null> {
    const file = this.location.pathOf(key);
    try {
      // the size from the listing saves a stat per file
      const known = size ?? statSync(file, { throwIfNoEntry: false })?.size;
      if (known === undefined) return null;
      // one read of the whole file: a stream's buffers cost far more than the hash of a small blob
      if (known <= READ_WHOLE) return createHash('sha256').update(readFileSync(file)).digest('hex');
      return await hashFile(file);
    } catch (error) {
      if (errno(error) === 'ENOENT') return null;
      throw error;
    }
  }

  quarantine(key: Key): Promise<string | null> {
    return this.location.quarantine(key);
  }

  async labelsOf(key: Key): Promise<string[] | null> {
    return this.location.labelsOf(key);
  }

  addLabels(key: Key, labels: readonly string[]): Promise<void> {
    return this.location.addLabels(key, labels);
  }

  async holds(key: Key, size: number): Promise<boolean> {
    return statSync(this.location.pathOf(key), { throwIfNoEntry: false })?.size === size;
  }

  filePath(key: Key): string {
    return this.location.pathOf(key);
  }

  threadOpen(): ThreadOpen {
    return { kind: 'disk', root: this.location.root, options: { ...this.location.options } };
  }

  async collect(options: CollectOptions): Promise<Collection> {
    // registered before listing: a writer acknowledging after this point has pinned its key (disk-gc-runs.ts)
    const run = options.dryRun ? null : await GcRun.start(this.location);
    return new DiskCollection(this.location, run, options);
  }
}

/** One gc run on a Disk (a dry run has no GcRun: it only reports). */
class DiskCollection implements Collection {
  constructor(
    private readonly disk: Disk,
    private readonly run: GcRun | null,
    private readonly options: CollectOptions,
  ) {}

  /**
   * Moves the batch into the run's folder, waits `graceMs`, then removes those nobody pinned (a
   * writer) or used (a reader: its last-used mark moved) meanwhile; puts the others back.
   */
  async evict(batch: readonly Eviction[]): Promise<{ removed: Eviction[]; restored: Eviction[] }> {
    const removed: Eviction[] = [];
    const restored: Eviction[] = [];
    const run = this.run;
    if (run === null) return { removed: [...batch], restored };
    const moved: Eviction[] = [];
    for (const entry of batch) if (await run.takeBlob(entry.key)) moved.push(entry);
    // a reader that found the blob just before it was moved touches its mark right after
    if (moved.length > 0) await sleep(this.options.graceMs);
    for (const entry of moved) {
      const lastUsed = await this.disk.lastUsed(entry.key);
      const used = lastUsed !== null && lastUsed.getTime() > entry.lastUsed.getTime();
      const keep = used || (await run.pinned(entry.key));
      if (keep) await run.putBack(entry.key);
      if (!keep && (await run.discard(entry.key))) removed.push(entry);
      else restored.push(entry);
    }
    return { removed, restored };
  }

  async tidy(): Promise<TidyReport> {
    const report: TidyReport = { tempFiles: [], reclaimedBytes: 0 };
    if (this.run !== null) {
      await removeOrphans(this.disk, this.run);
      await undoLegacyTrash(this.disk, this.options.now);
      await moveLegacyQuarantine(this.disk);
    }
    for (const file of await this.disk.tempFiles()) {
      // a live writer keeps modifying its temp file: only long-untouched ones, or a killed process's, are removed
      if (file.mtime.getTime() >= this.options.tmpCutoff && !leftByDeadProcess(basename(file.path))) continue;
      if (this.run !== null) await fsp.rm(file.path, { force: true, recursive: true });
      report.tempFiles.push({ path: file.path, size: file.size });
    }
    return report;
  }

  async finish(): Promise<void> {
    await this.run?.finish();
  }
}

/**
 * Removes last-used marks and labels whose blob is gone (a delete or an older gc killed midway),
 * through the run's folder, so that a writer storing the key right now keeps them (it pins it).
 * One folder at a time: memory does not grow with the number of keys.
 */
async function removeOrphans(disk: Disk, run: GcRun): Promise<void> {
  const { marks, labels: labelsRoot } = disk.sidecarRoots();
  for (const root of [marks, labelsRoot]) {
    for (const prefix of await fsp.readdir(root).catch(() => [] as string[])) {
      for (const name of await fsp.readdir(join(root, prefix)).catch(() => [] as string[])) {
        const key = prefix + name.replace(/\.json$/, '');
        if (!KEY.test(key)) continue;
        if (statSync(disk.pathOf(key), { throwIfNoEntry: false }) !== undefined) continue; // its blob is there
        if (mayBeAside(disk.root, key, run.path)) continue; // another gc holds the blob, and may put it back
        await run.discard(key);
      }
    }
  }
  // label locks of killed writers
  for (const prefix of await fsp.readdir(labelsRoot).catch(() => [] as string[])) {
    for (const name of await fsp.readdir(join(labelsRoot, prefix)).catch(() => [] as string[])) {
      if (name.endsWith('.lock')) await breakIfStale(join(labelsRoot, prefix, name));
      else if (name.endsWith('.lock.break')) await breakGuardIfStale(join(labelsRoot, prefix, name));
    }
  }
}

/**
 * Blobs an older cairn's gc left in `.trash/` when it was killed (moved there over an hour ago:
 * a rename sets ctime): put back unless the key was written again, so nothing is lost.
 */
async function undoLegacyTrash(disk: Disk, now: number): Promise<void> {
  const trash = join(disk.root, '.trash');
  for (const name of await fsp.readdir(trash).catch(() => [] as string[])) {
    const stat = await fsp.stat(join(trash, name)).catch(() => null);
    const key = name.slice(0, 64);
    if (stat === null || stat.ctimeMs >= now - 3_600_000) continue;
    if (KEY.test(key)) await disk.restore(key, join(trash, name));
    else await fsp.rm(join(trash, name), { force: true });
  }
}

/** Quarantined blobs an older cairn left in `.quarantine/` (tarn's walk fails on them) move to `tools/quarantine/`. */
async function moveLegacyQuarantine(disk: Disk): Promise<void> {
  const legacy = join(disk.root, LEGACY_QUARANTINE);
  const names = await fsp.readdir(legacy).catch(() => null);
  if (names === null) return;
  const target = join(disk.root, QUARANTINE);
  await disk.makeFolder(target);
  for (const name of names) await fsp.rename(join(legacy, name), join(target, name));
  await fsp.rmdir(legacy).catch(() => undefined); // something new arrived: the next gc
}


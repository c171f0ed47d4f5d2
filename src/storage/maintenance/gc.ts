import { promises as fsp } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../errors.js';
import type { Key } from '../../key.js';
import { GcRun, mayBeAside } from '../../locations/disk-gc-run.js';
import { breakGuardIfStale, breakIfStale } from '../../locations/disk-labels.js';
import { leftByDeadProcess } from '../../locations/disk-liveness.js';
import type { Disk } from '../../locations/disk.js';
import { parseSize, type Size } from '../../size.js';
import { disks, type Target } from './leaves.js';
import type { ProgressCallback } from './progress.js';

/** A duration in ms, or a string such as '30d', '12h', '15m', '90s'. */
export type Duration = number | string;

export interface GcOptions {
  /** Evict least recently used blobs until each lake holds at most this many bytes. @default no limit */
  maxSize?: Size;
  /** Evict least recently used blobs until each lake holds at most this many blobs. @default no limit */
  maxCount?: number;
  /** Evict every blob not used for this long. @default no limit */
  olderThan?: Duration;
  /** Report what would be removed, remove nothing. @default false */
  dryRun?: boolean;
  /**
   * Blobs used this recently are never evicted, whatever the limits: the entry a writer is
   * storing right now is among them. @default '1m'
   */
  keepRecent?: Duration;
  /** Temp files in `.tmp/` not modified for this long are leftovers of crashed writers and removed. @default '1d' */
  tmpAge?: Duration;
  /**
   * How long gc waits between moving the chosen blobs aside and removing them; a blob read
   * meanwhile (its last-used mark moved) is put back. Writers do not depend on it: a write pins
   * its key in every running gc (see disk-gc-runs.ts). @default 500
   */
  graceMs?: number;
  onProgress?: ProgressCallback;
  /**
   * Stops the run while it lists or moves blobs aside, then throws the signal's reason. Blobs
   * already moved aside are always settled first (removed, or put back when used meanwhile):
   * an abort never leaves a blob in `.trash/`.
   */
  signal?: AbortSignal;
}

export interface Evicted {
  key: Key;
  size: number;
  lastUsed: Date;
}

export interface GcReport {
  /** Blobs removed (or that would be, with dryRun). */
  removed: Evicted[];
  removedBytes: number;
  /** Blobs chosen but put back because they were used while gc ran. */
  restored: number;
  /** What is left. */
  keptCount: number;
  keptBytes: number;
  /** Stale temp files removed (or that would be). */
  tempFiles: { path: string; size: number }[];
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function parseDuration(value: Duration, what = 'duration'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (value === '0') return 0;
  // one or more parts: '30d', '1d12h', '90s'
  const text = String(value).replace(/\s+/g, '');
  if (!/^(\d+(?:\.\d+)?(ms|s|m|h|d|w))+$/.test(text)) {
    throw new ConfigError(`Invalid ${what}: ${JSON.stringify(value)} (expected milliseconds or a string like '30d', '1d12h', '15m')`);
  }
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) total += Number(match[1]) * UNITS[match[2]!]!;
  return total;
}

/**
 * Evicts least recently used blobs (by tarn's last-used marks, else the blob's mtime) from every
 * Disk of `target` until each is under the limits, and removes stale temp files, the temp files of
 * killed processes, marks and labels without a blob, and undoes what a killed gc left. Limits
 * apply per Disk. Racing a writer is safe: no write acknowledged after gc started is removed by it
 * (writers pin their key in every running gc: see disk-gc-runs.ts); the chosen blobs are first
 * moved aside, and one that was pinned, or read during `graceMs`, is put back.
 */
export async function gc(target: Target, options: GcOptions = {}): Promise<GcReport> {
  const report: GcReport = { removed: [], removedBytes: 0, restored: 0, keptCount: 0, keptBytes: 0, tempFiles: [] };
  for (const disk of disks(target)) {
    options.signal?.throwIfAborted();
    await gcDisk(disk, options, report);
  }
  return report;
}

async function gcDisk(disk: Disk, options: GcOptions, report: GcReport): Promise<void> {
  const now = Date.now();
  const maxSize = options.maxSize === undefined ? Infinity : parseSize(options.maxSize, 'maxSize');
  const maxCount = options.maxCount ?? Infinity;
  const cutoff = options.olderThan === undefined ? -Infinity : now - parseDuration(options.olderThan, 'olderThan');
  const recent = now - parseDuration(options.keepRecent ?? '1m', 'keepRecent');
  const tmpCutoff = now - parseDuration(options.tmpAge ?? '1d', 'tmpAge');

  // registered before listing: a writer acknowledging after this point has pinned its key (gc-run.ts)
  const run = options.dryRun ? null : await GcRun.start(disk);
  try {
    const entries: Evicted[] = [];
    for await (const key of disk.keys()) {
      options.signal?.throwIfAborted();
      const [stat, lastUsed] = await Promise.all([fsp.stat(disk.pathOf(key)).catch(() => null), disk.lastUsed(key)]);
      if (stat !== null && lastUsed !== null) entries.push({ key, size: stat.size, lastUsed });
      options.onProgress?.({ operation: 'gc', files: entries.length, totalFiles: null, bytes: 0, totalBytes: null });
    }
    entries.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
    let count = entries.length;
    let bytes = entries.reduce((sum, entry) => sum + entry.size, 0);
    const chosen: Evicted[] = [];
    for (const entry of entries) {
      const time = entry.lastUsed.getTime();
      if (time >= recent) break; // sorted: every later entry is recent too
      if (time >= cutoff && bytes <= maxSize && count <= maxCount) break;
      chosen.push(entry);
      count--;
      bytes -= entry.size;
    }

    if (run === null) {
      report.removed.push(...chosen);
      report.removedBytes += chosen.reduce((sum, entry) => sum + entry.size, 0);
    } else {
      const restored = await evict(disk, run, chosen, options, report);
      count += restored.count;
      bytes += restored.bytes;
      await removeOrphans(disk, run, new Set(entries.map((entry) => entry.key)));
      await undoLegacyTrash(disk, now);
    }
    report.keptCount += count;
    report.keptBytes += bytes;

    for (const file of await disk.tempFiles()) {
      // a live writer keeps modifying its temp file: only long-untouched ones, or a killed process's, are removed
      if (file.mtime.getTime() >= tmpCutoff && !leftByDeadProcess(basename(file.path))) continue;
      if (!options.dryRun) await fsp.rm(file.path, { force: true, recursive: true });
      report.tempFiles.push({ path: file.path, size: file.size });
    }
  } finally {
    await run?.finish();
  }
}

/**
 * Moves the chosen blobs into the run's folder, waits, then removes those nobody pinned (a writer)
 * or used (a reader: its last-used mark moved) meanwhile; returns what was put back.
 */
async function evict(disk: Disk, run: GcRun, chosen: Evicted[], options: GcOptions, report: GcReport): Promise<{ count: number; bytes: number }> {
  const restored = { count: 0, bytes: 0 };
  const moved: Evicted[] = [];
  let done = 0;
  const total = chosen.reduce((sum, entry) => sum + entry.size, 0);
  let doneBytes = 0;
  for (const entry of chosen) {
    if (options.signal?.aborted) break;
    if (await run.takeBlob(entry.key)) moved.push(entry);
  }
  // a reader that found the blob just before it was moved touches its mark right after
  if (moved.length > 0) await sleep(options.graceMs ?? 500);
  for (const entry of moved) {
    const lastUsed = await disk.lastUsed(entry.key);
    const used = lastUsed !== null && lastUsed.getTime() > entry.lastUsed.getTime();
    const keep = used || (await run.pinned(entry.key));
    if (keep) await run.putBack(entry.key);
    if (!keep && (await run.discard(entry.key))) {
      report.removed.push(entry);
      report.removedBytes += entry.size;
    } else {
      report.restored++;
      restored.count++;
      restored.bytes += entry.size;
    }
    done++;
    doneBytes += entry.size;
    options.onProgress?.({ operation: 'gc', files: done, totalFiles: moved.length, bytes: doneBytes, totalBytes: total });
  }
  options.signal?.throwIfAborted();
  return restored;
}

/**
 * Removes last-used marks and labels whose blob is gone (a delete or an older gc killed midway),
 * through the run's folder, so that a writer storing the key right now keeps them (it pins it).
 */
async function removeOrphans(disk: Disk, run: GcRun, listed: Set<Key>): Promise<void> {
  const orphans = new Set<Key>();
  const { marks, labels: labelsRoot } = disk.sidecarRoots();
  for (const root of [marks, labelsRoot]) {
    for (const prefix of await fsp.readdir(root).catch(() => [] as string[])) {
      for (const name of await fsp.readdir(join(root, prefix)).catch(() => [] as string[])) {
        const key = prefix + name.replace(/\.json$/, '');
        if (/^[0-9a-f]{64}$/.test(key) && !listed.has(key)) orphans.add(key);
      }
    }
  }
  for (const key of orphans) {
    if ((await fsp.stat(disk.pathOf(key)).catch(() => null)) !== null) continue; // written since the listing
    if (mayBeAside(disk.root, key, run.path)) continue; // another gc holds the blob, and may put it back
    await run.discard(key);
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
    if (/^[0-9a-f]{64}$/.test(key)) await disk.restore(key, join(trash, name));
    else await fsp.rm(join(trash, name), { force: true });
  }
}

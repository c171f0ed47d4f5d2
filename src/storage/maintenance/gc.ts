import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../errors.js';
import type { Key } from '../../key.js';
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
   * How long gc waits between moving the chosen blobs aside and removing them; a blob written or
   * read meanwhile (its last-used mark moved) is put back. @default 500
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
 * Disk of `target` until each is under the limits, and removes stale temp files. Limits apply
 * per Disk. Racing a writer is safe: recently used blobs are kept, and the chosen blobs are first
 * moved aside, then checked again after `graceMs`; one that was used meanwhile is put back.
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

  if (options.dryRun) {
    report.removed.push(...chosen);
    report.removedBytes += chosen.reduce((sum, entry) => sum + entry.size, 0);
  } else {
    const restored = await evict(disk, chosen, options, report);
    count += restored.count;
    bytes += restored.bytes;
  }
  report.keptCount += count;
  report.keptBytes += bytes;

  // leftovers of a gc killed between moving aside and removing (moved over an hour ago: a rename sets ctime)
  const trash = join(disk.root, '.trash');
  for (const name of await fsp.readdir(trash).catch(() => [] as string[])) {
    const stat = await fsp.stat(join(trash, name)).catch(() => null);
    if (stat !== null && stat.ctimeMs < now - 3_600_000 && !options.dryRun) await fsp.rm(join(trash, name), { force: true });
  }
  const tmpCutoff = now - parseDuration(options.tmpAge ?? '1d', 'tmpAge');
  for (const file of await disk.tempFiles()) {
    // a live writer keeps modifying its temp file: only long-untouched ones are removed
    if (file.mtime.getTime() >= tmpCutoff) continue;
    if (!options.dryRun) await fsp.rm(file.path, { force: true });
    report.tempFiles.push({ path: file.path, size: file.size });
  }
}

/** Moves the chosen blobs aside, waits, then removes those nobody used meanwhile; returns what was put back. */
async function evict(disk: Disk, chosen: Evicted[], options: GcOptions, report: GcReport): Promise<{ count: number; bytes: number }> {
  const restored = { count: 0, bytes: 0 };
  const moved: { entry: Evicted; path: string }[] = [];
  let done = 0;
  const total = chosen.reduce((sum, entry) => sum + entry.size, 0);
  let doneBytes = 0;
  for (const entry of chosen) {
    if (options.signal?.aborted) break;
    const path = await disk.moveAside(entry.key, '.trash');
    if (path !== null) moved.push({ entry, path });
  }
  // a writer that found the blob just before it was moved touches its mark right after
  if (moved.length > 0) await sleep(options.graceMs ?? 500);
  for (const { entry, path } of moved) {
    const lastUsed = await disk.lastUsed(entry.key);
    if (lastUsed !== null && lastUsed.getTime() > entry.lastUsed.getTime()) {
      await disk.restore(entry.key, path);
      report.restored++;
      restored.count++;
      restored.bytes += entry.size;
    } else {
      await fsp.rm(path, { force: true });
      await disk.forget(entry.key);
      report.removed.push(entry);
      report.removedBytes += entry.size;
    }
    done++;
    doneBytes += entry.size;
    options.onProgress?.({ operation: 'gc', files: done, totalFiles: moved.length, bytes: doneBytes, totalBytes: total });
  }
  options.signal?.throwIfAborted();
  return restored;
}

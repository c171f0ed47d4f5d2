import { resolve } from 'node:path';
import { ConfigError } from '../../errors.js';
import type { Key } from '../../key.js';
import { adminOf, type Eviction, type LakeAdmin } from '../../locations/admin.js';
import type { Location } from '../../locations/interface.js';
import { parseSize, type Size } from '../../size.js';
import { layers, type Target } from './leaves.js';
import type { ProgressCallback } from './progress.js';
import { UsageOrder } from './usage-order.js';

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
  /**
   * Locations of a composition that are plain caches: gc evicts from them by the limits alone,
   * even values no lower level holds. `true`: every level. Otherwise names (as `du` prints them)
   * or folders. @default none: from a level with levels below it, gc evicts only what a lower level also holds
   */
  plainCache?: boolean | readonly string[];
  /**
   * Called with each value removed (or that would be, with dryRun), as gc goes. When given,
   * `report.removed` stays empty: memory does not grow with the number removed.
   */
  onRemove?: (entry: Evicted) => void | Promise<void>;
  onProgress?: ProgressCallback;
  /**
   * Stops the run while it lists or moves blobs aside, then throws the signal's reason. Blobs
   * already moved aside are always settled first (removed, or put back when used meanwhile):
   * an abort never leaves a blob in `.trash/`.
   */
  signal?: AbortSignal;
}

export type Evicted = Eviction;

/** What gc did in one location of the target. */
export interface GcLocationReport {
  location: string;
  /** False for a location gc does not evict from (a remote or in-memory store): see `note`. */
  collected: boolean;
  removedCount: number;
  removedBytes: number;
  keptCount: number;
  keptBytes: number;
  /** Values the limits chose but no lower level holds: kept, since they are the only copy (see `plainCache`). */
  onlyCopies: number;
  /** Values put back because they were used or written while gc ran. */
  restored: number;
  /** Bytes the store's files gave back (a Packed store compacted). */
  reclaimedBytes: number;
  /** Why a location was left as it is, or what gc could not do there. */
  note: string | null;
}

export interface GcReport {
  /** Values removed (or that would be, with dryRun); empty when `onRemove` is given. */
  removed: Evicted[];
  removedCount: number;
  removedBytes: number;
  /** Values chosen but put back because they were used while gc ran. */
  restored: number;
  /** What is left, in every location (those gc does not evict from included). */
  keptCount: number;
  keptBytes: number;
  /** Values kept because no lower level holds them (see `plainCache`). */
  onlyCopies: number;
  /** Stale temp files removed (or that would be). */
  tempFiles: { path: string; size: number }[];
  /** Per location of the target, in order. */
  locations: GcLocationReport[];
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

/** Evictions are settled this many at a time (a Disk waits `graceMs` once per batch): memory stays bounded. */
const BATCH = 10_000;

/**
 * Evicts least recently used values (by last use: a Disk's last-used marks, else the blob's
 * mtime; a Packed store's rows) from every local store of `target` (Disk, Packed) until each is
 * under the limits, and removes stale temp files and what killed writers and gc runs left. Limits
 * apply per store. In a composition, a level with levels below it gives up only values a lower
 * level also holds (the only copy of a value is kept) unless it is named in `plainCache`.
 * Remote and in-memory stores (Redis, S3, SFTP, Memory…) are not evicted from: they are counted
 * and reported with a note. Racing a writer is safe: no write acknowledged after gc started is
 * removed by it. Memory does not grow with the number of keys (see usage-order.ts).
 */
export async function gc(target: Target, options: GcOptions = {}): Promise<GcReport> {
  const limits = limitsOf(options);
  const report: GcReport = { removed: [], removedCount: 0, removedBytes: 0, restored: 0, keptCount: 0, keptBytes: 0, onlyCopies: 0, tempFiles: [], locations: [] };
  const plain = plainCaches(options.plainCache);
  for (const { location, below } of layers(target)) {
    options.signal?.throwIfAborted();
    const admin = adminOf(location);
    const part = admin === null ? await leaveAsIs(location) : await collectOne(admin, below.length === 0 || plain(location, admin) ? null : below, limits, options, report);
    report.locations.push(part);
    report.keptCount += part.keptCount;
    report.keptBytes += part.keptBytes;
    report.onlyCopies += part.onlyCopies;
  }
  return report;
}

interface Limits {
  now: number;
  maxSize: number;
  maxCount: number;
  cutoff: number;
  recent: number;
  tmpCutoff: number;
}

function limitsOf(options: GcOptions): Limits {
  const now = Date.now();
  const maxCount = options.maxCount ?? Infinity;
  if (!(maxCount === Infinity || (Number.isInteger(maxCount) && maxCount >= 0))) throw new ConfigError(`Invalid maxCount: ${maxCount} (expected a whole number)`);
  return {
    now,
    maxSize: options.maxSize === undefined ? Infinity : parseSize(options.maxSize, 'maxSize'),
    maxCount,
    cutoff: options.olderThan === undefined ? -Infinity : now - parseDuration(options.olderThan, 'olderThan'),
    recent: now - parseDuration(options.keepRecent ?? '1m', 'keepRecent'),
    tmpCutoff: now - parseDuration(options.tmpAge ?? '1d', 'tmpAge'),
  };
}

/** Whether a location is a plain cache by the option: true for all, or named (its name, or its folder). */
function plainCaches(option: GcOptions['plainCache']): (location: Location, admin: LakeAdmin) => boolean {
  if (option === true) return () => true;
  if (!option) return () => false;
  const names = new Set(option.flatMap((name) => [name, resolve(name)]));
  return (location, admin) => names.has(location.name) || names.has(admin.folder);
}

/** True when some location below holds `key` (a failure to ask counts as no: the value is kept). */
async function heldBelow(below: readonly Location[], key: Key): Promise<boolean> {
  for (const location of below) {
    try {
      const held = location.has ? await location.has(key) : (await location.read(key, { use: false })) !== null;
      if (held) return true;
    } catch {
      // a level that cannot answer (server down): not evidence of a copy
    }
  }
  return false;
}

async function collectOne(admin: LakeAdmin, below: readonly Location[] | null, limits: Limits, options: GcOptions, report: GcReport): Promise<GcLocationReport> {
  const part: GcLocationReport = {
    location: admin.location.name, collected: true, removedCount: 0, removedBytes: 0, keptCount: 0, keptBytes: 0,
    onlyCopies: 0, restored: 0, reclaimedBytes: 0, note: null,
  };
  const dryRun = options.dryRun ?? false;
  // registered before listing: a writer acknowledging after this point is never removed
  const collection = await admin.collect({ dryRun, graceMs: options.graceMs ?? 500, tmpCutoff: limits.tmpCutoff, now: limits.now });
  const order = new UsageOrder();
  try {
    let listed = 0;
    for await (const item of admin.items({ lastUsed: true })) {
      options.signal?.throwIfAborted();
      if (item.lastUsed !== null) order.add({ key: item.key, size: item.size, lastUsed: item.lastUsed });
      options.onProgress?.({ operation: 'gc', files: ++listed, totalFiles: null, bytes: 0, totalBytes: null });
    }
    let { count, bytes } = order;
    let done = 0;
    let doneBytes = 0;
    let chosenBytes = 0;
    let chosenCount = 0;
    let batch: Evicted[] = [];
    const settle = async () => {
      const { removed, restored } = await collection.evict(batch);
      batch = [];
      for (const entry of removed) {
        part.removedCount++;
        part.removedBytes += entry.size;
        if (options.onRemove) await options.onRemove(entry);
        else report.removed.push(entry);
      }
      for (const entry of restored) {
        part.restored++;
        count++;
        bytes += entry.size;
      }
      done += removed.length + restored.length;
      doneBytes += [...removed, ...restored].reduce((sum, entry) => sum + entry.size, 0);
      options.onProgress?.({ operation: 'gc', files: done, totalFiles: chosenCount, bytes: doneBytes, totalBytes: chosenBytes });
    };
    for await (const entry of order.oldestFirst()) {
      const time = entry.lastUsed.getTime();
      if (time >= limits.recent) break; // oldest first: every later entry is recent too
      if (time >= limits.cutoff && bytes <= limits.maxSize && count <= limits.maxCount) break;
      if (options.signal?.aborted) break;
      if (below !== null && !(await heldBelow(below, entry.key))) {
        part.onlyCopies++;
        continue;
      }
      batch.push(entry);
      chosenCount++;
      chosenBytes += entry.size;
      count--;
      bytes -= entry.size;
      if (batch.length >= BATCH) await settle();
    }
    // what is chosen is always settled, even on an abort: nothing stays set aside
    if (batch.length > 0) await settle();
    options.signal?.throwIfAborted();
    const tidy = await collection.tidy();
    report.tempFiles.push(...tidy.tempFiles);
    part.reclaimedBytes = tidy.reclaimedBytes;
    part.keptCount = count;
    part.keptBytes = bytes;
    if (part.onlyCopies > 0) {
      part.note = `${part.onlyCopies} values the limits chose were kept: no lower level holds them (say the level is a plain cache to evict them anyway)`;
    }
  } finally {
    order.close();
    await collection.finish();
  }
  report.removedCount += part.removedCount;
  report.removedBytes += part.removedBytes;
  report.restored += part.restored;
  return part;
}

/** A location gc does not evict from: counted, with why. */
async function leaveAsIs(location: Location): Promise<GcLocationReport> {
  let count = 0;
  let bytes = 0;
  for await (const entry of location.contents()) {
    count++;
    bytes += entry.meta.size ?? 0;
  }
  return {
    location: location.name, collected: false, removedCount: 0, removedBytes: 0, keptCount: count, keptBytes: bytes,
    onlyCopies: 0, restored: 0, reclaimedBytes: 0,
    note:
      'not evicted from: gc evicts from local stores (Disk, Packed) only, where it can hold back a value a writer is storing; ' +
      'a remote store is shared by other machines. Expire values there with its own rules (a Redis ttl or maxmemory-policy, an S3 lifecycle rule)',
  };
}

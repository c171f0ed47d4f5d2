/**
 * Operating a cache: clearing it (whole, or one function's entries), evicting least recently used
 * entries until it is under limits (joblib's `reduce_size`), and what it holds, by function.
 *
 * An entry is removed from the index first, then the parts no remaining entry names: a reader
 * that read the entry just before finds a part missing, which is a miss that recomputes, never a
 * wrong value. Parts being written by this process are kept. A part stored by another process for
 * an entry it has not indexed yet may be removed: that entry is then a miss, recomputed and
 * repaired at its next call.
 */
import { ConfigError } from '../errors.js';
import type { Key } from '../key.js';
import { parseSize, type Size } from '../size.js';
import { type Duration, parseDuration } from '../storage/maintenance/gc.js';
import type { IndexedEntry } from './entry-index.js';
import { type CacheWhere, RECORD_ARGS, Store } from './store.js';

export interface CacheLimits {
  /** Evict least recently used entries until the results take at most this many bytes. @default no limit */
  maxBytes?: Size;
  /** Evict least recently used entries until at most this many remain. @default no limit */
  maxEntries?: number;
  /** Evict every entry not used (written or hit) for this long: ms or '30d', '12h'. @default no limit */
  maxAge?: Duration;
}

export interface ReduceOptions extends CacheLimits {
  /** Report what would be removed, remove nothing. @default false */
  dryRun?: boolean;
}

export interface RemovedEntry {
  key: Key;
  fn: string;
  size: number;
  lastUsed: Date;
}

export interface ReduceReport {
  /** Entries removed (or that would be, with dryRun). */
  removed: RemovedEntry[];
  removedBytes: number;
  /** Parts and large bodies removed from storage because no entry names them any more. */
  removedParts: number;
  kept: number;
  keptBytes: number;
}

export interface FunctionUsage {
  fn: string;
  entries: number;
  /** Bytes of the results (entries and the parts they name; a part shared by several counts for each). */
  bytes: number;
  /** The latest use of any of its entries. */
  lastUsed: Date | null;
}

interface Limits {
  maxBytes: number;
  maxEntries: number;
  oldest: number;
}

/** Checks limits once, with errors that name the option. */
export function parseLimits(limits: CacheLimits): Limits {
  const maxEntries = limits.maxEntries ?? Infinity;
  if (maxEntries !== Infinity && !(Number.isInteger(maxEntries) && maxEntries >= 0)) {
    throw new ConfigError(`Invalid maxEntries: ${String(limits.maxEntries)} (expected a whole number)`);
  }
  return {
    maxBytes: limits.maxBytes === undefined ? Infinity : parseSize(limits.maxBytes, 'maxBytes'),
    maxEntries,
    oldest: limits.maxAge === undefined ? -Infinity : Date.now() - parseDuration(limits.maxAge, 'maxAge'),
  };
}

const removedOf = (entry: IndexedEntry): RemovedEntry => ({ key: entry.key, fn: entry.fn, size: entry.size, lastUsed: new Date(entry.used) });

/** Removes `chosen` from the index, then the parts that no entry left names. */
async function removeEntries(store: Store, chosen: IndexedEntry[], report: ReduceReport): Promise<void> {
  const candidates = new Set<Key>();
  for (const entry of chosen) {
    await store.index.delete(entry.key);
    for (const part of entry.parts) candidates.add(part);
  }
  if (chosen.length > 0) await store.index.compact?.();
  if (candidates.size === 0) return;
  // memory grows with the parts removed, not with the size of the cache
  for await (const entry of store.index.entries()) {
    for (const part of entry.parts) candidates.delete(part);
    if (candidates.size === 0) return;
  }
  for (const part of candidates) {
    if (store.writing.has(part)) continue;
    if (await store.storage.delete(part)) report.removedParts++;
  }
}

/** Evicts entries (least recently used first) until the cache is under `options`. */
export async function reduceStore(store: Store, options: ReduceOptions): Promise<ReduceReport> {
  const limits = parseLimits(options);
  const report: ReduceReport = { removed: [], removedBytes: 0, removedParts: 0, kept: 0, keptBytes: 0 };
  // what eviction needs of each entry; the parts are read again for the few removed
  const all: { key: Key; used: number; size: number }[] = [];
  for await (const entry of store.index.entries()) {
    if (entry.args !== RECORD_ARGS) all.push({ key: entry.key, used: entry.used, size: entry.size });
  }
  all.sort((a, b) => a.used - b.used);
  let count = all.length;
  let bytes = all.reduce((sum, entry) => sum + entry.size, 0);
  const chosen = new Set<Key>();
  for (const entry of all) {
    if (entry.used >= limits.oldest && bytes <= limits.maxBytes && count <= limits.maxEntries) break;
    chosen.add(entry.key);
    count--;
    bytes -= entry.size;
  }
  report.kept = count;
  report.keptBytes = bytes;
  if (chosen.size === 0) return report;
  const entries: IndexedEntry[] = [];
  for await (const entry of store.index.entries()) if (chosen.has(entry.key)) entries.push(entry);
  entries.sort((a, b) => a.used - b.used);
  for (const entry of entries) {
    report.removed.push(removedOf(entry));
    report.removedBytes += entry.size;
  }
  if (!options.dryRun) await removeEntries(store, entries, report);
  return report;
}

/** Removes every entry of `fn` (every entry of the cache when undefined), with their records. */
export async function clearStore(store: Store, fn?: string): Promise<ReduceReport> {
  const report: ReduceReport = { removed: [], removedBytes: 0, removedParts: 0, kept: 0, keptBytes: 0 };
  const chosen: IndexedEntry[] = [];
  for await (const entry of store.index.entries(fn)) {
    chosen.push(entry);
    if (entry.args === RECORD_ARGS) continue;
    report.removed.push(removedOf(entry));
    report.removedBytes += entry.size;
  }
  await removeEntries(store, chosen, report);
  for await (const entry of store.index.entries()) {
    if (entry.args === RECORD_ARGS) continue;
    report.kept++;
    report.keptBytes += entry.size;
  }
  return report;
}

/** Entries and bytes of each function, largest first. */
export async function storeUsage(store: Store): Promise<FunctionUsage[]> {
  const byFn = new Map<string, FunctionUsage>();
  for await (const entry of store.index.entries()) {
    if (entry.args === RECORD_ARGS) continue;
    let usage = byFn.get(entry.fn);
    if (!usage) byFn.set(entry.fn, (usage = { fn: entry.fn, entries: 0, bytes: 0, lastUsed: null }));
    usage.entries++;
    usage.bytes += entry.size;
    if (usage.lastUsed === null || entry.used > usage.lastUsed.getTime()) usage.lastUsed = new Date(entry.used);
  }
  return [...byFn.values()].sort((a, b) => b.bytes - a.bytes || (a.fn < b.fn ? -1 : 1));
}

/** Removes every entry of the cache at `where` (a folder, a HashKeyStorage or { index, storage }). */
export function clearCache(where: CacheWhere): Promise<ReduceReport> {
  return clearStore(Store.of(where, false));
}

/** Evicts least recently used entries of the cache at `where` until it is under the limits. */
export function reduceCache(where: CacheWhere, options: ReduceOptions): Promise<ReduceReport> {
  return reduceStore(Store.of(where, false), options);
}

/** What the cache at `where` holds, by function. */
export function cacheUsage(where: CacheWhere): Promise<FunctionUsage[]> {
  return storeUsage(Store.of(where, false));
}

/**
 * Removes the parts in a cache folder's own storage that no entry names: left by a process killed
 * between storing a part and its entry, or by entries of an older format. Only for a storage made
 * for the cache (a folder's): a HashKeyStorage given by the user may hold other blobs. Parts used
 * within `keepRecent` are kept (a writer may be about to index them).
 */
export async function sweepStore(store: Store, options: { keepRecent?: Duration; dryRun?: boolean } = {}): Promise<{ count: number; bytes: number }> {
  const swept = { count: 0, bytes: 0 };
  if (!store.ownsStorage) return swept;
  const recent = Date.now() - parseDuration(options.keepRecent ?? '1h', 'keepRecent');
  const named = new Set<Key>();
  for await (const entry of store.index.entries()) for (const part of entry.parts) named.add(part);
  for await (const blob of store.storage.contents()) {
    const used = blob.meta.lastUsed?.getTime();
    if (named.has(blob.key) || store.writing.has(blob.key) || used === undefined || used >= recent) continue;
    if (options.dryRun || (await store.storage.delete(blob.key))) {
      swept.count++;
      swept.bytes += blob.meta.size ?? 0;
    }
  }
  return swept;
}

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fsp, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { asSource, bufferBlob, fileBlob, type Source } from '../../blob.js';
import { StorageCorruption } from '../../errors.js';
import { digestBytes, type Key } from '../../key.js';
import { Disk } from '../../locations/disk.js';
import { hashFile } from '../../locations/disk-io.js';
import { PROCESS_TAG } from '../../locations/disk-liveness.js';
import type { Location } from '../../locations/interface.js';
import { disks, locationOf, type Target } from './leaves.js';
import { eachLimit, type ProgressCallback } from './progress.js';
import { startWorker } from '../../workers.js';

export interface MigrateOptions {
  /** Copies in flight. @default 8 */
  jobs?: number;
  /**
   * Worker threads sharing the copies between Disk lakes (hashing and small-file I/O then use
   * several cores; each thread has `jobs / threads` copies in flight). Other locations use one. @default 1
   */
  threads?: number;
  /**
   * Flush the target's Disk filesystems (`sync -f`) once at the end: copies made with
   * `fsync: false` are then durable when migrate returns. @default true
   */
  sync?: boolean;
  onProgress?: ProgressCallback;
  /**
   * Stops the run: no new copy starts, those in flight finish (each is whole or absent: a temp
   * file, then a rename), then the signal's reason is thrown. Run again to resume.
   */
  signal?: AbortSignal;
}

export interface MigrateReport {
  copied: number;
  copiedBytes: number;
  /** Keys the target already held (a Disk target: a blob of the same size). */
  skipped: number;
  skippedBytes: number;
  failed: { key: Key; error: string }[];
}

/** Values up to this size are read whole, hashed, and handed over as bytes. */
const IN_MEMORY = 1024 * 1024;
/** Values up to this size are read with a synchronous call. */
const SYNC_READ = 256 * 1024;

export interface Item {
  key: Key;
  size: number;
  labels: string[] | null | undefined;
}

/** The outcome of one key: copied, skipped (already there) or failed (with the error). */
export interface ItemResult {
  key: Key;
  size: number;
  skipped: boolean;
  error?: string;
}

/** Copies `items` from `source` to `target`, `jobs` at a time, reporting each outcome. */
export async function copyItems(
  source: Location,
  target: Location,
  items: readonly Item[],
  jobs: number,
  onResult: (result: ItemResult) => void,
  signal?: AbortSignal,
): Promise<void> {
  await eachLimit(items, jobs, async (item) => {
    try {
      if (await holds(target, item.key, item.size)) {
        await completeLabels(source, target, item);
        onResult({ key: item.key, size: item.size, skipped: true });
      } else onResult({ key: item.key, size: await copy(source, target, item), skipped: false });
    } catch (error) {
      onResult({ key: item.key, size: item.size, skipped: false, error: (error as Error).message });
    }
  }, signal);
}

/** Runs copyItems in a worker thread that opens the same two lakes with the same options. */
function inWorker(source: Disk, target: Disk, items: Item[], jobs: number, onResult: (result: ItemResult) => void, signal?: AbortSignal): Promise<void> {
  const workerData = { from: { root: source.root, options: source.options }, to: { root: target.root, options: target.options }, items, jobs };
  const worker = startWorker(import.meta.url, './migrate-worker', workerData);
  const abort = () => worker.postMessage('abort');
  signal?.addEventListener('abort', abort, { once: true });
  worker.once('exit', () => signal?.removeEventListener('abort', abort));
  return new Promise((resolve, reject) => {
    worker.on('message', (results: ItemResult[]) => results.forEach(onResult));
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a migrate worker stopped with code ${code}`))));
  });
}

/**
 * Copies every key of `from` that `to` does not hold, `jobs` at a time, and checks every copy
 * against its key: a value the migration reads whole is hashed from the very bytes it hands to the
 * target; a large file of a source Disk is copied by the kernel into the target's staging folder
 * while the same file is hashed, then moved into place; any other value is handed to the target
 * as unverified, and the target hashes it while storing it. A corrupted source blob is reported
 * as failed and not copied. Reading a source Disk does not count as a use (its marks stay).
 *
 * Interrupted (even killed), it is resumed by running it again: keys already copied are skipped
 * (a Disk target still gets the labels it lacks), and a copy cut short never reached its place
 * (temp file, then rename).
 */
export async function migrate(from: Target, to: Target, options: MigrateOptions = {}): Promise<MigrateReport> {
  const source = locationOf(from);
  const target = locationOf(to);
  const jobs = options.jobs ?? 8;
  const report: MigrateReport = { copied: 0, copiedBytes: 0, skipped: 0, skippedBytes: 0, failed: [] };
  options.signal?.throwIfAborted();
  const work = await list(source);
  const totalBytes = work.reduce((sum, item) => sum + item.size, 0);
  let files = 0;
  let bytes = 0;
  const tell = () => options.onProgress?.({ operation: 'migrate', files, totalFiles: work.length, bytes, totalBytes });
  tell();
  const onResult = (result: ItemResult) => {
    if (result.error !== undefined) report.failed.push({ key: result.key, error: result.error });
    else if (result.skipped) {
      report.skipped++;
      report.skippedBytes += result.size;
    } else {
      report.copied++;
      report.copiedBytes += result.size;
    }
    files++;
    bytes += result.size;
    tell();
  };
  // a thread is worth starting for a share of at least 64 files or 64 MiB
  const worth = Math.max(Math.floor(work.length / 64), Math.min(work.length, Math.floor(totalBytes / 2 ** 26)));
  const threads = Math.max(1, Math.min(options.threads ?? 1, worth));
  if (threads > 1 && source instanceof Disk && target instanceof Disk) {
    // one share of the keys per thread, dealt round-robin so that each gets small and large alike
    const shares = Array.from({ length: threads }, (_, thread) => work.filter((_, index) => index % threads === thread));
    await Promise.all(shares.map((share) => inWorker(source, target, share, Math.ceil(jobs / threads), onResult, options.signal)));
    options.signal?.throwIfAborted();
  } else {
    await copyItems(source, target, work, jobs, onResult, options.signal);
  }
  if (options.sync !== false) await Promise.all(disks(to).map((disk) => syncFilesystem(disk.root)));
  return report;
}

/** The keys of the source with their sizes (a Disk: a walk of its folders and a stat per blob, `jobs` at a time). */
async function list(source: Location): Promise<Item[]> {
  if (!(source instanceof Disk)) {
    const items: Item[] = [];
    for await (const entry of source.contents()) items.push({ key: entry.key, size: entry.meta.size ?? 0, labels: entry.meta.labels });
    return items;
  }
  const keys: Key[] = [];
  for await (const key of source.keys()) keys.push(key);
  const items: Item[] = [];
  // a stat is microseconds: synchronous calls beat a trip to the thread pool per key
  for (const key of keys) {
    const stat = statSync(source.pathOf(key), { throwIfNoEntry: false });
    if (stat !== undefined) items.push({ key, size: stat.size, labels: undefined });
  }
  return items;
}

/** True when `target` holds `key`; on a Disk, a blob of the expected size (a cheap stat, no read). */
async function holds(target: Location, key: Key, size: number): Promise<boolean> {
  if (target instanceof Disk) {
    const stat = statSync(target.pathOf(key), { throwIfNoEntry: false });
    return stat !== undefined && stat.size === size;
  }
  if (target.has) return target.has(key);
  return (await target.read(key, { use: false })) !== null;
}

/**
 * A Disk target that holds the key gets the source's labels it lacks: a migrate killed between a
 * copy and its labels, then resumed, skips the key but still completes its labels.
 */
async function completeLabels(source: Location, target: Location, item: Item): Promise<void> {
  if (!(target instanceof Disk)) return;
  const labels = item.labels === undefined ? (source instanceof Disk ? source.labelsOf(item.key) : null) : item.labels;
  if (labels === null || labels.length === 0) return;
  const present = target.labelsOf(item.key) ?? [];
  if (labels.some((label) => !present.includes(label))) await target.addLabels(item.key, labels);
}

/** Copies one value; returns its size. */
async function copy(source: Location, target: Location, item: Item): Promise<number> {
  const { key } = item;
  let path: string | null = null;
  let labels = item.labels ?? null;
  let generic: Source | null = null;
  if (source instanceof Disk) {
    path = source.pathOf(key);
    if (item.labels === undefined) labels = source.labelsOf(key);
  } else {
    const value = await source.read(key, { use: false }); // a copy is not a use
    if (value === null) throw new Error('removed from the source while migrating');
    path = value.path;
    generic = asSource(value, false);
  }

  const staging = target.stagingDir?.() ?? null;
  if (path !== null && item.size <= IN_MEMORY) {
    // small files: a synchronous read (microseconds from the page cache) saves thread-pool round trips
    const bytes = item.size <= SYNC_READ ? readFileSync(path) : await fsp.readFile(path);
    const actual = digestBytes(bytes);
    if (actual !== key) throw new StorageCorruption(key, actual, `the source ${source.name}`);
    await store(target, key, { ...bufferBlob(bytes), verified: true }, labels);
    return bytes.length;
  }
  if (path !== null && staging !== null) {
    // a kernel copy (a reflink where the filesystem can) and the hash of the same file, side by side
    // the name carries the process: the next open removes it if this one is killed
    const tmp = join(staging, `migrate.${key.slice(0, 16)}.${PROCESS_TAG}.${randomBytes(6).toString('hex')}`);
    try {
      const [actual] = await Promise.all([hashFile(path), fsp.copyFile(path, tmp, fsConstants.COPYFILE_FICLONE)]);
      if (actual !== key) throw new StorageCorruption(key, actual, `the source ${source.name}`);
      await store(target, key, { ...fileBlob(tmp, item.size), verified: true, movable: true }, labels);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    return item.size;
  }
  // anything else: the target verifies the bytes while it stores them
  await store(target, key, generic ?? asSource(fileBlob(path!, item.size), false), labels);
  return item.size;
}

async function store(target: Location, key: Key, source: Source, labels: string[] | null): Promise<void> {
  if ((await target.write(key, source, labels)) === null) throw new Error(`declined by ${target.name} (full or read-only)`);
}

/** Flushes the filesystem holding `dir` (syncfs through coreutils' `sync -f`; Node has no syncfs). */
function syncFilesystem(dir: string): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('sync', ['-f', dir], { stdio: 'ignore' });
    child.on('error', () => resolve()); // no `sync` command: the copies were fsynced one by one, or not asked to be
    child.on('close', () => resolve());
  });
}

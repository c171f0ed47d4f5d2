import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asSource, bufferBlob, fileBlob, type Source } from '../../blob.js';
import { checkDigest, hashFile, verifyBytes } from '../../digest.js';
import type { Key } from '../../key.js';
import { adminOf, type LakeAdmin, type ThreadOpen } from '../../locations/admin.js';
import { PROCESS_TAG } from '../../locations/disk/disk-liveness.js';
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

/** Copies `items` (an array or a stream) from `source` to `target`, `jobs` at a time, reporting each outcome. */
export async function copyItems(
  source: Location,
  target: Location,
  items: Iterable<Item> | AsyncIterable<Item>,
  jobs: number,
  onResult: (result: ItemResult) => void,
  signal?: AbortSignal,
): Promise<void> {
  const from = adminOf(source);
  const to = adminOf(target);
  await eachLimit(items, jobs, async (item) => {
    try {
      if (await holds(target, to, item.key, item.size)) {
        await completeLabels(from, to, item);
        onResult({ key: item.key, size: item.size, skipped: true });
      } else onResult({ key: item.key, size: await copy(source, from, target, item), skipped: false });
    } catch (error) {
      onResult({ key: item.key, size: item.size, skipped: false, error: (error as Error).message });
    }
  }, signal);
}

/** Items handed to a worker thread at a time, and how many a thread may have waiting. */
const CHUNK = 256;
const CHUNKS_AHEAD = 2;

/**
 * Shares a stream of items between worker threads that open the same two lakes with the same
 * options: chunks go to the thread with the fewest waiting, at most CHUNKS_AHEAD each (memory
 * stays bounded); a thread is started for every 64 items listed, up to `threads`.
 */
async function inWorkers(
  from: ThreadOpen,
  to: ThreadOpen,
  items: AsyncIterable<Item>,
  threads: number,
  jobs: number,
  onResult: (result: ItemResult) => void,
  signal?: AbortSignal,
): Promise<void> {
  interface Thread {
    worker: ReturnType<typeof startWorker>;
    waiting: number;
    exited: Promise<void>;
  }
  const pool: Thread[] = [];
  let wake: (() => void) | null = null;
  let crashed: { error: unknown } | null = null;
  const start = (): Thread => {
    const worker = startWorker(import.meta.url, './migrate-worker', { from, to, jobs });
    const thread: Thread = {
      worker,
      waiting: 0,
      exited: new Promise((resolve, reject) => {
        worker.on('error', reject);
        worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`a migrate worker stopped with code ${code}`))));
      }),
    };
    worker.on('message', (message: { results?: ItemResult[]; chunkDone?: boolean }) => {
      message.results?.forEach(onResult);
      if (message.chunkDone) {
        thread.waiting--;
        wake?.();
      }
    });
    thread.exited.then(() => wake?.(), (error: unknown) => {
      crashed ??= { error };
      wake?.();
    });
    pool.push(thread);
    return thread;
  };
  const abort = () => {
    pool.forEach((thread) => thread.worker.postMessage('abort'));
    wake?.();
  };
  signal?.addEventListener('abort', abort, { once: true });
  try {
    let listed = 0;
    let chunk: Item[] = [];
    const send = async () => {
      if (pool.length < threads && (pool.length === 0 || listed >= 64 * (pool.length + 1))) start();
      for (;;) {
        if (signal?.aborted) return;
        if (crashed !== null) throw crashed.error;
        const free = pool.reduce((best, thread) => (thread.waiting < best.waiting ? thread : best));
        if (free.waiting < CHUNKS_AHEAD) {
          free.waiting++;
          free.worker.postMessage({ items: chunk });
          chunk = [];
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    };
    for await (const item of items) {
      if (signal?.aborted) break;
      listed++;
      chunk.push(item);
      if (chunk.length >= CHUNK) await send();
    }
    if (chunk.length > 0 && !signal?.aborted) await send();
  } finally {
    pool.forEach((thread) => thread.worker.postMessage('end'));
    await Promise.all(pool.map((thread) => thread.exited));
    signal?.removeEventListener('abort', abort);
  }
}

/**
 * Copies every key of `from` that `to` does not hold, `jobs` at a time, and checks every copy
 * against its key: a value the migration reads whole is hashed from the very bytes it hands to the
 * target; a large file of a source Disk is copied by the kernel into the target's staging folder
 * while the same file is hashed, then moved into place; any other value is handed to the target
 * as unverified, and the target hashes it while storing it. A corrupted source value is reported
 * as failed and not copied. Reading a local source (Disk, Packed) does not count as a use.
 * The source's listing is streamed: memory does not grow with the number of keys (the totals of
 * the progress are known once the listing ends).
 *
 * Interrupted (even killed), it is resumed by running it again: keys already copied are skipped
 * (a local target still gets the labels it lacks), and a copy cut short never reached its place
 * (temp file, then rename).
 */
export async function migrate(from: Target, to: Target, options: MigrateOptions = {}): Promise<MigrateReport> {
  const source = locationOf(from);
  const target = locationOf(to);
  const jobs = options.jobs ?? 8;
  const report: MigrateReport = { copied: 0, copiedBytes: 0, skipped: 0, skippedBytes: 0, failed: [] };
  options.signal?.throwIfAborted();
  let listed = 0;
  let listedBytes = 0;
  let listingDone = false;
  let files = 0;
  let bytes = 0;
  const tell = () =>
    options.onProgress?.({ operation: 'migrate', files, totalFiles: listingDone ? listed : null, bytes, totalBytes: listingDone ? listedBytes : null });
  const work = async function* (): AsyncIterable<Item> {
    for await (const item of list(source)) {
      listed++;
      listedBytes += item.size;
      yield item;
    }
    listingDone = true;
  };
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
  const fromThread = adminOf(source)?.threadOpen() ?? null;
  const toThread = adminOf(target)?.threadOpen() ?? null;
  const threads = options.threads ?? 1;
  if (threads > 1 && fromThread !== null && toThread !== null) {
    await inWorkers(fromThread, toThread, work(), threads, Math.ceil(jobs / threads), onResult, options.signal);
    options.signal?.throwIfAborted();
  } else {
    await copyItems(source, target, work(), jobs, onResult, options.signal);
  }
  listingDone = true;
  tell();
  if (options.sync !== false) await Promise.all(disks(to).map((disk) => syncFilesystem(disk.root)));
  return report;
}

/** The keys of the source with their sizes (a local store: its admin listing, no labels read). */
async function* list(source: Location): AsyncIterable<Item> {
  const admin = adminOf(source);
  if (admin !== null) {
    for await (const item of admin.items()) yield { key: item.key, size: item.size, labels: undefined };
    return;
  }
  for await (const entry of source.contents()) yield { key: entry.key, size: entry.meta.size ?? 0, labels: entry.meta.labels };
}

/** True when `target` holds `key`; a local store: with the expected size (a cheap check, no read). */
async function holds(target: Location, admin: LakeAdmin | null, key: Key, size: number): Promise<boolean> {
  if (admin !== null) return admin.holds(key, size);
  if (target.has) return target.has(key);
  return (await target.read(key, { use: false })) !== null;
}

/**
 * A local target that holds the key gets the source's labels it lacks: a migrate killed between a
 * copy and its labels, then resumed, skips the key but still completes its labels.
 */
async function completeLabels(from: LakeAdmin | null, to: LakeAdmin | null, item: Item): Promise<void> {
  if (to === null) return;
  const labels = item.labels === undefined ? ((await from?.labelsOf(item.key)) ?? null) : item.labels;
  if (labels === null || labels.length === 0) return;
  const present = (await to.labelsOf(item.key)) ?? [];
  if (labels.some((label) => !present.includes(label))) await to.addLabels(item.key, labels);
}

/** Copies one value; returns its size. */
async function copy(source: Location, from: LakeAdmin | null, target: Location, item: Item): Promise<number> {
  const { key } = item;
  let labels = item.labels ?? null;
  if (item.labels === undefined && from !== null) labels = await from.labelsOf(key);
  let path = from?.filePath(key) ?? null;
  let generic: Source | null = null;
  if (path === null && from?.readStored) {
    // a value held whole by the source (Packed): hashed from the bytes handed over, no use marked
    const bytes = await from.readStored(key);
    if (bytes === null) throw new Error('removed from the source while migrating');
    verifyBytes(key, bytes, `the source ${source.name}`);
    await store(target, key, { ...bufferBlob(bytes), verified: true }, labels);
    return bytes.length;
  }
  if (path === null) {
    const value = await source.read(key, { use: false }); // a copy is not a use
    if (value === null) throw new Error('removed from the source while migrating');
    path = value.path;
    generic = asSource(value, false);
  }

  const staging = target.stagingDir?.() ?? null;
  if (path !== null && item.size <= IN_MEMORY) {
    // small files: a synchronous read (microseconds from the page cache) saves thread-pool round trips
    const bytes = item.size <= SYNC_READ ? readFileSync(path) : await fsp.readFile(path);
    verifyBytes(key, bytes, `the source ${source.name}`);
    await store(target, key, { ...bufferBlob(bytes), verified: true }, labels);
    return bytes.length;
  }
  if (path !== null && staging !== null) {
    // a kernel copy (a reflink where the filesystem can) and the hash of the same file, side by side
    // the name carries the process: the next open removes it if this one is killed
    const tmp = join(staging, `migrate.${key.slice(0, 16)}.${PROCESS_TAG}.${randomBytes(6).toString('hex')}`);
    try {
      const [actual] = await Promise.all([hashFile(path), fsp.copyFile(path, tmp, fsConstants.COPYFILE_FICLONE)]);
      checkDigest(key, actual, `the source ${source.name}`);
      await store(target, key, { ...fileBlob(tmp, item.size), verified: true, movable: true }, labels);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    return item.size;
  }
  // anything else: the target verifies the bytes while it stores them
  if (generic === null) throw new Error('removed from the source while migrating');
  await store(target, key, generic, labels);
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

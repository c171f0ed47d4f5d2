/**
 * What the two packed benches share (bench/packed.bench.ts, bench/packed-engines.bench.ts): timing,
 * a pool of tasks in flight, random values, cacache's puts and gets, and the bare SQLite loop (Packed's table and pragmas,
 * none of its code) that both measure against.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import cacache from 'cacache';
import { openPackedDatabase, PACKED_FILE } from '../src/locations/packed/packed-db.js';
import { sqliteBackend } from '../src/sqlite.js';

export const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Flushes dirty pages, so that a timed step does not pay for the one before it. */
export function settle(): void {
  execFileSync('sync');
}

/** The last timed step: its wall time and the CPU the whole process used in it (all threads), in seconds. */
let lastStep = { seconds: 0, cpuSeconds: 0 };
export const lastTimedStep = () => lastStep;

export async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  settle();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await fn();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  lastStep = { seconds, cpuSeconds: (used.user + used.system) / 1e6 };
  if (process.env.CAIRN_BENCH_VERBOSE) console.log(`  step: ${seconds.toFixed(3)} s`);
  return seconds;
}

export async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
}

export function values(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, () => randomBytes(size));
}

/** cacache, the reference of issue 16's targets: `list` put as k0, k1, … into `dir`, each put awaited, `concurrency` in flight; puts per second. */
export async function cacachePuts(dir: string, list: Buffer[], concurrency: number): Promise<number> {
  return list.length / (await timed(() => pool(list.length, concurrency, (i) => cacache.put(dir, `k${i}`, list[i]!))));
}

/** Gets of k0 … k(count - 1) from `dir`, each awaited, `concurrency` in flight; gets per second. */
export async function cacacheGets(dir: string, count: number, concurrency: number): Promise<number> {
  return count / (await timed(() => pool(count, concurrency, (i) => cacache.get(dir, `k${i}`))));
}

/** Bytes of the files under `dir` (their length), and what the filesystem allocated for them (a sparse file allocates less). */
export function filesUsage(dir: string): { length: number; allocated: number } {
  let length = 0;
  let allocated = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const stat = statSync(join(entry.parentPath, entry.name));
    length += stat.size;
    allocated += stat.blocks * 512;
  }
  return { length, allocated };
}

/**
 * The bare engine: the same table and pragmas as Packed, and a loop of INSERTs, `perCommit` to a
 * transaction. Opened before and closed after the timed step, as each Packed is.
 */
export function bareWriter(dir: string, fsync: boolean, list: Buffer[], perCommit: number): { run(): void; close(): void } {
  mkdirSync(dir, { recursive: true });
  const db = openPackedDatabase(join(dir, PACKED_FILE), fsync, 5000);
  const insert = db.prepare('INSERT INTO packed_values (key, size, used, labels, data) VALUES (?, ?, ?, NULL, ?)');
  const batch = db.transaction((part: Buffer[]) => {
    for (const bytes of part) insert.run(Buffer.from(sha256(bytes), 'hex'), bytes.length, Date.now(), bytes);
  });
  return {
    run: () => {
      for (let i = 0; i < list.length; i += perCommit) batch.immediate(list.slice(i, i + perCommit));
    },
    close: () => db.close(),
  };
}

export async function bareWrites(dir: string, fsync: boolean, list: Buffer[], perCommit: number): Promise<number> {
  const writer = bareWriter(dir, fsync, list, perCommit);
  try {
    return await timed(() => writer.run());
  } finally {
    writer.close();
  }
}

/** The bare engine's verified read: one indexed SELECT and a sha256; `read` throws on a miss or wrong bytes. */
export function bareReader(dir: string): { read(key: string): void; close(): void } {
  const db = openPackedDatabase(join(dir, PACKED_FILE), false, 5000);
  const get = db.prepare('SELECT data FROM packed_values WHERE key = ?').pluck();
  return {
    read: (key) => {
      const data = get.get(Buffer.from(key, 'hex')) as Buffer | undefined;
      if (data === undefined || sha256(data) !== key) throw new Error('bare SQLite read: wrong bytes');
    },
    close: () => db.close(),
  };
}

/** A full garbage collection (so that memory figures count what is kept, not garbage not yet collected). */
setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;

/** RSS now, and the highest RSS sampled since the last call (sampled every 10 ms, and at the end). */
export function rssSampler(): { peak(): number; stop(): void } {
  let highest = process.memoryUsage().rss;
  const timer = setInterval(() => (highest = Math.max(highest, process.memoryUsage().rss)), 10);
  return {
    peak: () => {
      const peak = Math.max(highest, process.memoryUsage().rss);
      highest = process.memoryUsage().rss;
      return peak;
    },
    stop: () => clearInterval(timer),
  };
}

/** One line of a bench's table: what was measured, its rate (or time), and its ratios. */
export interface BenchRow { what: string; rate: string; ratio?: string }

/** The machine, Node and SQLite binding a run used (its first line). */
export function printMachine(): void {
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Node ${process.version}, SQLite through ${sqliteBackend()}`);
}

export function printRows(rows: BenchRow[]): void {
  const width = Math.max(...rows.map((row) => row.what.length));
  for (const row of rows) console.log(`${row.what.padEnd(width)}  ${row.rate.padStart(10)}  ${row.ratio ?? ''}`);
}

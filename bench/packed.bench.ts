/**
 * Packed benchmark: many small values in one SQLite database, against cacache and against a bare
 * loop of SQLite doing the same puts and gets, in one run.
 *
 *   npm run bench -- packed
 *
 * CAIRN_BENCH_PACKED_COUNT=1000000 runs the many-values step at a million; CAIRN_BENCH_PACKED_ONLY
 * (`small`, `many`, `mix`) runs only those steps; CAIRN_BENCH_ROUNDS changes the rounds (3);
 * CAIRN_BENCH_VERBOSE prints each timed step.
 *
 * - 4 KiB writes, one at a time and 16 in flight: Packed with fsync off (durable to kill -9: each
 *   acknowledged write is in the OS) and on (durable to a power cut), cacache put, and a bare
 *   SQLite loop (same file layout and pragmas, one transaction per put, or 16 per transaction);
 * - 4 KiB reads (verified): Packed readBytes and readBatch, cacache get, a bare loop of SELECT +
 *   sha256; each reader reads every key once untimed first (all warm: the bare loop reads a file
 *   it just wrote and reopened, Packed its own, cacache its own);
 * - N values of 1 KiB (100,000 by default): write all, reopen, read 10,000 at random: open time,
 *   memory, disk use against the bytes stored;
 * - a mix of 90 % 4 KiB and 10 % 4 MiB values through HashKeyStorage: Levels(Small(Packed), Disk)
 *   against Disk alone, both with fsync (the default); then the same values in two steps, the
 *   4 KiB ones and then the 4 MiB ones, to show which part takes the time (the 4 MiB values go to
 *   a Disk in both setups: Disk's time for them alone bounds what moving the small values can gain).
 * Dirty pages are flushed (`sync`) before each timed step. Each figure is the median of rounds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import cacache from 'cacache';
import { Disk, HashKeyStorage, Levels, Packed, Small, type Source } from '../src/index.js';
import { openPackedDatabase, PACKED_FILE } from '../src/locations/packed/packed-db.js';
import { sqliteBackend } from '../src/sqlite.js';

const ROUNDS = Number(process.env.CAIRN_BENCH_ROUNDS ?? 3);
const SMALL_COUNT = 4000;
const SEQ_COUNT = 1000;
const CONCURRENCY = 16;
const MANY = Number(process.env.CAIRN_BENCH_PACKED_COUNT ?? 100_000);
const RANDOM_READS = 10_000;

const work = mkdtempSync(join(tmpdir(), 'cairn-bench-packed-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const rows: { what: string; rate: string; ratio?: string }[] = [];
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const source = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
let dirs = 0;
const fresh = (name: string) => join(work, `${name}-${dirs++}`);

function settle(): void {
  execFileSync('sync');
}

async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  settle();
  const start = performance.now();
  await fn();
  const seconds = (performance.now() - start) / 1000;
  if (process.env.CAIRN_BENCH_VERBOSE) console.log(`  step: ${seconds.toFixed(3)} s`);
  return seconds;
}

async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
}

/** Lets the event loop turn once: journaled puts are committed to SQLite then (their cost is counted). */
const committed = () => new Promise((resolve) => setImmediate(resolve));

function values(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, () => randomBytes(size));
}

function filesSize(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** The bare engine: the same table and pragmas as Packed, and a loop of INSERTs, `perCommit` to a transaction. */
function bareWrites(dir: string, fsync: boolean, list: Buffer[], perCommit: number): void {
  mkdirSync(dir, { recursive: true });
  const db = openPackedDatabase(join(dir, PACKED_FILE), fsync, 5000);
  const insert = db.prepare('INSERT INTO packed_values (key, size, used, labels, data) VALUES (?, ?, ?, NULL, ?)');
  const batch = db.transaction((part: Buffer[]) => {
    for (const bytes of part) insert.run(Buffer.from(sha256(bytes), 'hex'), bytes.length, Date.now(), bytes);
  });
  for (let i = 0; i < list.length; i += perCommit) batch.immediate(list.slice(i, i + perCommit));
  db.close();
}

function bareReads(dir: string, keys: string[], warm = false): void {
  const db = openPackedDatabase(join(dir, PACKED_FILE), false, 5000);
  const get = db.prepare('SELECT data FROM packed_values WHERE key = ?').pluck();
  for (const key of keys) {
    const data = get.get(Buffer.from(key, 'hex')) as Buffer;
    if (sha256(data) !== key) throw new Error('bare read: wrong bytes');
  }
  if (!warm) db.close();
  else bareDb = db;
}

/** The bare loop's connection after its untimed pass (its page cache warm, as Packed's is). */
let bareDb: ReturnType<typeof openPackedDatabase> | null = null;

function bareReadsWarm(keys: string[]): void {
  const get = bareDb!.prepare('SELECT data FROM packed_values WHERE key = ?').pluck();
  for (const key of keys) {
    const data = get.get(Buffer.from(key, 'hex')) as Buffer;
    if (sha256(data) !== key) throw new Error('bare read: wrong bytes');
  }
}

/** Reads every key through readBatch, each value's bytes taken (and so verified). */
async function batchReads(location: Packed, keys: string[]): Promise<void> {
  for await (const [key, value] of location.readBatch(keys)) if (value === null || (await value.bytes()).length === 0) throw new Error(`batch read: ${key} missing`);
}

async function smallValues(): Promise<void> {
  const rates: Record<string, number[]> = {};
  const add = (name: string, rate: number) => (rates[name] ??= []).push(rate);
  for (let round = 0; round < ROUNDS; round++) {
    const many = values(SMALL_COUNT, 4096);
    const seq = many.slice(0, SEQ_COUNT);
    const keys = many.map(sha256);

    // cacache
    const cache = fresh('cacache');
    add('cacache', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => cacache.put(cache, `k${i}`, many[i]!)))));
    const cacheSeq = fresh('cacache-seq');
    add('cacacheSeq', SEQ_COUNT / (await timed(async () => { for (let i = 0; i < SEQ_COUNT; i++) await cacache.put(cacheSeq, `k${i}`, seq[i]!); })));

    // bare SQLite loops
    for (const fsync of [false, true]) {
      const tag = fsync ? 'Fsync' : '';
      const seqCount = fsync ? SEQ_COUNT / 4 : SEQ_COUNT;
      add(`bareSeq${tag}`, seqCount / (await timed(() => bareWrites(fresh('bare-seq'), fsync, seq.slice(0, seqCount), 1))));
      add(`bare16${tag}`, SMALL_COUNT / (await timed(() => bareWrites(fresh('bare-16'), fsync, many, CONCURRENCY))));
    }

    // Packed, the location itself (keys already known, as HashKeyStorage hands them over)
    const direct = new Packed(fresh('packed'), { fsync: false });
    add('packed16', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => direct.write(keys[i]!, source(many[i]!))).then(committed))));
    const directSeq = new Packed(fresh('packed-seq'), { fsync: false });
    add('packedSeq', SEQ_COUNT / (await timed(async () => { for (let i = 0; i < SEQ_COUNT; i++) await directSeq.write(keys[i]!, source(seq[i]!)); await committed(); })));
    const durable = new Packed(fresh('packed-fsync'), { fsync: true });
    add('packed16Fsync', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => durable.write(keys[i]!, source(many[i]!))))));
    const durableSeq = new Packed(fresh('packed-fsync-seq'), { fsync: true });
    add('packedSeqFsync', SEQ_COUNT / 4 / (await timed(async () => { for (let i = 0; i < SEQ_COUNT / 4; i++) await durableSeq.write(keys[i]!, source(seq[i]!)); })));

    // Packed through HashKeyStorage (hashing each value, as a user's write does)
    const storage = new HashKeyStorage(new Packed(fresh('storage'), { fsync: false }));
    add('storage16', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => storage.write(many[i]!)).then(committed))));
    const storageSeq = new HashKeyStorage(new Packed(fresh('storage-seq'), { fsync: false }));
    add('storageSeq', SEQ_COUNT / (await timed(async () => { for (const bytes of seq) await storageSeq.write(bytes); await committed(); })));
    const storageFsync = new HashKeyStorage(new Packed(fresh('storage-fsync'), { fsync: true }));
    add('storage16Fsync', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => storageFsync.write(many[i]!)))));

    // reads of what `direct` holds (all in the page cache for everyone: just written)
    const bareDir = fresh('bare-read');
    bareWrites(bareDir, false, many, 1000);
    // one untimed pass each: every reader's caches warm
    bareReads(bareDir, keys, true);
    for (const key of keys) await direct.readBytes(key);
    for (let i = 0; i < SMALL_COUNT; i++) await cacache.get(cache, `k${i}`);
    add('bareRead', SMALL_COUNT / (await timed(() => bareReadsWarm(keys))));
    add('packedRead16', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => direct.readBytes(keys[i]!)))));
    add('packedReadSeq', SMALL_COUNT / (await timed(async () => { for (const key of keys) await direct.readBytes(key); })));
    add('packedReadBatch', SMALL_COUNT / (await timed(() => batchReads(direct, keys))));
    add('cacacheRead16', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => cacache.get(cache, `k${i}`)))));
    add('cacacheReadSeq', SMALL_COUNT / (await timed(async () => { for (let i = 0; i < SMALL_COUNT; i++) await cacache.get(cache, `k${i}`); })));
    bareDb!.close();

    for (const location of [direct, directSeq, durable, durableSeq]) await location.close();
    for (const lake of [storage, storageSeq, storageFsync]) await lake.close();
  }
  const m = (name: string) => median(rates[name]!);
  const per = (value: number) => `${value.toFixed(0)}/s`;
  const vs = (name: string, reference: string, label: string) => `${(m(name) / m(reference)).toFixed(2)}x ${label}`;
  rows.push({ what: `4 KiB writes: cacache put, ${CONCURRENCY} in flight (reference)`, rate: per(m('cacache')) });
  rows.push({ what: '4 KiB writes: cacache put, one at a time (reference)', rate: per(m('cacacheSeq')) });
  rows.push({ what: '4 KiB writes: bare SQLite, one put per commit, NORMAL (reference)', rate: per(m('bareSeq')) });
  rows.push({ what: `4 KiB writes: bare SQLite, ${CONCURRENCY} puts per commit, NORMAL (reference)`, rate: per(m('bare16')) });
  rows.push({ what: '4 KiB writes: bare SQLite, one put per commit, FULL (reference)', rate: per(m('bareSeqFsync')) });
  rows.push({ what: `4 KiB writes: bare SQLite, ${CONCURRENCY} puts per commit, FULL (reference)`, rate: per(m('bare16Fsync')) });
  rows.push({ what: '4 KiB writes: Packed, one at a time, fsync: false', rate: per(m('packedSeq')), ratio: `${vs('packedSeq', 'cacacheSeq', 'cacache')}, ${vs('packedSeq', 'bareSeq', 'bare')}` });
  rows.push({ what: `4 KiB writes: Packed, ${CONCURRENCY} in flight, fsync: false`, rate: per(m('packed16')), ratio: `${vs('packed16', 'cacache', 'cacache')}, ${vs('packed16', 'bare16', 'bare')}` });
  rows.push({ what: '4 KiB writes: Packed, one at a time, fsync: true', rate: per(m('packedSeqFsync')), ratio: `${vs('packedSeqFsync', 'cacacheSeq', 'cacache')}, ${vs('packedSeqFsync', 'bareSeqFsync', 'bare')}` });
  rows.push({ what: `4 KiB writes: Packed, ${CONCURRENCY} in flight, fsync: true`, rate: per(m('packed16Fsync')), ratio: `${vs('packed16Fsync', 'cacache', 'cacache')}, ${vs('packed16Fsync', 'bare16Fsync', 'bare')}` });
  rows.push({ what: '4 KiB writes: HashKeyStorage(Packed), one at a time, fsync: false', rate: per(m('storageSeq')), ratio: `${vs('storageSeq', 'cacacheSeq', 'cacache')}, ${vs('storageSeq', 'bareSeq', 'bare')}` });
  rows.push({ what: `4 KiB writes: HashKeyStorage(Packed), ${CONCURRENCY} in flight, fsync: false`, rate: per(m('storage16')), ratio: `${vs('storage16', 'cacache', 'cacache')}, ${vs('storage16', 'bare16', 'bare')}` });
  rows.push({ what: `4 KiB writes: HashKeyStorage(Packed), ${CONCURRENCY} in flight, fsync: true`, rate: per(m('storage16Fsync')), ratio: `${vs('storage16Fsync', 'cacache', 'cacache')}, ${vs('storage16Fsync', 'bare16Fsync', 'bare')}` });
  rows.push({ what: `4 KiB reads: cacache get, ${CONCURRENCY} in flight (reference)`, rate: per(m('cacacheRead16')) });
  rows.push({ what: '4 KiB reads: cacache get, one at a time (reference)', rate: per(m('cacacheReadSeq')) });
  rows.push({ what: '4 KiB reads: bare SQLite SELECT + sha256 (reference)', rate: per(m('bareRead')) });
  rows.push({ what: '4 KiB reads: Packed readBytes, one at a time', rate: per(m('packedReadSeq')), ratio: `${vs('packedReadSeq', 'cacacheReadSeq', 'cacache')}, ${vs('packedReadSeq', 'bareRead', 'bare')}` });
  rows.push({ what: `4 KiB reads: Packed readBytes, ${CONCURRENCY} in flight`, rate: per(m('packedRead16')), ratio: `${vs('packedRead16', 'cacacheRead16', 'cacache')}, ${vs('packedRead16', 'bareRead', 'bare')}` });
  rows.push({ what: '4 KiB reads: Packed readBatch (64 keys a query), each value verified', rate: per(m('packedReadBatch')), ratio: `${vs('packedReadBatch', 'cacacheReadSeq', 'cacache one at a time')}, ${vs('packedReadBatch', 'bareRead', 'bare')}` });
}

async function manyValues(): Promise<void> {
  const dir = fresh('many');
  const writer = new Packed(dir, { fsync: false });
  const value = (i: number) => {
    const bytes = randomBytes(1024);
    bytes.writeUInt32LE(i, 0);
    return bytes;
  };
  const keys: string[] = new Array(MANY);
  const writing = await timed(() => pool(MANY, 64, async (i) => {
    const bytes = value(i);
    keys[i] = sha256(bytes);
    await writer.write(keys[i]!, source(bytes));
  }));
  await writer.close();
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const opening = performance.now();
  const reader = new Packed(dir, { fsync: false });
  const openSeconds = (performance.now() - opening) / 1000;
  const picks = Array.from({ length: RANDOM_READS }, () => keys[Math.floor(Math.random() * MANY)]!);
  const reading = await timed(async () => { for (const key of picks) if ((await reader.readBytes(key)) === null) throw new Error('lost a value'); });
  const rssAfter = process.memoryUsage().rss;
  await reader.close();
  const stored = MANY * 1024;
  const onDisk = filesSize(dir);
  const label = `${MANY.toLocaleString('en')} values of 1 KiB`;
  rows.push({ what: `${label}: write all, 64 in flight, fsync: false`, rate: `${(MANY / writing).toFixed(0)}/s` });
  rows.push({ what: `${label}: open`, rate: `${(openSeconds * 1000).toFixed(1)} ms`, ratio: 'target <= 1 s' });
  rows.push({ what: `${label}: ${RANDOM_READS.toLocaleString('en')} random reads after reopening`, rate: `${(RANDOM_READS / reading).toFixed(0)}/s` });
  rows.push({ what: `${label}: RSS growth from open to the end of the reads`, rate: `${((rssAfter - rssBefore) / 1e6).toFixed(1)} MB`, ratio: 'no per-key map' });
  rows.push({ what: `${label}: disk use / bytes stored`, rate: `${(onDisk / 1e6).toFixed(1)} MB`, ratio: `${(onDisk / stored).toFixed(3)}x (target <= 1.3x)` });
  rmSync(dir, { recursive: true, force: true });
}

async function mix(): Promise<void> {
  const count = 200;
  const list = Array.from({ length: count }, (_, i) => randomBytes(i % 10 === 9 ? 4 * 1024 * 1024 : 4096));
  const bytes = list.reduce((total, value) => total + value.length, 0);
  const rates: Record<string, number[]> = {};
  const add = (name: string, rate: number) => (rates[name] ??= []).push(rate);
  for (let round = 0; round < ROUNDS; round++) {
    const disk = new HashKeyStorage(new Disk(fresh('mix-disk')));
    const packedDisk = fresh('mix-levels-disk');
    const levels = new HashKeyStorage(new Levels(new Small(new Packed(fresh('mix-packed')), { maxSize: 64 * 1024 }), packedDisk));
    const keys: string[] = new Array(count);
    add('diskWrite', count / (await timed(() => pool(count, CONCURRENCY, async (i) => { keys[i] = (await disk.write(list[i]!))!; }))));
    add('levelsWrite', count / (await timed(() => pool(count, CONCURRENCY, (i) => levels.write(list[i]!)))));
    add('diskRead', count / (await timed(() => pool(count, CONCURRENCY, (i) => disk.readBytes(keys[i]!)))));
    add('levelsRead', count / (await timed(() => pool(count, CONCURRENCY, (i) => levels.readBytes(keys[i]!)))));
    await disk.close();
    await levels.close();
    // the same values in two steps: the small ones, then the large ones, into fresh stores
    const small = list.filter((value) => value.length < 64 * 1024);
    const large = list.filter((value) => value.length >= 64 * 1024);
    const diskApart = new HashKeyStorage(new Disk(fresh('mix-disk-apart')));
    const levelsApart = new HashKeyStorage(new Levels(new Small(new Packed(fresh('mix-packed-apart')), { maxSize: 64 * 1024 }), fresh('mix-levels-disk-apart')));
    add('diskSmall', await timed(() => pool(small.length, CONCURRENCY, (i) => diskApart.write(small[i]!))));
    add('diskLarge', await timed(() => pool(large.length, CONCURRENCY, (i) => diskApart.write(large[i]!))));
    add('levelsSmall', await timed(() => pool(small.length, CONCURRENCY, (i) => levelsApart.write(small[i]!))));
    add('levelsLarge', await timed(() => pool(large.length, CONCURRENCY, (i) => levelsApart.write(large[i]!))));
    await diskApart.close();
    await levelsApart.close();
  }
  const m = (name: string) => median(rates[name]!);
  const label = `mix of 90 % 4 KiB, 10 % 4 MiB (${count} values, ${(bytes / 1e6).toFixed(0)} MB), ${CONCURRENCY} in flight, fsync: true`;
  rows.push({ what: `${label}: Disk writes (reference)`, rate: `${m('diskWrite').toFixed(0)}/s` });
  rows.push({ what: `${label}: Levels(Small(Packed), Disk) writes`, rate: `${m('levelsWrite').toFixed(0)}/s`, ratio: `${(m('levelsWrite') / m('diskWrite')).toFixed(2)}x Disk` });
  const ms = (name: string) => `${(m(name) * 1000).toFixed(0)} ms`;
  const ceiling = (m('diskSmall') + m('diskLarge')) / m('diskLarge');
  rows.push({ what: `${label}, apart: the 4 KiB values, Disk (reference)`, rate: ms('diskSmall') });
  rows.push({ what: `${label}, apart: the 4 KiB values, Levels(Small(Packed), Disk)`, rate: ms('levelsSmall'), ratio: `${(m('diskSmall') / m('levelsSmall')).toFixed(2)}x Disk` });
  rows.push({ what: `${label}, apart: the 4 MiB values, Disk (reference)`, rate: ms('diskLarge') });
  rows.push({ what: `${label}, apart: the 4 MiB values, Levels(Small(Packed), Disk)`, rate: ms('levelsLarge'), ratio: `${(m('diskLarge') / m('levelsLarge')).toFixed(2)}x Disk` });
  rows.push({ what: `${label}, apart: both steps, Levels(Small(Packed), Disk)`, rate: `${((m('levelsSmall') + m('levelsLarge')) * 1000).toFixed(0)} ms`, ratio: `${((m('diskSmall') + m('diskLarge')) / (m('levelsSmall') + m('levelsLarge'))).toFixed(2)}x Disk; ceiling ${ceiling.toFixed(2)}x (Disk's total / its 4 MiB part)` });
  rows.push({ what: `${label}: Disk reads (reference)`, rate: `${m('diskRead').toFixed(0)}/s` });
  rows.push({ what: `${label}: Levels(Small(Packed), Disk) reads`, rate: `${m('levelsRead').toFixed(0)}/s`, ratio: `${(m('levelsRead') / m('diskRead')).toFixed(2)}x Disk` });
}

try {
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Node ${process.version}, SQLite through ${sqliteBackend()}`);
  const only = process.env.CAIRN_BENCH_PACKED_ONLY;
  if (!only || only.includes('small')) await smallValues();
  if (!only || only.includes('many')) await manyValues();
  if (!only || only.includes('mix')) await mix();
  const width = Math.max(...rows.map((row) => row.what.length));
  for (const row of rows) console.log(`${row.what.padEnd(width)}  ${row.rate.padStart(10)}  ${row.ratio ?? ''}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

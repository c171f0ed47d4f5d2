/**
 * Core benchmark (issue 2): HashKeyStorage over a Disk lake against its references, in one run.
 *
 *   npm run bench -- core            (CAIRN_BENCH_GIB=0.25 for a quicker, smaller run)
 *
 * - a 1 GiB file: cairn's write vs reading the file and hashing it with sha256 in Node, and vs cacache;
 * - 4 KiB values: writes and `readBytes` vs cacache's put/get, at the same concurrency (and writes
 *   with `markOnWrite: false`, one file created per value instead of two);
 * - peak RSS while writing a 2 GiB stream.
 * Dirty pages are flushed (`sync`) before each timed step: see settle(); the files of small reads
 * are in the page cache for everyone: see warm().
 * Each figure is the median of several rounds; ratios compare figures of this run only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cacache from 'cacache';
import { Disk, HashKeyStorage } from '../src/index.js';

const GIB = 1024 ** 3;
const bigSize = Math.round(Number(process.env.CAIRN_BENCH_GIB ?? 1) * GIB);
const ROUNDS = 3;
const SMALL_COUNT = 5000;
const CONCURRENCY = 16;

const work = mkdtempSync(join(tmpdir(), 'cairn-bench-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const rows: { what: string; rate: string; ratio?: string }[] = [];

/**
 * Flushes dirty pages before each timed step, so that every step starts from a quiet disk and is
 * not throttled by the writeback of the one before (this machine's disk takes ~290 MB/s).
 */
function settle(): void {
  execFileSync('sync');
}

/**
 * Reads every file under `dir`, untimed, before a timed step of small reads. This machine pages
 * out page cache left untouched for a few seconds: unwarmed, a few percent of the values written
 * a step earlier are read from the disk, and the figure measures the disk more than the reader.
 */
function warm(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) warm(path);
    else if (entry.isFile()) readFileSync(path);
  }
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  settle();
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

/** Runs `task(i)` for i in [0, count) with `concurrency` in flight. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
}

/** Makes the big source file once; `vary(round)` changes its first bytes so each round is a new value. */
async function makeBigFile(): Promise<{ path: string; vary: (round: number) => void }> {
  const path = join(work, 'big.bin');
  const block = randomBytes(16 * 1024 * 1024);
  const out = createWriteStream(path);
  for (let written = 0; written < bigSize; written += block.length) {
    const chunk = block.subarray(0, Math.min(block.length, bigSize - written));
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
  const vary = (round: number) => {
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from(`${round}:${Date.now()}:${Math.random()}`), 0, undefined, 0);
    closeSync(fd);
  };
  return { path, vary };
}

async function readAndHash(path: string): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) hash.update(chunk as Buffer);
  hash.digest();
}

async function bigFile(): Promise<void> {
  const { path, vary } = await makeBigFile();
  const mb = bigSize / 1e6;
  const times = { hash: [] as number[], durable: [] as number[], fast: [] as number[], cacache: [] as number[] };
  const durable = new HashKeyStorage(new Disk(join(work, 'lake-fsync')));
  const fast = new HashKeyStorage(new Disk(join(work, 'lake-nofsync'), { fsync: false }));
  const cache = join(work, 'cacache-big');
  for (let round = 0; round < ROUNDS; round++) {
    vary(round);
    await readAndHash(path); // warm the page cache the same way for everyone
    times.hash.push(await timed(() => readAndHash(path)));
    vary(round + 100);
    times.fast.push(await timed(() => fast.write(path)));
    vary(round + 200);
    times.durable.push(await timed(() => durable.write(path)));
    vary(round + 300);
    times.cacache.push(await timed(() => pipeline(createReadStream(path), cacache.put.stream(cache, `big-${round}`))));
  }
  const rate = (seconds: number[]) => mb / median(seconds);
  const hashRate = rate(times.hash);
  const label = `${(bigSize / GIB).toFixed(2)} GiB file`;
  rows.push({ what: `${label}: read + sha256 in Node (reference)`, rate: `${hashRate.toFixed(0)} MB/s` });
  rows.push({ what: `${label}: cacache put.stream (reference)`, rate: `${rate(times.cacache).toFixed(0)} MB/s` });
  for (const [name, seconds] of [['write, fsync: false', times.fast], ['write, fsync: true (default)', times.durable]] as const) {
    rows.push({
      what: `${label}: cairn ${name}`,
      rate: `${rate(seconds).toFixed(0)} MB/s`,
      ratio: `${(rate(seconds) / hashRate).toFixed(2)}x read+sha256, ${(rate(seconds) / rate(times.cacache)).toFixed(2)}x cacache`,
    });
  }
  rmSync(path, { force: true });
  rmSync(join(work, 'lake-fsync'), { recursive: true, force: true });
  rmSync(join(work, 'lake-nofsync'), { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
}

async function smallValues(): Promise<void> {
  const perRound = (round: number) => Array.from({ length: SMALL_COUNT }, (_, i) => {
    const value = randomBytes(4096);
    value.writeUInt32LE(round * SMALL_COUNT + i, 0);
    return value;
  });
  const rates: Record<string, number[]> = {
    durable: [], fast: [], cacache: [], readCairn: [], readCairnMarked: [], readCacache: [], readCairnSeq: [], readCacacheSeq: [],
    fastSeq: [], durableSeq: [], cacacheSeq: [], lazy: [], lazySeq: [],
  };
  for (let round = 0; round < ROUNDS; round++) {
    const values = perRound(round);
    const durable = new HashKeyStorage(new Disk(join(work, `small-fsync-${round}`)));
    const fast = new HashKeyStorage(new Disk(join(work, `small-nofsync-${round}`), { fsync: false }));
    const cache = join(work, `cacache-small-${round}`);
    const keys: string[] = new Array(SMALL_COUNT);
    rates.durable!.push(SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, async (i) => { keys[i] = (await durable.write(values[i]!))!; }))));
    rates.fast!.push(SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => fast.write(values[i]!)))));
    const lazy = new HashKeyStorage(new Disk(join(work, `small-lazy-${round}`), { fsync: false, markOnWrite: false }));
    rates.lazy!.push(SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => lazy.write(values[i]!)))));
    rates.cacache!.push(SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => cacache.put(cache, `k${i}`, values[i]!)))));
    // the same kind of writes, one at a time, on fresh values
    const more = perRound(round + 100).slice(0, SMALL_COUNT / 5);
    const seqFast = new HashKeyStorage(new Disk(join(work, `seq-nofsync-${round}`), { fsync: false }));
    const seqDurable = new HashKeyStorage(new Disk(join(work, `seq-fsync-${round}`)));
    const seqLazy = new HashKeyStorage(new Disk(join(work, `seq-lazy-${round}`), { fsync: false, markOnWrite: false }));
    const seqCache = join(work, `cacache-seq-${round}`);
    rates.fastSeq!.push(more.length / (await timed(async () => { for (const value of more) await seqFast.write(value); })));
    rates.lazySeq!.push(more.length / (await timed(async () => { for (const value of more) await seqLazy.write(value); })));
    rates.durableSeq!.push(more.length / (await timed(async () => { for (const value of more) await seqDurable.write(value); })));
    rates.cacacheSeq!.push(more.length / (await timed(async () => { for (let i = 0; i < more.length; i++) await cacache.put(seqCache, `k${i}`, more[i]!); })));
    const reader = new HashKeyStorage(new Disk(join(work, `small-fsync-${round}`)));
    warm(join(work, `small-fsync-${round}`));
    const reading = await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => reader.readBytes(keys[i]!)));
    rates.readCairn!.push(SMALL_COUNT / reading);
    // the reads queued a refresh of each key's last-use mark: done in the background, finished
    // here (close) before the next step, and counted in a row of its own
    const marking = performance.now();
    await reader.close();
    rates.readCairnMarked!.push(SMALL_COUNT / (reading + (performance.now() - marking) / 1000));
    warm(cache);
    rates.readCacache!.push(SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, (i) => cacache.get(cache, `k${i}`)))));
    warm(join(work, `small-fsync-${round}`));
    rates.readCairnSeq!.push(SMALL_COUNT / (await timed(async () => { for (const key of keys) await reader.readBytes(key); })));
    warm(cache);
    rates.readCacacheSeq!.push(SMALL_COUNT / (await timed(async () => { for (let i = 0; i < SMALL_COUNT; i++) await cacache.get(cache, `k${i}`); })));
  }
  const m = (name: string) => median(rates[name]!);
  const per = (value: number) => `${value.toFixed(0)}/s`;
  rows.push({ what: `4 KiB writes: cacache put, ${CONCURRENCY} in flight (reference)`, rate: per(m('cacache')) });
  rows.push({ what: '4 KiB writes: cairn, fsync: false', rate: per(m('fast')), ratio: `${(m('fast') / m('cacache')).toFixed(1)}x cacache` });
  rows.push({ what: '4 KiB writes: cairn, fsync: true (default)', rate: per(m('durable')), ratio: `${(m('durable') / m('cacache')).toFixed(1)}x cacache` });
  rows.push({ what: '4 KiB writes: cacache put, one at a time (reference)', rate: per(m('cacacheSeq')) });
  rows.push({ what: '4 KiB writes: cairn, one at a time, fsync: false', rate: per(m('fastSeq')), ratio: `${(m('fastSeq') / m('cacacheSeq')).toFixed(1)}x cacache` });
  rows.push({ what: '4 KiB writes: cairn, one at a time, fsync: true', rate: per(m('durableSeq')), ratio: `${(m('durableSeq') / m('cacacheSeq')).toFixed(1)}x cacache` });
  rows.push({ what: `4 KiB writes: cairn, ${CONCURRENCY} in flight, fsync: false, markOnWrite: false`, rate: per(m('lazy')), ratio: `${(m('lazy') / m('cacache')).toFixed(1)}x cacache` });
  rows.push({ what: '4 KiB writes: cairn, one at a time, fsync: false, markOnWrite: false', rate: per(m('lazySeq')), ratio: `${(m('lazySeq') / m('cacacheSeq')).toFixed(1)}x cacache` });
  rows.push({ what: `4 KiB reads: cacache get, ${CONCURRENCY} in flight (reference)`, rate: per(m('readCacache')) });
  rows.push({ what: `4 KiB reads: cairn readBytes, ${CONCURRENCY} in flight`, rate: per(m('readCairn')), ratio: `${(m('readCairn') / m('readCacache')).toFixed(1)}x cacache` });
  rows.push({ what: `4 KiB reads: the same, until their last-use marks are refreshed`, rate: per(m('readCairnMarked')), ratio: `${(m('readCairnMarked') / m('readCacache')).toFixed(1)}x cacache` });
  rows.push({ what: '4 KiB reads: cacache get, one at a time (reference)', rate: per(m('readCacacheSeq')) });
  rows.push({ what: '4 KiB reads: cairn readBytes, one at a time', rate: per(m('readCairnSeq')), ratio: `${(m('readCairnSeq') / m('readCacacheSeq')).toFixed(1)}x cacache` });
}

async function streamMemory(): Promise<void> {
  const storage = new HashKeyStorage(new Disk(join(work, 'lake-stream'), { fsync: false }));
  const chunk = randomBytes(1024 * 1024);
  const total = 2 * GIB;
  async function* source() {
    for (let sent = 0; sent < total; sent += chunk.length) {
      chunk.writeUInt32LE(sent / chunk.length, 0);
      yield chunk;
    }
  }
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  await storage.write(Readable.from(source()));
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  rows.push({ what: 'peak RSS while writing a 2 GiB stream', rate: `${(peak / 1e6).toFixed(0)} MB`, ratio: 'target < 150 MB' });
  rmSync(join(work, 'lake-stream'), { recursive: true, force: true });
}

try {
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), ${(totalmem() / GIB).toFixed(0)} GiB RAM, Node ${process.version}`);
  await streamMemory();
  await bigFile();
  await smallValues();
  const width = Math.max(...rows.map((row) => row.what.length));
  for (const row of rows) console.log(`${row.what.padEnd(width)}  ${row.rate.padStart(10)}  ${row.ratio ?? ''}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

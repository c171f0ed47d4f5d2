/**
 * Issue 16's engine choice, side by side in one run: bare loops of SQLite (Packed's table and
 * pragmas, through cairn's SQLite adapter) and of LMDB (`lmdb`, values as bytes, no compression),
 * with cacache as the reference the issue's targets are written against. No Packed code runs
 * here: each loop is the most the engine itself allows (bench/packed.bench.ts measures Packed).
 *
 *   npx tsx bench/run.ts packed-engines
 *
 * CAIRN_BENCH_ROUNDS (3), CAIRN_BENCH_PACKED_COUNT (values of the fill step, 100,000),
 * CAIRN_BENCH_ENGINES_ONLY (`small`, `many`, `processes`), CAIRN_BENCH_VERBOSE. The 4 KiB steps also
 * print the CPU each operation took (the whole process, median of rounds), which other jobs'
 * load moves less than the rates.
 *
 * Durability is matched: "kill -9" means each acknowledged write is in the OS (SQLite NORMAL in
 * WAL mode; LMDB `noSync: true`, a commit written to the file without a flush); "fsync" means it
 * survives a power cut (SQLite FULL; LMDB's default `overlappingSync` and `await db.flushed`
 * after the write, or `overlappingSync: false`, where a commit returns after its flush).
 *
 * - 4 KiB writes one at a time (SQLite: a commit per put; LMDB: `putSync`, and `await put`) and
 *   16 in flight (SQLite: 16 puts a commit; LMDB: 16 `put`s awaited in flight, batched by lmdb
 *   itself into one transaction per event turn), both durabilities; cacache put as reference;
 * - 4 KiB verified reads (SQLite: SELECT + sha256; LMDB: `getBinary` + sha256; cacache get),
 *   one at a time and 16 in flight, after one untimed pass (all warm);
 * - N values of 1 KiB (64 a commit / 64 in flight, kill -9 durability): fill, reopen, 10,000
 *   random verified reads, the files' size against the bytes stored (and LMDB's map size);
 * - three processes writing 2,000 values of 4 KiB each into one store at once (16 a commit /
 *   16 in flight), then every value read back verified by the first.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import cacache from 'cacache';
import { open, type RootDatabase } from 'lmdb';
import { type BenchRow, bareReader, bareWriter, bareWrites, cacacheGets, cacachePuts, collectGarbage, filesUsage, lastTimedStep, median, pool, printMachine, printRows, rssSampler, sha256, timed, values } from './packed-common.js';

const ROUNDS = Number(process.env.CAIRN_BENCH_ROUNDS ?? 3);
const SMALL_COUNT = 4000;
const SEQ_COUNT = 1000;
/** One at a time with a flush per write: fewer, or the step takes minutes. */
const SEQ_FSYNC_COUNT = 250;
const CONCURRENCY = 16;
const MANY = Number(process.env.CAIRN_BENCH_PACKED_COUNT ?? 100_000);
const MANY_IN_FLIGHT = 64;
const RANDOM_READS = 10_000;
const PROCESSES = 3;
const PER_PROCESS = 2000;

/** How a bare LMDB store is opened: `kill9` (noSync), `fsync` (default overlappingSync, flushed awaited), `fsyncCommit` (overlappingSync off). */
type LmdbDurability = 'kill9' | 'fsync' | 'fsyncCommit';

function openLmdb(dir: string, durability: LmdbDurability): RootDatabase<Buffer, Buffer> {
  mkdirSync(dir, { recursive: true });
  return open<Buffer, Buffer>({
    path: dir,
    encoding: 'binary',
    keyEncoding: 'binary',
    compression: false,
    // Packed's SQLite pages: a 4 KiB value fits in its leaf (with lmdb's default 4 KiB pages it takes two overflow pages)
    pageSize: 16384,
    noSync: durability === 'kill9',
    ...(durability === 'fsyncCommit' ? { overlappingSync: false } : {}),
  });
}

const keyOf = (bytes: Buffer) => Buffer.from(sha256(bytes), 'hex');

/** `put` awaited; with `fsync` durability also lmdb's flush of that commit (a power cut keeps it then). */
async function lmdbPut(db: RootDatabase<Buffer, Buffer>, durability: LmdbDurability, bytes: Buffer): Promise<void> {
  await db.put(keyOf(bytes), bytes);
  if (durability === 'fsync') await db.flushed;
}

function lmdbRead(db: RootDatabase<Buffer, Buffer>, key: string): void {
  const data = db.getBinary(Buffer.from(key, 'hex'));
  if (data === undefined || sha256(data) !== key) throw new Error('bare LMDB read: wrong bytes');
}

/** Opened before and closed after the timed step, as the SQLite loop's connection is. */
async function lmdbWrites(dir: string, durability: LmdbDurability, write: (db: RootDatabase<Buffer, Buffer>) => Promise<unknown> | void): Promise<number> {
  const db = openLmdb(dir, durability);
  try {
    return await timed(() => write(db));
  } finally {
    await db.close();
  }
}

/** Set in a writer process of the multi-process step (this file run again): `engine:dir`. */
const writerRole = process.env.CAIRN_BENCH_ENGINES_WRITER;
const work = writerRole === undefined ? mkdtempSync(join(tmpdir(), 'cairn-bench-engines-')) : '';
let dirs = 0;
const fresh = (name: string) => join(work, `${name}-${dirs++}`);
const rows: BenchRow[] = [];
const verdicts: { target: string; sqlite: number; lmdb: number; goal: number }[] = [];

async function smallValues(): Promise<void> {
  const rates: Record<string, number[]> = {};
  /** CPU per operation (µs, the whole process: lmdb's write thread too), less moved by other jobs' load than the rates. */
  const cpu: Record<string, number[]> = {};
  const add = (name: string, rate: number) => {
    (rates[name] ??= []).push(rate);
    const step = lastTimedStep();
    (cpu[name] ??= []).push((step.cpuSeconds / (rate * step.seconds)) * 1e6);
  };
  for (let round = 0; round < ROUNDS; round++) {
    const many = values(SMALL_COUNT, 4096);
    const seq = many.slice(0, SEQ_COUNT);
    const seqFsync = many.slice(0, SEQ_FSYNC_COUNT);
    const keys = many.map(sha256);

    const cache = fresh('cacache');
    add('cacache16', await cacachePuts(cache, many, CONCURRENCY));
    add('cacacheSeq', await cacachePuts(fresh('cacache-seq'), seq, 1));

    add('sqliteSeq', SEQ_COUNT / (await bareWrites(fresh('sqlite-seq'), false, seq, 1)));
    add('sqlite16', SMALL_COUNT / (await bareWrites(fresh('sqlite-16'), false, many, CONCURRENCY)));
    add('sqliteSeqFsync', SEQ_FSYNC_COUNT / (await bareWrites(fresh('sqlite-seq-fsync'), true, seqFsync, 1)));
    add('sqlite16Fsync', SMALL_COUNT / (await bareWrites(fresh('sqlite-16-fsync'), true, many, CONCURRENCY)));

    add('lmdbPutSyncSeq', SEQ_COUNT / (await lmdbWrites(fresh('lmdb-putsync'), 'kill9', (db) => { for (const bytes of seq) db.putSync(keyOf(bytes), bytes); })));
    add('lmdbSeq', SEQ_COUNT / (await lmdbWrites(fresh('lmdb-seq'), 'kill9', async (db) => { for (const bytes of seq) await lmdbPut(db, 'kill9', bytes); })));
    add('lmdb16', SMALL_COUNT / (await lmdbWrites(fresh('lmdb-16'), 'kill9', (db) => pool(SMALL_COUNT, CONCURRENCY, (i) => lmdbPut(db, 'kill9', many[i]!)))));
    add('lmdbPutSyncSeqFsync', SEQ_FSYNC_COUNT / (await lmdbWrites(fresh('lmdb-putsync-fsync'), 'fsyncCommit', (db) => { for (const bytes of seqFsync) db.putSync(keyOf(bytes), bytes); })));
    add('lmdbSeqFsync', SEQ_FSYNC_COUNT / (await lmdbWrites(fresh('lmdb-seq-fsync'), 'fsync', async (db) => { for (const bytes of seqFsync) await lmdbPut(db, 'fsync', bytes); })));
    add('lmdb16Fsync', SMALL_COUNT / (await lmdbWrites(fresh('lmdb-16-fsync'), 'fsync', (db) => pool(SMALL_COUNT, CONCURRENCY, (i) => lmdbPut(db, 'fsync', many[i]!)))));
    add('lmdb16FsyncCommit', SMALL_COUNT / (await lmdbWrites(fresh('lmdb-16-fsync-commit'), 'fsyncCommit', (db) => pool(SMALL_COUNT, CONCURRENCY, (i) => lmdbPut(db, 'fsyncCommit', many[i]!)))));

    // reads: each engine's file written in big commits, closed, reopened, read once untimed
    const sqliteDir = fresh('sqlite-read');
    const filled = bareWriter(sqliteDir, false, many, 1000);
    filled.run();
    filled.close();
    const sqlite = bareReader(sqliteDir);
    const lmdbDir = fresh('lmdb-read');
    await lmdbWrites(lmdbDir, 'kill9', (db) => Promise.all(many.map((bytes) => db.put(keyOf(bytes), bytes))));
    const lmdb = openLmdb(lmdbDir, 'kill9');
    for (const key of keys) sqlite.read(key);
    for (const key of keys) lmdbRead(lmdb, key);
    for (let i = 0; i < SMALL_COUNT; i++) await cacache.get(cache, `k${i}`);
    add('cacacheReadSeq', await cacacheGets(cache, SMALL_COUNT, 1));
    add('cacacheRead16', await cacacheGets(cache, SMALL_COUNT, CONCURRENCY));
    add('sqliteReadSeq', SMALL_COUNT / (await timed(() => { for (const key of keys) sqlite.read(key); })));
    add('sqliteRead16', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, async (i) => sqlite.read(keys[i]!)))));
    add('lmdbReadSeq', SMALL_COUNT / (await timed(() => { for (const key of keys) lmdbRead(lmdb, key); })));
    add('lmdbRead16', SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, async (i) => lmdbRead(lmdb, keys[i]!)))));
    sqlite.close();
    await lmdb.close();
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work);
  }
  const m = (name: string) => median(rates[name]!);
  const c = (name: string) => median(cpu[name]!);
  const row = (what: string, name: string, cacacheName: string, sqliteName?: string) => {
    const ratios = [`${(m(name) / m(cacacheName)).toFixed(2)}x cacache`];
    if (sqliteName !== undefined) ratios.push(`${(m(name) / m(sqliteName)).toFixed(2)}x SQLite`);
    ratios.push(`${c(name).toFixed(1)} us CPU${sqliteName === undefined ? '' : ` (${(c(name) / c(sqliteName)).toFixed(2)}x SQLite's)`}`);
    rows.push({ what, rate: `${m(name).toFixed(0)}/s`, ratio: ratios.join(', ') });
  };
  const reference = (what: string, name: string) => rows.push({ what, rate: `${m(name).toFixed(0)}/s`, ratio: `${c(name).toFixed(1)} us CPU` });
  reference('4 KiB writes: cacache put, one at a time (reference)', 'cacacheSeq');
  reference(`4 KiB writes: cacache put, ${CONCURRENCY} in flight (reference)`, 'cacache16');
  row('4 KiB writes, kill -9: SQLite NORMAL, a commit per put', 'sqliteSeq', 'cacacheSeq');
  row('4 KiB writes, kill -9: LMDB noSync, putSync', 'lmdbPutSyncSeq', 'cacacheSeq', 'sqliteSeq');
  row('4 KiB writes, kill -9: LMDB noSync, await put, one at a time', 'lmdbSeq', 'cacacheSeq', 'sqliteSeq');
  row(`4 KiB writes, kill -9: SQLite NORMAL, ${CONCURRENCY} puts a commit`, 'sqlite16', 'cacache16');
  row(`4 KiB writes, kill -9: LMDB noSync, put, ${CONCURRENCY} in flight`, 'lmdb16', 'cacache16', 'sqlite16');
  row('4 KiB writes, fsync: SQLite FULL, a commit per put', 'sqliteSeqFsync', 'cacacheSeq');
  row('4 KiB writes, fsync: LMDB overlappingSync off, putSync', 'lmdbPutSyncSeqFsync', 'cacacheSeq', 'sqliteSeqFsync');
  row('4 KiB writes, fsync: LMDB default, await put + flushed, one at a time', 'lmdbSeqFsync', 'cacacheSeq', 'sqliteSeqFsync');
  row(`4 KiB writes, fsync: SQLite FULL, ${CONCURRENCY} puts a commit`, 'sqlite16Fsync', 'cacache16');
  row(`4 KiB writes, fsync: LMDB default, put + flushed, ${CONCURRENCY} in flight`, 'lmdb16Fsync', 'cacache16', 'sqlite16Fsync');
  row(`4 KiB writes, fsync: LMDB overlappingSync off, put, ${CONCURRENCY} in flight`, 'lmdb16FsyncCommit', 'cacache16', 'sqlite16Fsync');
  reference('4 KiB reads: cacache get, one at a time (reference)', 'cacacheReadSeq');
  reference(`4 KiB reads: cacache get, ${CONCURRENCY} in flight (reference)`, 'cacacheRead16');
  row('4 KiB verified reads: SQLite SELECT + sha256, one at a time', 'sqliteReadSeq', 'cacacheReadSeq');
  row('4 KiB verified reads: LMDB getBinary + sha256, one at a time', 'lmdbReadSeq', 'cacacheReadSeq', 'sqliteReadSeq');
  row(`4 KiB verified reads: SQLite SELECT + sha256, ${CONCURRENCY} in flight`, 'sqliteRead16', 'cacacheRead16');
  row(`4 KiB verified reads: LMDB getBinary + sha256, ${CONCURRENCY} in flight`, 'lmdbRead16', 'cacacheRead16', 'sqliteRead16');
  const verdict = (target: string, sqliteName: string, lmdbName: string, reference: string, goal: number) =>
    verdicts.push({ target, sqlite: m(sqliteName) / m(reference), lmdb: m(lmdbName) / m(reference), goal });
  verdict('4 KiB writes durable to kill -9, one at a time: >= 20x cacache', 'sqliteSeq', 'lmdbSeq', 'cacacheSeq', 20);
  verdict('  the same, LMDB putSync', 'sqliteSeq', 'lmdbPutSyncSeq', 'cacacheSeq', 20);
  verdict(`4 KiB writes durable to kill -9, ${CONCURRENCY} in flight: >= 20x cacache`, 'sqlite16', 'lmdb16', 'cacache16', 20);
  verdict(`4 KiB writes with fsync, ${CONCURRENCY} in flight: >= 5x cacache`, 'sqlite16Fsync', 'lmdb16Fsync', 'cacache16', 5);
  verdict('4 KiB verified reads, one at a time: >= 30x cacache', 'sqliteReadSeq', 'lmdbReadSeq', 'cacacheReadSeq', 30);
  verdict(`4 KiB verified reads, ${CONCURRENCY} in flight: >= 30x cacache`, 'sqliteRead16', 'lmdbRead16', 'cacacheRead16', 30);
}

/** N values of 1 KiB, each engine: fill, close, reopen, random verified reads, what the files take. */
async function manyValues(): Promise<void> {
  const value = (i: number) => {
    const bytes = Buffer.allocUnsafe(1024);
    for (let at = 0; at < 1024; at += 4) bytes.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, at);
    bytes.writeUInt32LE(i, 0);
    return bytes;
  };
  const label = `${MANY.toLocaleString('en')} values of 1 KiB`;
  const stored = MANY * 1024;
  for (const engine of ['SQLite', 'LMDB'] as const) {
    const dir = fresh(`many-${engine}`);
    const keys: string[] = new Array(MANY);
    let writing: number;
    if (engine === 'SQLite') {
      // the bare writer takes its values as a list: write them in slices, so that the fill never holds a million
      const slice = 10_000;
      writing = 0;
      for (let from = 0; from < MANY; from += slice) {
        const part = Array.from({ length: Math.min(slice, MANY - from) }, (_, i) => value(from + i));
        part.forEach((bytes, i) => (keys[from + i] = sha256(bytes)));
        const writer = bareWriter(dir, false, part, MANY_IN_FLIGHT);
        const start = performance.now();
        writer.run();
        writing += (performance.now() - start) / 1000;
        writer.close();
      }
    } else {
      writing = await lmdbWrites(dir, 'kill9', (db) => pool(MANY, MANY_IN_FLIGHT, (i) => {
        const bytes = value(i);
        keys[i] = sha256(bytes);
        return db.put(Buffer.from(keys[i]!, 'hex'), bytes);
      }));
    }
    collectGarbage();
    const memory = rssSampler();
    const rssBefore = process.memoryUsage().rss;
    const opening = performance.now();
    const lmdb = engine === 'LMDB' ? openLmdb(dir, 'kill9') : null;
    const sqlite = engine === 'SQLite' ? bareReader(dir) : null;
    const openMs = performance.now() - opening;
    const picks = Array.from({ length: RANDOM_READS }, () => keys[Math.floor(Math.random() * MANY)]!);
    const read = lmdb ? (key: string) => lmdbRead(lmdb, key) : sqlite!.read;
    const reading = await timed(() => { for (const key of picks) read(key); });
    const rssReads = memory.peak();
    memory.stop();
    const mapSize = lmdb ? (lmdb.getStats() as { mapSize?: number }).mapSize : undefined;
    sqlite?.close();
    await lmdb?.close();
    const files = filesUsage(dir);
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    rows.push({ what: `${label}, ${engine}: write all, ${MANY_IN_FLIGHT} ${engine === 'SQLite' ? 'a commit' : 'in flight'}, kill -9`, rate: `${(MANY / writing).toFixed(0)}/s` });
    rows.push({ what: `${label}, ${engine}: open (reopen after close)`, rate: `${openMs.toFixed(1)} ms` });
    rows.push({ what: `${label}, ${engine}: ${RANDOM_READS.toLocaleString('en')} random verified reads after reopening`, rate: `${(RANDOM_READS / reading).toFixed(0)}/s`, ratio: `peak RSS +${mb(rssReads - rssBefore)}` });
    rows.push({
      what: `${label}, ${engine}: files (length; allocated) / bytes stored`,
      rate: mb(files.length),
      ratio: `${(files.length / stored).toFixed(3)}x; allocated ${mb(files.allocated)} ${(files.allocated / stored).toFixed(3)}x${mapSize === undefined ? '' : `; map size ${mb(mapSize)}`}`,
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a writer process reports: when its writes started and ended (ms since the epoch), and its keys. */
interface WriterReport { start: number; end: number; keys: string[] }

/** One writer of the multi-process step (in its own process). */
async function writeAsProcess(engine: string, dir: string): Promise<WriterReport> {
  const list = values(PER_PROCESS, 4096);
  const start = performance.timeOrigin + performance.now();
  if (engine === 'SQLite') {
    const writer = bareWriter(dir, false, list, CONCURRENCY);
    writer.run();
    writer.close();
  } else {
    const db = openLmdb(dir, 'kill9');
    await pool(PER_PROCESS, CONCURRENCY, (i) => lmdbPut(db, 'kill9', list[i]!));
    await db.close();
  }
  return { start, end: performance.timeOrigin + performance.now(), keys: list.map(sha256) };
}

function writerProcess(engine: string, dir: string): Promise<WriterReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
      env: { ...process.env, CAIRN_BENCH_ENGINES_WRITER: `${engine}:${dir}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as WriterReport) : reject(new Error(`${engine} writer exited with ${code}`))));
  });
}

async function processes(): Promise<void> {
  for (const engine of ['SQLite', 'LMDB'] as const) {
    const seconds: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const dir = fresh(`processes-${engine}`);
      // the store exists before the writers start, as a shared store would
      if (engine === 'SQLite') bareWriter(dir, false, [], 1).close();
      else await openLmdb(dir, 'kill9').close();
      const reports = await Promise.all(Array.from({ length: PROCESSES }, () => writerProcess(engine, dir)));
      seconds.push((Math.max(...reports.map((r) => r.end)) - Math.min(...reports.map((r) => r.start))) / 1000);
      const keys = reports.flatMap((r) => r.keys);
      if (engine === 'SQLite') {
        const reader = bareReader(dir);
        for (const key of keys) reader.read(key);
        reader.close();
      } else {
        const db = openLmdb(dir, 'kill9');
        for (const key of keys) lmdbRead(db, key);
        await db.close();
      }
      rmSync(dir, { recursive: true, force: true });
    }
    const total = PROCESSES * PER_PROCESS;
    rows.push({
      what: `${PROCESSES} processes x ${PER_PROCESS.toLocaleString('en')} writes of 4 KiB into one store, kill -9, ${engine}`,
      rate: `${(total / median(seconds)).toFixed(0)}/s`,
      ratio: `all ${total.toLocaleString('en')} read back verified`,
    });
  }
}

if (writerRole !== undefined) {
  const [engine, ...path] = writerRole.split(':');
  process.stdout.write(JSON.stringify(await writeAsProcess(engine!, path.join(':'))));
} else {
  try {
    printMachine();
    const only = process.env.CAIRN_BENCH_ENGINES_ONLY;
    if (!only || only.includes('small')) await smallValues();
    if (!only || only.includes('many')) await manyValues();
    if (!only || only.includes('processes')) await processes();
    printRows(rows);
    if (verdicts.length > 0) {
      console.log('\nissue 16 targets, the bare engines (the most Packed could reach on each):');
      const targetWidth = Math.max(...verdicts.map((row) => row.target.length));
      const mark = (value: number, goal: number) => `${value.toFixed(2)}x ${value >= goal ? 'met' : 'MISSED'}`;
      for (const row of verdicts) console.log(`${row.target.padEnd(targetWidth)}  SQLite ${mark(row.sqlite, row.goal).padStart(13)}  LMDB ${mark(row.lmdb, row.goal).padStart(13)}  LMDB/SQLite ${(row.lmdb / row.sqlite).toFixed(2)}x`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

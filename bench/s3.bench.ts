/**
 * S3 benchmark (issue 3), against one s3rver started here in its own process:
 * - upload and download of a 256 MiB file: the S3 location vs the bare SDK (`Upload` from
 *   lib-storage with the same part size and queue, `GetObject` read to the end);
 * - `Levels(Small(Redis), S3)` vs `S3` alone: repeated reads of 4 KiB values.
 *
 *   npm run bench -- s3            (CAIRN_BENCH_MIB=64 for a quicker, smaller run)
 *
 * Each figure is the median of several rounds; ratios compare figures of this run only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Levels, Small, type Source } from '../src/index.js';
import { RedisLocation } from '../src/locations/redis/redis.js';
import { S3 } from '../src/locations/s3/s3.js';
import { startRedis } from '../test/servers/redis.js';
import { startS3Process } from './s3-process.js';

const MIB = 1024 * 1024;
const bigSize = Number(process.env.CAIRN_BENCH_MIB ?? 256) * MIB;
const BIG_ROUNDS = 3;
const SMALL_COUNT = Number(process.env.CAIRN_BENCH_SMALL ?? 10_000);
const SMALL_ROUNDS = 3;
const ALONE_COUNT = Math.floor(SMALL_COUNT / 20);
const CONCURRENCY = 16;
const PART = 8 * MIB;
const QUEUE = 4;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

const work = mkdtempSync(join(tmpdir(), 'cairn-bench-s3-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const rows: string[] = [];

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
}

/** A writable that throws the bytes away. */
const sink = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });

/** A file source as HashKeyStorage hands it to a location (hashed already, known size). */
function fileSource(path: string, size: number, verified: boolean): Source {
  return { size, path, verified, stream: () => createReadStream(path, { highWaterMark: MIB }), bytes: async () => { throw new Error('not for big files'); } };
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function bigTransfers(endpoint: string, bucket: string): Promise<void> {
  const path = join(work, 'big.bin');
  const block = randomBytes(16 * MIB);
  const out = createWriteStream(path);
  for (let written = 0; written < bigSize; written += block.length) {
    if (!out.write(block.subarray(0, Math.min(block.length, bigSize - written)))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
  const vary = (round: number) => {
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from(`${round}:${Date.now()}:${Math.random()}`), 0, undefined, 0);
    closeSync(fd);
  };
  // the same client settings for both: cairn checks sha256 itself, so neither adds SDK checksums
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const s3 = new S3(endpoint, bucket, { credentials, partSize: PART, queueSize: QUEUE, multipartThreshold: 16 * MIB });
  const times = { bareUp: [] as number[], up: [] as number[], upUnverified: [] as number[], bareDown: [] as number[], down: [] as number[] };
  for (let round = 0; round < BIG_ROUNDS; round++) {
    vary(round);
    const bareKey = `bare/${round}`;
    times.bareUp.push(await timed(() => new Upload({ client, params: { Bucket: bucket, Key: bareKey, Body: createReadStream(path, { highWaterMark: MIB }) }, partSize: PART, queueSize: QUEUE }).done()));
    const key = await hashFile(path);
    times.up.push(await timed(() => s3.write(key, fileSource(path, bigSize, true))));
    vary(round + 100);
    const copyKey = await hashFile(path);
    times.upUnverified.push(await timed(() => s3.write(copyKey, fileSource(path, bigSize, false))));

    const bareDown = () => timed(async () => {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: bareKey }));
      await pipeline(response.Body as Readable, sink());
    });
    const down = () => timed(async () => {
      const value = await s3.read(key);
      await pipeline(value!.stream(), sink());
    });
    // alternate who goes first: on a shared machine the order matters more than it should
    if (round % 2 === 0) {
      times.bareDown.push(await bareDown());
      times.down.push(await down());
    } else {
      times.down.push(await down());
      times.bareDown.push(await bareDown());
    }
  }
  const mbps = (seconds: number[]) => bigSize / MIB / median(seconds);
  const ratio = (ours: number[], bare: number[]) => `${(median(bare) / median(ours)).toFixed(2)}x`;
  rows.push(`| upload ${bigSize / MIB} MiB: bare lib-storage Upload | ${mbps(times.bareUp).toFixed(0)} MiB/s | 1.00x |`);
  rows.push(`| upload ${bigSize / MIB} MiB: S3.write (hashed source, as HashKeyStorage gives it) | ${mbps(times.up).toFixed(0)} MiB/s | ${ratio(times.up, times.bareUp)} |`);
  rows.push(`| upload ${bigSize / MIB} MiB: S3.write (unverified source, hashed while uploading) | ${mbps(times.upUnverified).toFixed(0)} MiB/s | ${ratio(times.upUnverified, times.bareUp)} |`);
  rows.push(`| download ${bigSize / MIB} MiB: bare GetObject read to the end | ${mbps(times.bareDown).toFixed(0)} MiB/s | 1.00x |`);
  rows.push(`| download ${bigSize / MIB} MiB: S3.read stream (sha256 verified while streaming) | ${mbps(times.down).toFixed(0)} MiB/s | ${ratio(times.down, times.bareDown)} |`);
  client.destroy();
  await s3.close();
  rmSync(path, { force: true });
}

async function smallReads(endpoint: string, bucket: string): Promise<void> {
  const redis = await startRedis();
  try {
    const s3 = new S3(endpoint, bucket, { credentials, prefix: 'small' });
    const values = Array.from({ length: SMALL_COUNT }, () => randomBytes(4096));
    const keys = values.map(sha256);
    const source = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
    await pool(SMALL_COUNT, 2 * CONCURRENCY, (i) => s3.write(keys[i]!, source(values[i]!)));
    const front = new Small(new RedisLocation(redis.url, { prefix: 'front:' }), { maxSize: 100 * 1024 });
    const levels = new Levels(front, s3);
    // Redis is filled directly (what a first pass of reads would do, without its 10,000 slow GETs)
    await pool(SMALL_COUNT, CONCURRENCY, (i) => front.write(keys[i]!, source(values[i]!)));
    const alone: number[] = [];
    const cached: number[] = [];
    let check = 0;
    for (let round = 0; round < SMALL_ROUNDS; round++) {
      // S3 alone is slow: each round reads a different twentieth of the values, and rates are compared
      const slice = keys.slice(round * ALONE_COUNT, (round + 1) * ALONE_COUNT);
      alone.push(ALONE_COUNT / (await timed(() => pool(slice.length, CONCURRENCY, async (i) => { check += (await s3.readBytes(slice[i]!))!.length; }))));
      cached.push(SMALL_COUNT / (await timed(() => pool(SMALL_COUNT, CONCURRENCY, async (i) => { check += (await levels.readBytes(keys[i]!))!.length; }))));
    }
    if (check === 0) throw new Error('nothing read');
    const rate = (perSecond: number[]) => Math.round(median(perSecond)).toLocaleString('en-US');
    rows.push(`| 4 KiB reads: S3 alone (readBytes, ${ALONE_COUNT} of the values per round) | ${rate(alone)} reads/s | 1.00x |`);
    rows.push(`| 4 KiB repeated reads: Levels(Small(Redis), S3) (all ${SMALL_COUNT} values per round) | ${rate(cached)} reads/s | ${(median(cached) / median(alone)).toFixed(1)}x |`);
    await levels.close();
  } finally {
    await redis.destroy();
  }
}

const server = await startS3Process();
try {
  await bigTransfers(server.endpoint, server.bucket);
  await smallReads(server.endpoint, server.bucket);
  console.log(`S3 against s3rver (own process), medians of ${BIG_ROUNDS} (big) / ${SMALL_ROUNDS} (small) rounds, concurrency ${CONCURRENCY} for small values`);
  console.log('targets: transfers >= 0.9x bare SDK; Levels(Small(Redis), S3) >= 10x S3 alone');
  console.log('| what | rate | ratio |');
  console.log('| --- | ---: | ---: |');
  for (const row of rows) console.log(row);
} finally {
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}

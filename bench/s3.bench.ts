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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Levels, Small, type Source } from '../src/index.js';
import { RedisLocation } from '../src/locations/redis/redis.js';
import { S3 } from '../src/locations/s3/s3.js';
import { startRedis } from '../test/servers/redis.js';
import { startS3Process } from './s3-process.js';
import { bigTransfers, median, timed } from './s3-transfers.js';

const MIB = 1024 * 1024;
const bigSize = Number(process.env.CAIRN_BENCH_MIB ?? 256) * MIB;
const BIG_ROUNDS = 3;
const SMALL_COUNT = Number(process.env.CAIRN_BENCH_SMALL ?? 10_000);
const SMALL_ROUNDS = 3;
const ALONE_COUNT = Math.floor(SMALL_COUNT / 20);
const CONCURRENCY = 16;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

const work = mkdtempSync(join(tmpdir(), 'cairn-bench-s3-'));
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const rows: string[] = [];

async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
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
  rows.push(...(await bigTransfers({ endpoint: server.endpoint, bucket: server.bucket, credentials, work, size: bigSize, rounds: BIG_ROUNDS })));
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

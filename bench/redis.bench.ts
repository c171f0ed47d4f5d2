/**
 * Redis benchmark (issue 3): RedisLocation 4 KiB reads against a bare ioredis GET loop, at the
 * same concurrency, against the same redis-server (started here on a free loopback port).
 *
 *   npm run bench -- redis
 *
 * Each figure is the median of several rounds; ratios compare figures of this run only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import type { Source } from '../src/index.js';
import { RedisLocation } from '../src/locations/redis.js';
import { startRedis } from '../test/servers/redis.js';

const ROUNDS = 5;
const VALUES = 2000;
const READS = 20_000;
const CONCURRENCY = 16;
const SIZE = 4096;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** A source as HashKeyStorage hands it over (hashed already). */
const bytesSource = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
}

async function rate(task: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await pool(READS, CONCURRENCY, task);
  return READS / ((performance.now() - start) / 1000);
}

const server = await startRedis();
try {
  const values = Array.from({ length: VALUES }, () => randomBytes(SIZE));
  const keys = values.map((bytes) => sha256(bytes));
  const bare = new Redis(server.url);
  for (let i = 0; i < VALUES; i++) await bare.set(`bare:${keys[i]}`, values[i]!);
  const full = new RedisLocation(server.url, { prefix: 'lake:' });
  const lean = new RedisLocation(server.url, { prefix: 'lean:', keepUsage: false, keepLabels: false });
  for (let i = 0; i < VALUES; i++) {
    await full.write(keys[i]!, bytesSource(values[i]!), ['bench']);
    await lean.write(keys[i]!, bytesSource(values[i]!));
  }

  const results = { bare: [] as number[], full: [] as number[], lean: [] as number[], batch: [] as number[] };
  let check = 0;
  for (let round = 0; round < ROUNDS; round++) {
    results.bare.push(await rate(async (i) => { check += (await bare.getBuffer(`bare:${keys[i % VALUES]}`))!.length; }));
    results.full.push(await rate(async (i) => { check += (await full.readBytes(keys[i % VALUES]!))!.length; }));
    results.lean.push(await rate(async (i) => { check += (await lean.readBytes(keys[i % VALUES]!))!.length; }));
    // readBatch: one pipeline per 256 keys, CONCURRENCY batches in flight
    const batches = Math.ceil(READS / 256);
    const start = performance.now();
    await pool(batches, CONCURRENCY, async (b) => {
      const slice = Array.from({ length: 256 }, (_, j) => keys[(b * 256 + j) % VALUES]!);
      for await (const [, value] of lean.readBatch(slice)) check += (await value!.bytes()).length;
    });
    results.batch.push((batches * 256) / ((performance.now() - start) / 1000));
  }
  if (check === 0) throw new Error('nothing read');

  const bareRate = median(results.bare);
  const rows = [
    ['bare ioredis getBuffer loop', bareRate, null],
    ['RedisLocation.readBytes (labels + usage kept, verified)', median(results.full), median(results.full) / bareRate],
    ['RedisLocation.readBytes (keepUsage/keepLabels off, verified)', median(results.lean), median(results.lean) / bareRate],
    ['RedisLocation.readBatch (256 per pipeline, verified)', median(results.batch), median(results.batch) / bareRate],
  ] as const;
  console.log(`Redis 4 KiB reads, ${READS} per round, concurrency ${CONCURRENCY}, median of ${ROUNDS} rounds (target: readBytes >= 0.8x bare)`);
  console.log('| what | reads/s | vs bare GET |');
  console.log('| --- | ---: | ---: |');
  for (const [what, perSecond, ratio] of rows) {
    console.log(`| ${what} | ${Math.round(perSecond).toLocaleString('en-US')} | ${ratio === null ? '1.00x' : ratio.toFixed(2) + 'x'} |`);
  }
  bare.disconnect();
  await full.close();
  await lean.close();
} finally {
  await server.destroy();
}

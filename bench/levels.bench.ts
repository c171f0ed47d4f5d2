/**
 * Levels over Redis: readBatch of 4 KiB values through a Levels against RedisLocation.readBatch
 * alone, against the same redis-server (started here on a free loopback port), in the same run.
 *
 *   npm run bench -- levels
 *
 * - Redis on top, `Levels(Small(Redis), Disk)`, every key in Redis;
 * - Redis below a cache level that holds none of the keys (and does not replicate), so that every
 *   key is asked of the level below;
 * - the same Levels read one key after another (what Levels.readBatch did before it batched per level).
 *
 * One batch at a time, as a caller iterating a readBatch reads (BENCH_CONCURRENCY=4: four at once).
 * The machine is shared, so every round runs each variant once, in alternating order, and a ratio
 * is the median of the ratios of each round (a variant against Redis alone in the same round).
 * The CPU time this process spends per read is printed too: on a loaded machine the rates depend
 * on when redis-server gets a core (a 1 MiB pipeline reply takes several turns), the CPU time less.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Disk, Level, Levels, type Location, Memory, Small, type Source } from '../src/index.js';
import { readEach } from '../src/locations/interface.js';
import { RedisLocation } from '../src/locations/redis/redis.js';
import { startRedis } from '../test/servers/redis.js';

const ROUNDS = 11;
const VALUES = 2048;
const BATCH = 256;
const BATCHES = 24;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 1);
const SIZE = 4096;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const bytesSource = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const server = await startRedis();
const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-levels-'));
try {
  const values = Array.from({ length: VALUES }, () => randomBytes(SIZE));
  const keys = values.map((bytes) => sha256(bytes));
  const redis = new RedisLocation(server.url, { prefix: 'bench:' });
  for (let i = 0; i < VALUES; i++) await redis.write(keys[i]!, bytesSource(values[i]!), ['bench']);

  const onTop = new Levels(new Small(redis, { maxSize: 64 * 1024 }), new Disk(join(dir, 'lake')));
  const below = new Levels(new Level(new Memory(), { write: false, replicate: false }), redis);

  let check = 0;
  /** This process's CPU time per read, per variant and round: on a busy machine it moves less than the rates. */
  const cpu = new Map<() => Promise<number>, number>();
  /** Values read per second: BATCHES batches of BATCH keys, CONCURRENCY batches in flight. */
  const batches = (read: (keys: string[]) => AsyncIterable<[string, unknown]>) => async function run(): Promise<number> {
    let next = 0;
    const start = performance.now();
    const startCpu = process.cpuUsage();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < BATCHES) {
          const b = next++;
          const slice = Array.from({ length: BATCH }, (_, j) => keys[(b * BATCH + j) % VALUES]!);
          for await (const [, value] of read(slice)) check += (await (value as { bytes(): Promise<Buffer> }).bytes()).length;
        }
      }),
    );
    const used = process.cpuUsage(startCpu);
    cpu.set(run, (used.user + used.system) / (BATCHES * BATCH));
    return (BATCHES * BATCH) / ((performance.now() - start) / 1000);
  };
  const oneByOne = (location: Location) => (slice: string[]) => readEach(location, slice);
  const variants = {
    redis: batches((slice) => redis.readBatch(slice)),
    onTop: batches((slice) => onTop.readBatch(slice)),
    below: batches((slice) => below.readBatch(slice)),
    onTopOneByOne: batches(oneByOne(onTop)),
    belowOneByOne: batches(oneByOne(below)),
  };
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];

  // one untimed round: connections, JIT, and the first usage mark of each key (once a minute per key)
  for (const name of names) await variants[name]();
  const rates = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const cpuPerRead = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      rates[name].push(await variants[name]());
      cpuPerRead[name].push(cpu.get(variants[name])!);
    }
  }
  if (check === 0) throw new Error('nothing read');

  const rows: [string, Name][] = [
    [`RedisLocation.readBatch alone (${BATCH} keys per batch, ${CONCURRENCY} batches in flight)`, 'redis'],
    ['Levels(Small(Redis), Disk).readBatch, every key in Redis', 'onTop'],
    ['Levels(Level(Memory, no replicate), Redis).readBatch, every key asked of Redis below', 'below'],
    ['the first Levels, one read after another (readBatch before it batched per level)', 'onTopOneByOne'],
    ['the second Levels, one read after another', 'belowOneByOne'],
  ];
  console.log(`Levels over Redis, 4 KiB values, ${BATCHES * BATCH} reads per variant and round, ${ROUNDS} rounds; load average ${loadavg().map((load) => load.toFixed(2)).join(' ')}`);
  console.log('| what | reads/s (median) | vs Redis readBatch alone (median of rounds) | middle half of rounds | CPU µs per read, this process (median) |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const [what, name] of rows) {
    const ratios = rates[name].map((perSecond, round) => perSecond / rates.redis[round]!).sort((a, b) => a - b);
    const quarter = Math.floor(ROUNDS / 4);
    const spread = `${ratios[quarter]!.toFixed(2)}–${ratios[ROUNDS - 1 - quarter]!.toFixed(2)}x`;
    console.log(`| ${what} | ${Math.round(median(rates[name])).toLocaleString('en-US')} | ${median(ratios).toFixed(2)}x | ${spread} | ${median(cpuPerRead[name]).toFixed(1)} |`);
  }
  await onTop.close();
  await below.close();
} finally {
  await server.destroy();
  rmSync(dir, { recursive: true, force: true });
}

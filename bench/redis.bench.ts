/**
 * Redis benchmark (issue 3): 4 KiB reads through HashKeyStorage.readBytes over a RedisLocation
 * against a bare ioredis GET loop, at the same concurrency, against the same redis-server (started
 * here on a free loopback port).
 *
 *   npm run bench -- redis
 *
 * The machine is shared, so every round runs each variant once, in alternating order, and a ratio
 * is the median of the ratios of each round (a variant against the bare loop of the same round).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { HashKeyStorage, type Source } from '../src/index.js';
import { digestBytes } from '../src/key.js';
import { RedisLocation, type RedisLocationOptions } from '../src/locations/redis/redis.js';
import { startRedis } from '../test/servers/redis.js';

const ROUNDS = 15;
const VALUES = 2000;
const READS = 10_000;
const CONCURRENCY = 16;
const SIZE = 4096;
const BATCH = 256;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** A source as HashKeyStorage hands it over (hashed already). */
const bytesSource = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
}

/** Values read per second by `count` tasks of `each` values, `CONCURRENCY` tasks in flight. */
async function rate(count: number, task: (i: number) => Promise<unknown>, each = 1): Promise<number> {
  const start = performance.now();
  await pool(count, CONCURRENCY, task);
  return (count * each) / ((performance.now() - start) / 1000);
}

/** What RedisLocation does to its socket: operations of one tick share writes, 8 at most per write. */
let waiting = 0;
function coalesce(client: Redis): void {
  const stream = client.stream;
  if (stream.writableCorked === 0) {
    waiting = 0;
    stream.cork();
    process.nextTick(() => stream.uncork());
  } else if (++waiting % 8 === 0) {
    stream.uncork();
    stream.cork();
  }
}

const server = await startRedis();
try {
  const values = Array.from({ length: VALUES }, () => randomBytes(SIZE));
  const keys = values.map((bytes) => sha256(bytes));
  const bare = new Redis(server.url);
  const tuned = new Redis(server.url);
  for (let i = 0; i < VALUES; i++) await bare.set(`bare:${keys[i]}`, values[i]!);
  await tuned.ping();

  const locations: RedisLocation[] = [];
  const storage = async (prefix: string, options: RedisLocationOptions): Promise<HashKeyStorage> => {
    const location = new RedisLocation(server.url, { prefix, ...options });
    locations.push(location);
    for (let i = 0; i < VALUES; i++) await location.write(keys[i]!, bytesSource(values[i]!), ['bench']);
    return new HashKeyStorage(location);
  };
  const full = await storage('full:', {});
  const lean = await storage('lean:', { keepUsage: false, keepLabels: false });
  const ttl = await storage('ttl:', { ttl: 3600 });
  const touching = await storage('touch:', { touchInterval: 0 });

  let check = 0;
  const readBytes = (store: HashKeyStorage) => () =>
    rate(READS, async (i) => { check += (await store.readBytes(keys[i % VALUES]!))!.length; });
  const variants = {
    bare: () => rate(READS, async (i) => { check += (await bare.getBuffer(`bare:${keys[i % VALUES]}`))!.length; }),
    full: readBytes(full),
    lean: readBytes(lean),
    ttl: readBytes(ttl),
    touching: readBytes(touching),
    // the bare loop doing what the location does besides its own code: coalesced writes, the same sha256
    tuned: () =>
      rate(READS, async (i) => {
        coalesce(tuned);
        const key = keys[i % VALUES]!;
        const bytes = (await tuned.getBuffer(`bare:${key}`))!;
        if (digestBytes(bytes) !== key) throw new Error('corrupt');
        check += bytes.length;
      }),
    batch: () =>
      rate(
        Math.ceil(READS / BATCH),
        async (b) => {
          const slice = Array.from({ length: BATCH }, (_, j) => keys[(b * BATCH + j) % VALUES]!);
          for await (const [, value] of full.local.readBatch(slice)) check += (await value!.bytes()).length;
        },
        BATCH,
      ),
  };
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];

  // one untimed round: connections, JIT, and the first usage mark of each key (once a minute per key)
  for (const name of names) await variants[name]();
  const rates = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) rates[name].push(await variants[name]());
  }
  if (check === 0) throw new Error('nothing read');

  const rows: [string, Name][] = [
    ['bare ioredis getBuffer loop', 'bare'],
    ['HashKeyStorage.readBytes over RedisLocation (defaults: labels + usage kept, verified)', 'full'],
    ['the same, keepUsage/keepLabels off', 'lean'],
    ['the same, ttl 3600 (PEXPIRE with each read)', 'ttl'],
    ['the same, touchInterval 0 (usage mark with each read)', 'touching'],
    ['bare loop with the same write coalescing + sha256 check', 'tuned'],
    [`RedisLocation.readBatch (${BATCH} per pipeline, ${CONCURRENCY} batches in flight, verified)`, 'batch'],
  ];
  console.log(`Redis 4 KiB reads, ${READS} per variant and round, concurrency ${CONCURRENCY}, ${ROUNDS} rounds (target: readBytes >= 0.8x bare)`);
  console.log('| what | reads/s (median) | vs bare GET (median of rounds) | middle half of rounds |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const [what, name] of rows) {
    const ratios = rates[name].map((perSecond, round) => perSecond / rates.bare[round]!).sort((a, b) => a - b);
    const quarter = Math.floor(ROUNDS / 4);
    const spread = `${ratios[quarter]!.toFixed(2)}–${ratios[ROUNDS - 1 - quarter]!.toFixed(2)}x`;
    console.log(`| ${what} | ${Math.round(median(rates[name])).toLocaleString('en-US')} | ${median(ratios).toFixed(2)}x | ${spread} |`);
  }
  bare.disconnect();
  tuned.disconnect();
  for (const location of locations) await location.close();
} finally {
  await server.destroy();
}

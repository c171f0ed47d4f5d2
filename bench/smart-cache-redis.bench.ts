/**
 * smartCache on Redis: hits of `smartCache({ index: redis, storage: redis })` against a bare
 * ioredis GET of a value of the same size as each entry, both awaited one by one, against the same
 * redis-server (started here on a free loopback port).
 *
 *   npm run bench -- smart-cache-redis
 *
 * The machine is shared, so every round runs each variant once, in alternating order, and a ratio
 * is the median of the ratios of each round (a variant against the bare GET loop of that round).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { smartCache } from '../src/cache/index.js';
import { Memory } from '../src/locations/memory.js';
import { RedisLocation } from '../src/locations/redis/redis.js';
import { startRedis } from '../test/servers/redis.js';

const ROUNDS = 9;
const CALLS = 2000;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** A small function: the cache's own cost is what is measured. */
function features(id: number, options: { scale: number; label: string }) {
  return { id, value: id * options.scale, label: `${options.label}:${id}`, tags: ['a', 'b', 'c'] };
}

async function callsPerSecond(call: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) await call(i);
  return CALLS / ((performance.now() - start) / 1000);
}

const server = await startRedis();
try {
  const location = new RedisLocation(server.url, { prefix: 'bench:' });
  const cached = smartCache({ index: location, storage: location })(features);
  const options = { scale: 3, label: 'x' };
  for (let i = 0; i < CALLS; i++) await cached(i, options);
  if (cached.stats.misses !== CALLS) throw new Error(`expected ${CALLS} misses, got ${JSON.stringify(cached.stats)}`);

  // the bare loop reads values of the very sizes of the entries
  const bare = new Redis(server.url);
  const sizes: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const entry = await bare.hgetBuffer(`bench:cairn:sc:${cached.key(i, options)}`, 'e');
    if (entry === null) throw new Error(`no entry for call ${i}`);
    sizes.push(entry.length);
    await bare.set(`bare:${i}`, randomBytes(entry.length));
  }

  // where the time of a hit goes: the location's own read of the entry, and a hit with no network (Memory)
  const names = Array.from({ length: CALLS }, (_, i) => `bench:cairn:sc:${cached.key(i, options)}`);
  const inMemory = smartCache({ index: new Memory(), storage: new Memory() })(features);
  for (let i = 0; i < CALLS; i++) await inMemory(i, options);

  let check = 0;
  const variants = {
    bare: () => callsPerSecond(async (i) => (check += (await bare.getBuffer(`bare:${i}`))!.length)),
    hits: () => callsPerSecond(async (i) => (check += ((await cached(i, options)) as { id: number }).id)),
    entry: () => callsPerSecond(async (i) => (check += (await location.command('bench', (client) => client.hgetBuffer(names[i]!, 'e')))!.length)),
    memory: () => callsPerSecond(async (i) => (check += ((await inMemory(i, options)) as { id: number }).id)),
  };
  type Name = keyof typeof variants;
  const order = Object.keys(variants) as Name[];
  // one untimed round: JIT, connections, and the first use mark of each entry (once a minute per key)
  for (const name of order) await variants[name]();
  const rates: Record<Name, number[]> = { bare: [], hits: [], entry: [], memory: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? order : [...order].reverse()) rates[name].push(await variants[name]());
  }
  if (check === 0) throw new Error('nothing read');
  if (cached.stats.misses !== CALLS) throw new Error(`a timed call missed: ${JSON.stringify(cached.stats)}`);

  const quarter = Math.floor(ROUNDS / 4);
  const versusBare = (name: Name) => {
    const ratios = rates[name].map((perSecond, round) => perSecond / rates.bare[round]!).sort((a, b) => a - b);
    return `${median(ratios).toFixed(2)}x | ${ratios[quarter]!.toFixed(2)}–${ratios[ROUNDS - 1 - quarter]!.toFixed(2)}x`;
  };
  const rate = (value: number) => `${Math.round(value).toLocaleString('en-US')} calls/s`;
  console.log(`smartCache on Redis, ${CALLS} sequential calls per variant and round, ${ROUNDS} rounds; entries of ${Math.min(...sizes)}–${Math.max(...sizes)} bytes (target: hits >= 0.8x bare GET)`);
  console.log('| what | rate (median) | vs bare GET (median of rounds) | middle half of rounds |');
  console.log('| --- | ---: | ---: | ---: |');
  console.log(`| bare ioredis getBuffer of a value of the entry's size | ${rate(median(rates.bare))} | | |`);
  console.log(`| smartCache hit, { index: redis, storage: redis } | ${rate(median(rates.hits))} | ${versusBare('hits')} |`);
  console.log(`| the entry alone: HGET through RedisLocation.command | ${rate(median(rates.entry))} | ${versusBare('entry')} |`);
  console.log(`| smartCache hit on Memory (no network: the cache's own work) | ${rate(median(rates.memory))} | | |`);
  bare.disconnect();
  await location.close();
} finally {
  await server.destroy();
}

/**
 * Redis Cluster benchmark: readBatch of 10,000 values of 4 KiB spread over the slots of a cluster
 * of three masters (started here on free loopback ports), against a bare ioredis Cluster pipeline
 * reading the same number of values (plain strings, `GET`), one pipeline per node, all in flight.
 *
 *   npm run bench -- redis-cluster
 *
 * Every round runs each variant once, in alternating order; a ratio is the median of the ratios of
 * each round (a variant against the bare pipeline of the same round).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Cluster } from 'ioredis';
import type { Source } from '../src/index.js';
import { RedisLocation, type RedisLocationOptions } from '../src/locations/redis/redis.js';
import { keySlot } from '../src/locations/redis/redis-slot.js';
import { startRedisCluster } from '../test/servers/redis-cluster.js';

const ROUNDS = 11;
const KEYS = 10_000;
const SIZE = 4096;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const bytesSource = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const server = await startRedisCluster();
const nodes = server.ports.map((port) => ({ host: '127.0.0.1', port }));
const bare = new Cluster(nodes);
const locations: RedisLocation[] = [];
try {
  const values = Array.from({ length: KEYS }, () => randomBytes(SIZE));
  const keys = values.map((bytes) => sha256(bytes));
  const filled = async (prefix: string, options: RedisLocationOptions = {}): Promise<RedisLocation> => {
    const location = new RedisLocation(nodes, { prefix, ...options });
    locations.push(location);
    for (let i = 0; i < KEYS; i += 100) await Promise.all(keys.slice(i, i + 100).map((key, j) => location.write(key, bytesSource(values[i + j]!), ['bench'])));
    return location;
  };
  for (let i = 0; i < KEYS; i += 100) await Promise.all(keys.slice(i, i + 100).map((key, j) => bare.set(`bare:${key}`, values[i + j]!)));
  const full = await filled('full:');
  const lean = await filled('lean:', { keepUsage: false, keepLabels: false });

  let check = 0;
  /** Values read per second. */
  const timed = async (read: () => Promise<void>): Promise<number> => {
    const start = performance.now();
    await read();
    return KEYS / ((performance.now() - start) / 1000);
  };
  const batch = (location: RedisLocation) => () =>
    timed(async () => {
      for await (const [, value] of location.readBatch(keys)) check += (await value!.bytes()).length;
    });
  /** The Redis names `prefix + key` of every key, grouped by the master node that holds them. */
  const namesByNode = (prefix: string): string[][] => {
    const byNode = new Map<string, string[]>();
    for (const key of keys) {
      const name = `${prefix}${key}`;
      const node = bare.slots[keySlot(name)]![0]!;
      const group = byNode.get(node);
      if (group) group.push(name);
      else byNode.set(node, [name]);
    }
    return [...byNode.values()];
  };
  /** The bare pipeline of GETs, one per node, all in flight; `hashed`: each value checked against its key too. */
  const bareGets = (hashed: boolean) => () =>
    timed(async () => {
      await Promise.all(
        namesByNode('bare:').map(async (names) => {
          const pipeline = bare.pipeline();
          for (const name of names) pipeline.getBuffer(name);
          (await pipeline.exec())!.forEach(([error, reply], index) => {
            if (error) throw error;
            if (hashed && sha256(reply as Buffer) !== names[index]!.slice('bare:'.length)) throw new Error('corrupt');
            check += (reply as Buffer).length;
          });
        }),
      );
    });
  const variants = {
    bare: bareGets(false),
    // the floor of any verified read: the same pipeline, each value hashed
    bareHashed: bareGets(true),
    // the bare pipeline plus what the location must do besides: check each value against its key
    verified: () =>
      timed(async () => {
        await Promise.all(
          namesByNode('full:').map(async (names) => {
            const pipeline = bare.pipeline();
            for (const name of names) pipeline.hgetallBuffer(name);
            const replies = (await pipeline.exec())!;
            replies.forEach(([error, reply], index) => {
              if (error) throw error;
              const bytes = (reply as Record<string, Buffer>).d!;
              if (sha256(bytes) !== names[index]!.slice('full:'.length)) throw new Error('corrupt');
              check += bytes.length;
            });
          }),
        );
      }),
    full: batch(full),
    lean: batch(lean),
  };
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];
  // one untimed round: connections, JIT, and the first usage mark of each key
  for (const name of names) await variants[name]();
  const ratios = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const rates = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  for (let round = 0; round < ROUNDS; round++) {
    const got = {} as Record<Name, number>;
    for (const name of round % 2 === 0 ? names : [...names].reverse()) got[name] = await variants[name]();
    for (const name of names) {
      rates[name].push(got[name]);
      ratios[name].push(got[name] / got.bare);
    }
  }
  if (check === 0) throw new Error('nothing read');
  const rows: [string, Name][] = [
    ['bare ioredis Cluster pipeline (GET, one pipeline per node)', 'bare'],
    ['the same pipeline, each value checked (sha256): the floor of any verified read', 'bareHashed'],
    ['the same pipeline on the location\'s hashes (HGETALL), each value checked (sha256)', 'verified'],
    ['RedisLocation.readBatch on the cluster (defaults: labels + usage kept, verified)', 'full'],
    ['the same, keepUsage/keepLabels off', 'lean'],
  ];
  console.log(`Redis Cluster of 3 masters, readBatch of ${KEYS} keys of ${SIZE} B across slots, ${ROUNDS} rounds (median)`);
  for (const [label, name] of rows) console.log(`${label.padEnd(84)} ${Math.round(median(rates[name])).toString().padStart(8)} values/s  ${median(ratios[name]).toFixed(2)}x`);
} finally {
  await Promise.all(locations.map((location) => location.close()));
  bare.disconnect();
  await server.destroy();
}

/**
 * Redis Cluster benchmark: readBatch of 10,000 values of 4 KiB spread over the slots of a cluster
 * of three masters (started here on free loopback ports), against a bare ioredis Cluster pipeline
 * reading the same values (plain strings, `GET`), one pipeline per node, all in flight; the same
 * pipeline with cairn's sha256 check of each value (the floor of a verified read), and of the
 * location's own hashes (`HGETALL`, what a read of cairn's layout must fetch).
 *
 *   npm run bench -- redis-cluster
 *
 * Every round runs each variant once, in alternating order; a ratio is the median of the ratios of
 * each round (a variant against the bare pipeline of the same round). The CPU column is this
 * process' CPU time per value (user + system), the median over the rounds; the last line is what
 * cairn's sha256 of one value costs alone, measured in each round on the same values.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Cluster } from 'ioredis';
import { digestBytes, verifyBytes } from '../src/digest.js';
import type { Source } from '../src/index.js';
import { RedisLocation, type RedisLocationOptions } from '../src/locations/redis/redis.js';
import { keySlot } from '../src/locations/redis/redis-slot.js';
import { startRedisCluster } from '../test/servers/redis-cluster.js';

const ROUNDS = 11;
const KEYS = 10_000;
const SIZE = 4096;

const bytesSource = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const server = await startRedisCluster();
const nodes = server.ports.map((port) => ({ host: '127.0.0.1', port }));
const bare = new Cluster(nodes);
const locations: RedisLocation[] = [];
try {
  const values = Array.from({ length: KEYS }, () => randomBytes(SIZE));
  const keys = values.map((bytes) => digestBytes(bytes));
  const filled = async (prefix: string, options: RedisLocationOptions = {}): Promise<RedisLocation> => {
    const location = new RedisLocation(nodes, { prefix, ...options });
    locations.push(location);
    for (let i = 0; i < KEYS; i += 100) await Promise.all(keys.slice(i, i + 100).map((key, j) => location.write(key, bytesSource(values[i + j]!), ['bench'])));
    return location;
  };
  for (let i = 0; i < KEYS; i += 100) await Promise.all(keys.slice(i, i + 100).map((key, j) => bare.set(`bare:${key}`, values[i + j]!)));
  const full = await filled('full:');
  const lean = await filled('lean:', { keepUsage: false, keepLabels: false });

  const marked = await filled('marked:', { touchInterval: 0 });

  let check = 0;
  /** Values read per second, and this process' CPU µs per value. */
  const timed = async (read: () => Promise<void>): Promise<[number, number]> => {
    const cpu = process.cpuUsage();
    const start = performance.now();
    await read();
    const elapsed = performance.now() - start;
    const used = process.cpuUsage(cpu);
    return [KEYS / (elapsed / 1000), (used.user + used.system) / KEYS];
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
  /** The bytes among a raw HGETALL reply's fields and values (field `d`). */
  const dataOf = (fields: Buffer[]): Buffer => {
    for (let index = 0; index < fields.length; index += 2) if (fields[index]!.length === 1 && fields[index]![0] === 0x64) return fields[index + 1]!;
    throw new Error('no bytes in the hash');
  };
  /**
   * A bare pipeline per node, all in flight: `GET` of plain strings, or `HGETALL` of the location's
   * hashes (what a read of cairn's layout must fetch: the bytes and the labels) as ioredis' raw
   * array; `hashed`: each value checked against its key with cairn's own sha256 (src/digest.ts).
   */
  const bareReads = (prefix: string, command: 'GET' | 'HGETALL', hashed: boolean) => () =>
    timed(async () => {
      await Promise.all(
        namesByNode(prefix).map(async (names) => {
          const pipeline = bare.pipeline();
          for (const name of names) pipeline.callBuffer(command, name);
          const replies = (await pipeline.exec())!;
          for (let index = 0; index < replies.length; index++) {
            const [error, reply] = replies[index]!;
            if (error) throw error;
            const bytes = command === 'GET' ? (reply as Buffer) : dataOf(reply as Buffer[]);
            if (hashed) verifyBytes(names[index]!.slice(prefix.length), bytes, 'the bench');
            check += bytes.length;
          }
        }),
      );
    });
  const variants = {
    bare: bareReads('bare:', 'GET', false),
    // the floor of any verified read: the same pipeline, each value hashed
    bareHashed: bareReads('bare:', 'GET', true),
    // the bare pipeline of what the location must fetch, each value hashed
    verified: bareReads('full:', 'HGETALL', true),
    full: batch(full),
    lean: batch(lean),
    marked: batch(marked),
  };
  type Name = keyof typeof variants;
  const names = Object.keys(variants) as Name[];
  // one untimed round: connections, JIT, and the first usage mark of each key
  for (const name of names) await variants[name]();
  const ratios = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const rates = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const cpus = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<Name, number[]>;
  const hashing: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const got = {} as Record<Name, [number, number]>;
    for (const name of round % 2 === 0 ? names : [...names].reverse()) got[name] = await variants[name]();
    for (const name of names) {
      rates[name].push(got[name][0]);
      cpus[name].push(got[name][1]);
      ratios[name].push(got[name][0] / got.bare[0]);
    }
    const start = process.cpuUsage();
    for (let index = 0; index < KEYS; index++) verifyBytes(keys[index]!, values[index]!, 'the bench');
    const used = process.cpuUsage(start);
    hashing.push((used.user + used.system) / KEYS);
  }
  if (check === 0) throw new Error('nothing read');
  const rows: [string, Name][] = [
    ['bare ioredis Cluster pipeline (GET, one pipeline per node)', 'bare'],
    ['the same pipeline, each value checked (sha256): the floor of any verified read', 'bareHashed'],
    ['the same pipeline on the location\'s hashes (HGETALL, raw), each value checked (sha256)', 'verified'],
    ['RedisLocation.readBatch on the cluster (defaults: labels + usage kept, verified)', 'full'],
    ['the same, keepUsage/keepLabels off', 'lean'],
    ['the same as the defaults, touchInterval 0 (a usage mark with every read)', 'marked'],
  ];
  console.log(`Redis Cluster of 3 masters, readBatch of ${KEYS} keys of ${SIZE} B across slots, ${ROUNDS} rounds (median)`);
  for (const [label, name] of rows) {
    console.log(`${label.padEnd(84)} ${Math.round(median(rates[name])).toString().padStart(8)} values/s  ${median(ratios[name]).toFixed(2)}x  ${median(cpus[name]).toFixed(1).padStart(5)} µs CPU/value`);
  }
  console.log(`${'cairn\'s sha256 check of one value alone'.padEnd(84)} ${median(hashing).toFixed(1).padStart(30)} µs CPU/value`);
} finally {
  await Promise.all(locations.map((location) => location.close()));
  bare.disconnect();
  await server.destroy();
}

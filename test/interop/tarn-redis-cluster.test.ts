/**
 * RedisLocation with `layout: 'tarn'` on a Redis Cluster: tarn's three keys of a value live in
 * different slots, so every command names one key. The whole location conformance suite, and
 * values written by cairn and read back through a plain cluster client as tarn lays them out.
 */
import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { bytesSource, expectStored, locationConformance, sha256 } from '../conformance.js';
import { type RedisClusterServer, startRedisCluster } from '../servers/redis-cluster.js';

let cluster: RedisClusterServer;
let admin: Cluster;
let prefixes = 0;

beforeAll(async () => {
  cluster = await startRedisCluster();
  admin = new Cluster(nodes());
}, 60_000);
afterAll(async () => {
  admin?.disconnect();
  await cluster?.destroy();
});

const nodes = () => cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
const contentName = (location: RedisLocation, key: string) => Buffer.concat([Buffer.from(location.prefix), Buffer.from(key, 'hex')]);

locationConformance({
  name: 'RedisLocation on a cluster, tarn layout',
  create: () => new RedisLocation(nodes(), { layout: 'tarn', prefix: `tc${++prefixes}:` }),
  destroy: (location) => location.close?.(),
  corrupt: async (location, key) => {
    const name = contentName(location as RedisLocation, key);
    const bytes = (await admin.getBuffer(name))!;
    bytes[0] ^= 0xff;
    await admin.set(name, bytes);
  },
});

describe('tarn layout on a cluster', () => {
  it('keeps tarn’s keys, lists every master’s share and reads a batch spread over the slots', async () => {
    const location = new RedisLocation(nodes(), { layout: 'tarn', prefix: `tc${++prefixes}:` });
    const values = Array.from({ length: 40 }, () => randomBytes(100));
    for (const bytes of values) await expectStored(location.write(sha256(bytes), bytesSource(bytes), ['x']), sha256(bytes), bytes);
    const keys = values.map((bytes) => sha256(bytes));
    expect((await admin.getBuffer(contentName(location, keys[0]!)))!.equals(values[0]!)).toBe(true);
    expect(JSON.parse((await admin.get(Buffer.concat([Buffer.from('labels'), contentName(location, keys[0]!)])))!)).toEqual(['x']);
    const listed: string[] = [];
    for await (const entry of location.contents()) listed.push(entry.key);
    expect(listed.sort()).toEqual([...keys].sort());
    let found = 0;
    for await (const [key, value] of location.readBatch(keys)) {
      expect((await value!.bytes()).equals(values[keys.indexOf(key)]!)).toBe(true);
      found++;
    }
    expect(found).toBe(keys.length);
    await location.close();
  });
});

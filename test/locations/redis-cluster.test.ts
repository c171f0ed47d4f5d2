import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, StorageCorruption } from '../../src/errors.js';
import { HashKeyStorage } from '../../src/index.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { keySlot } from '../../src/locations/redis/redis-slot.js';
import { bytesSource, locationConformance, sha256, expectStored } from '../conformance.js';
import { type RedisClusterServer, startRedisCluster } from '../servers/redis-cluster.js';
import { type RedisSentinelGroup, startRedisSentinel } from '../servers/redis-sentinel.js';

let cluster: RedisClusterServer;
let sentinel: RedisSentinelGroup;
let admin: Cluster;
let prefixes = 0;
const opened: RedisLocation[] = [];

beforeAll(async () => {
  [cluster, sentinel] = await Promise.all([startRedisCluster(), startRedisSentinel()]);
  admin = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
}, 60_000);
afterAll(async () => {
  await Promise.all(opened.map((location) => location.close()));
  admin?.disconnect();
  await Promise.all([cluster?.destroy(), sentinel?.destroy()]);
});

const nodes = () => cluster.ports.map((port) => ({ host: '127.0.0.1', port }));

function open(location: RedisLocation): RedisLocation {
  opened.push(location);
  return location;
}

async function corruptIn(location: RedisLocation, key: string): Promise<void> {
  const bytes = await admin.hgetBuffer(location.prefix + key, 'd');
  bytes![0] ^= 0xff;
  await admin.hset(location.prefix + key, 'd', bytes!);
}

/** `count` random values written through `location`, and their keys. */
async function written(location: RedisLocation, count: number, size = 64): Promise<string[]> {
  const values = Array.from({ length: count }, () => randomBytes(size));
  const results = await Promise.all(values.map((bytes) => location.write(sha256(bytes), bytesSource(bytes), ['x'])));
  for (const [index, result] of results.entries()) await expectStored(result, sha256(values[index]!), values[index]);
  return values.map((bytes) => sha256(bytes));
}

async function listed(location: RedisLocation): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of location.contents()) keys.push(entry.key);
  return keys.sort();
}

/** How many keys under `prefix` each master holds, counted on the node itself. */
async function spread(prefix: string): Promise<number[]> {
  return Promise.all(
    cluster.ports.map(async (port) => {
      const node = new Redis({ host: '127.0.0.1', port });
      try {
        let held = 0;
        let cursor = '0';
        do {
          const [next, names] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          held += names.length;
        } while (cursor !== '0');
        return held;
      } finally {
        node.disconnect();
      }
    }),
  );
}

locationConformance({
  name: 'RedisLocation on a cluster (list of nodes)',
  create: () => open(new RedisLocation(nodes(), { prefix: `c${++prefixes}:` })),
  corrupt: (location, key) => corruptIn(location as RedisLocation, key),
});

locationConformance({
  name: 'RedisLocation on a cluster (redis:// URL of one node)',
  create: () => open(new RedisLocation(cluster.urls[1]!, { prefix: `u${++prefixes}:` })),
  corrupt: (location, key) => corruptIn(location as RedisLocation, key),
});

locationConformance({
  name: 'RedisLocation on a Sentinel group',
  create: () => open(new RedisLocation({ sentinels: [{ host: '127.0.0.1', port: sentinel.sentinelPort }], name: sentinel.name }, { prefix: `s${++prefixes}:` })),
  corrupt: async (location, key) => {
    const master = new Redis({ host: '127.0.0.1', port: sentinel.masterPort });
    const name = (location as RedisLocation).prefix + key;
    const bytes = await master.hgetBuffer(name, 'd');
    bytes![0] ^= 0xff;
    await master.hset(name, 'd', bytes!);
    master.disconnect();
  },
});

describe('RedisLocation on a Redis Cluster', () => {
  it('computes the hash slot Redis does, hash tags included', async () => {
    const names = ['', 'a', 'lake:' + sha256(Buffer.from('x')), '{user1000}.following', 'foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', 'ключ', '{}', 'ключ{é}:x', 'é:{lake}' + sha256(Buffer.from('y')), 'a{ключ}', 'lake{}:' + sha256(Buffer.from('z'))];
    for (const name of names) expect(keySlot(name)).toBe(await admin.cluster('KEYSLOT', name));
  });

  it('reads a batch across slots and lists every master, from a Cluster client of the user', async () => {
    const location = open(new RedisLocation(admin, { prefix: `b${++prefixes}:`, batchSize: 40 }));
    expect(location.name).toMatch(/^RedisCluster\(redis:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ prefix b\d+:\)$/);
    const keys = await written(location, 90);
    const held = await spread(location.prefix);
    expect(held.every((count) => count > 0)).toBe(true); // the test means something: keys on all three masters
    expect(held.reduce((a, b) => a + b, 0)).toBe(90);

    const missing = sha256(randomBytes(8));
    const read = new Map<string, Buffer | null>();
    for await (const [key, value] of location.readBatch([...keys, missing, keys[0]!])) read.set(key, value === null ? null : await value.bytes());
    expect(read.size).toBe(91);
    expect(read.get(missing)).toBeNull();
    for (const key of keys) expect(sha256(read.get(key)!)).toBe(key);

    expect(await listed(location)).toEqual([...keys].sort());
  });

  it('reads a batch across slots with each value checked, its labels, and its usage mark; without labels too', async () => {
    const prefix = `m${++prefixes}:`;
    const writer = open(new RedisLocation(nodes(), { prefix }));
    const keys = await written(writer, 60);
    const relabelled = keys[1]!;
    await writer.write(relabelled, bytesSource((await (await writer.read(relabelled))!.bytes())), ['y']);
    const corrupted = keys[2]!;
    await corruptIn(writer, corrupted);
    const stray = sha256(randomBytes(8));
    await admin.hset(prefix + stray, 'u', '1'); // a hash without bytes is a miss
    await Promise.all(keys.map((key) => admin.hdel(prefix + key, 'u')));

    /** What readBatch gives for every key: the bytes (or the error of bytes()), the labels. */
    const readAll = async (location: RedisLocation) => {
      const got = new Map<string, { bytes: Buffer | unknown; labels: string[] | null } | null>();
      for await (const [key, value] of location.readBatch([...keys, stray])) {
        got.set(key, value === null ? null : { bytes: await value.bytes().catch((error: unknown) => error), labels: await value.labels() });
      }
      return got;
    };
    const before = Date.now();
    const full = await readAll(open(new RedisLocation(nodes(), { prefix, batchSize: 16 })));
    expect(full.size).toBe(61);
    expect(full.get(stray)).toBeNull();
    expect(full.get(corrupted)!.bytes).toBeInstanceOf(StorageCorruption);
    expect(full.get(relabelled)!.labels!.sort()).toEqual(['x', 'y']);
    for (const key of keys.filter((key) => key !== corrupted)) expect(sha256(full.get(key)!.bytes as Buffer)).toBe(key);
    for (const key of keys.filter((key) => key !== relabelled)) expect(full.get(key)!.labels).toEqual(['x']);
    // every key read got its usage mark, in the same pipelines
    for (const key of keys) expect(Number(await admin.hget(prefix + key, 'u'))).toBeGreaterThanOrEqual(before);

    await Promise.all(keys.map((key) => admin.hdel(prefix + key, 'u')));
    const lean = await readAll(open(new RedisLocation(nodes(), { prefix, batchSize: 16, keepLabels: false, keepUsage: false })));
    expect(lean.size).toBe(61);
    expect(lean.get(stray)).toBeNull();
    expect(lean.get(corrupted)!.bytes).toBeInstanceOf(StorageCorruption);
    for (const key of keys.filter((key) => key !== corrupted)) expect(sha256(lean.get(key)!.bytes as Buffer)).toBe(key);
    for (const key of keys) expect(lean.get(key)!.labels).toBeNull();
    for (const key of keys) expect(await admin.hexists(prefix + key, 'u')).toBe(0);
  });

  it('discovers the cluster from the redis:// URL of one node: every write lands, the name says cluster', async () => {
    const location = open(new RedisLocation(cluster.urls[0]!, { prefix: `d${++prefixes}:` }));
    expect(location.name).toBe(`Redis(${cluster.urls[0]} prefix ${location.prefix})`);
    const keys = await written(location, 60);
    expect(location.name).toBe(`RedisCluster(${cluster.urls[0]} prefix ${location.prefix})`);
    expect(await listed(location)).toEqual([...keys].sort());
    for (const key of keys) expect(await admin.hexists(location.prefix + key, 'd')).toBe(1);
    const storage = new HashKeyStorage(location);
    expect((await storage.readBytes(keys[7]!))?.length).toBe(64);
  });

  it('refuses a plain ioredis client connected to one node with a ConfigError, before writing anything', async () => {
    const plain = new Redis(cluster.urls[2]!);
    try {
      const location = open(new RedisLocation(plain, { prefix: `p${++prefixes}:` }));
      const bytes = randomBytes(10);
      const failure = await location.write(sha256(bytes), bytesSource(bytes)).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ConfigError);
      expect((failure as Error).message).toMatch(/node of a Redis Cluster/);
      expect(await admin.exists(location.prefix + sha256(bytes))).toBe(0);
    } finally {
      plain.disconnect();
    }
  });

  it('lists a large cluster page by page: an early stop leaves nothing pending', async () => {
    const location = open(new RedisLocation(nodes(), { prefix: `e${++prefixes}:`, scanCount: 10 }));
    const keys = await written(location, 50);
    const seen: string[] = [];
    for await (const entry of location.contents()) {
      seen.push(entry.key);
      if (seen.length === 5) break;
    }
    expect(seen.length).toBe(5);
    for (const key of seen) expect(keys).toContain(key);
  });

  it('answers has() without reading or marking, and a read with { use: false } leaves the usage mark', async () => {
    const location = open(new RedisLocation(nodes(), { prefix: `h${++prefixes}:`, touchInterval: 0 }));
    const [key] = await written(location, 1);
    await admin.hset(location.prefix + key, 'u', '1000');
    expect(await location.has(key!)).toBe(true);
    expect(await location.has(sha256(randomBytes(5)))).toBe(false);
    expect(sha256(await (await location.read(key!, { use: false }))!.bytes())).toBe(key);
    expect(await admin.hget(location.prefix + key, 'u')).toBe('1000');
    await location.read(key!);
    expect(Number(await admin.hget(location.prefix + key, 'u'))).toBeGreaterThan(1000);
  });

  it('refuses a second connection for locks on a cluster with a ConfigError', () => {
    const location = open(new RedisLocation(nodes()));
    expect(() => location.connectionTarget()).toThrow(ConfigError);
  });
});

describe('RedisLocation on a Sentinel group', () => {
  it('is named after the master and its Sentinels, and writes to the master', async () => {
    const location = open(new RedisLocation({ sentinels: [{ host: '127.0.0.1', port: sentinel.sentinelPort }], name: sentinel.name }, { prefix: `n${++prefixes}:` }));
    expect(location.name).toBe(`RedisSentinel(${sentinel.name} via redis://127.0.0.1:${sentinel.sentinelPort} prefix ${location.prefix})`);
    const [key] = await written(location, 1);
    const master = new Redis({ host: '127.0.0.1', port: sentinel.masterPort });
    try {
      expect(await master.hexists(location.prefix + key, 'd')).toBe(1);
    } finally {
      master.disconnect();
    }
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocationError } from '../../src/errors.js';
import { Disk, Levels, type Location, Small } from '../../src/index.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { bytesSource, locationConformance, sha256, streamSource, expectStored } from '../conformance.js';
import { type RedisServer, startRedis } from '../servers/redis.js';

let server: RedisServer;
let admin: Redis;
let prefixes = 0;
const folders: string[] = [];

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin?.disconnect();
  await server?.destroy();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function fresh(options: ConstructorParameters<typeof RedisLocation>[1] = {}): RedisLocation {
  return new RedisLocation(server.url, { prefix: `t${++prefixes}:`, ...options });
}

/** Changes the stored bytes behind the location's back (same length, one byte flipped). */
async function corruptIn(prefix: string, key: string): Promise<void> {
  const bytes = await admin.hgetBuffer(prefix + key, 'd');
  bytes![0] ^= 0xff;
  await admin.hset(prefix + key, 'd', bytes!);
}

/** Counts the writes to a client's socket from now on (with writes corked, one `_writev` for several). */
function countWrites(client: Redis): () => number {
  let writes = 0;
  const socket = client.stream as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>;
  for (const method of ['_write', '_writev'] as const) {
    const original = socket[method].bind(socket);
    socket[method] = (...args) => {
      writes++;
      original(...args);
    };
  }
  return () => writes;
}

function redisOf(location: Location): RedisLocation {
  if (location instanceof RedisLocation) return location;
  if (location instanceof Small) return redisOf(location.location);
  throw new Error('no RedisLocation inside');
}

locationConformance({
  name: 'RedisLocation',
  create: () => fresh(),
  destroy: (location) => location.close?.(),
  corrupt: (location, key) => corruptIn(redisOf(location).prefix, key),
});

locationConformance({
  name: 'Small(RedisLocation)',
  create: () => new Small(fresh(), { maxSize: 4 * 1024 * 1024 }),
  destroy: (location) => location.close?.(),
  maxValueSize: 4 * 1024 * 1024,
  corrupt: (location, key) => corruptIn(redisOf(location).prefix, key),
});

locationConformance({
  name: 'Levels(Small(RedisLocation), Disk)',
  create: () => {
    const folder = mkdtempSync(join(tmpdir(), 'cairn-redis-levels-'));
    folders.push(folder);
    return new Levels(new Small(fresh(), { maxSize: 64 * 1024 }), new Disk(folder));
  },
  destroy: (location) => location.close?.(),
});

describe('RedisLocation', () => {
  it('keeps one hash per key under the prefix, and prefixes isolate two lakes on one server', async () => {
    const a = fresh();
    const b = fresh();
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await expectStored(a.write(key, bytesSource(bytes), ['x']), key);
    expect(await b.read(key)).toBeNull();
    expect(await admin.type(a.prefix + key)).toBe('hash');
    expect(await admin.exists(b.prefix + key)).toBe(0);
    const listed: string[] = [];
    for await (const entry of b.contents()) listed.push(entry.key);
    expect(listed).not.toContain(key);
    // a foreign key under the same prefix is neither listed nor an error
    await admin.set(a.prefix + 'not-a-key', 'x');
    const inA: string[] = [];
    for await (const entry of a.contents()) inA.push(entry.key);
    expect(inA).toEqual([key]);
    await a.close();
    await b.close();
  });

  it('expires values after ttl seconds, and a read refreshes the ttl', async () => {
    const location = fresh({ ttl: 2 });
    const bytes = randomBytes(64);
    const key = sha256(bytes);
    await location.write(key, bytesSource(bytes));
    await new Promise((resolve) => setTimeout(resolve, 700));
    const before = await admin.pttl(location.prefix + key);
    expect(before).toBeLessThanOrEqual(1400);
    expect(await location.read(key)).not.toBeNull();
    expect(await admin.pttl(location.prefix + key)).toBeGreaterThan(1800);

    const short = fresh({ ttl: 0.3 });
    await short.write(key, bytesSource(bytes));
    expect(await short.read(key)).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await short.read(key)).toBeNull();
    await location.close();
    await short.close();
  });

  it('declines values above maxSize, of known or unknown size, and takes one at the limit', async () => {
    const location = fresh({ maxSize: 1000 });
    const big = randomBytes(1001);
    expect(await location.write(sha256(big), bytesSource(big))).toBeNull();
    expect(await location.write(sha256(big), streamSource(big, false, 100))).toBeNull();
    expect(await location.read(sha256(big))).toBeNull();
    const fits = randomBytes(1000);
    await expectStored(location.write(sha256(fits), streamSource(fits, false, 100)), sha256(fits));
    await location.close();
  });

  it('reads a value with its labels in one round trip, and a batch in one pipeline', async () => {
    const location = fresh({ ttl: 60 });
    const values = Array.from({ length: 20 }, () => randomBytes(512));
    const keys = values.map((bytes) => sha256(bytes));
    for (const bytes of values) await location.write(sha256(bytes), bytesSource(bytes), ['a', 'b']);
    // the first read of each key also refreshes its usage mark (at most once a minute): done here
    for await (const [, value] of location.readBatch(keys)) expect(value).not.toBeNull();

    const monitor = await admin.monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(args[0]!.toLowerCase());
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const value = await location.read(keys[1]!);
    expect((await value!.labels())!.sort()).toEqual(['a', 'b']);
    expect((await value!.bytes()).equals(values[1]!)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // bytes and labels in one HGETALL, the ttl refresh pipelined with it
    expect(seen).toEqual(['hgetall', 'pexpire']);

    seen.length = 0;
    let found = 0;
    for await (const [, batchValue] of location.readBatch(keys)) if (batchValue) found++;
    expect(found).toBe(20);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.filter((name) => name === 'hgetall').length).toBe(20);
    expect(seen.every((name) => name === 'hgetall' || name === 'pexpire')).toBe(true);
    monitor.disconnect();
    await location.close();
  });

  it('hands out a batch of many pipelines in the order asked, each key once, reading the next pipeline ahead', async () => {
    const location = fresh({ batchSize: 8 });
    const values = Array.from({ length: 50 }, (_, index) => randomBytes(100 + index));
    const keys = values.map((bytes) => sha256(bytes));
    for (const [index, bytes] of values.entries()) await location.write(keys[index]!, bytesSource(bytes), index % 2 ? ['odd'] : null);
    const missing = sha256(randomBytes(3));
    const asked = [...keys.slice(0, 30), missing, keys[3]!, ...keys.slice(30)];
    const answered: [string, Buffer | null, string[] | null][] = [];
    for await (const [key, value] of location.readBatch(asked)) answered.push([key, value && (await value.bytes()), value && (await value.labels())]);
    expect(answered).toEqual([...keys.slice(0, 30), missing, ...keys.slice(30)].map((key) => {
      const index = keys.indexOf(key);
      return index === -1 ? [key, null, null] : [key, values[index], index % 2 ? ['odd'] : []];
    }));
    // a caller that stops after the first value: the location is left usable
    for await (const [key] of location.readBatch(keys)) {
      expect(key).toBe(keys[0]);
      break;
    }
    expect((await location.readBytes(keys[49]!))!.equals(values[49]!)).toBe(true);
    await location.close();
  });

  it('sends a read with its usage mark and ttl refresh in one write, and marks usage once per touchInterval', async () => {
    const client = new Redis(server.url);
    const location = new RedisLocation(client, { prefix: `t${++prefixes}:`, ttl: 60 });
    const bytes = randomBytes(64);
    const key = sha256(bytes);
    const name = location.prefix + key;
    await location.write(key, bytesSource(bytes));
    const writes = countWrites(client);
    const age = async () => {
      await admin.hset(name, 'u', '1000');
      await admin.pexpire(name, 5000);
    };

    await age();
    let before = writes();
    expect((await location.readBytes(key))!.equals(bytes)).toBe(true);
    expect(writes() - before).toBe(1);
    expect(Number(await admin.hget(name, 'u'))).toBeGreaterThan(Date.now() - 60_000);
    expect(await admin.pttl(name)).toBeGreaterThan(50_000);

    // within touchInterval a read refreshes the ttl only, still in one write
    await age();
    before = writes();
    expect(await location.read(key)).not.toBeNull();
    expect(writes() - before).toBe(1);
    expect(await admin.hget(name, 'u')).toBe('1000');
    expect(await admin.pttl(name)).toBeGreaterThan(50_000);

    // reads started together share writes, 8 at most per write
    before = writes();
    const reads = await Promise.all(Array.from({ length: 16 }, () => location.readBytes(key)));
    expect(reads.every((read) => read!.equals(bytes))).toBe(true);
    expect(writes() - before).toBe(2);
    await location.close();
    client.disconnect();
  });

  it('leaves the usage mark due after a read that failed', async () => {
    const location = fresh();
    const bytes = randomBytes(64);
    const key = sha256(bytes);
    const name = location.prefix + key;
    await admin.set(name, 'not a hash');
    await expect(location.readBytes(key)).rejects.toBeInstanceOf(LocationError);
    await admin.del(name);
    await location.write(key, bytesSource(bytes));
    await admin.hset(name, 'u', '1000');
    expect((await location.readBytes(key))!.equals(bytes)).toBe(true);
    expect(Number(await admin.hget(name, 'u'))).toBeGreaterThan(Date.now() - 60_000);
    await location.close();
  });

  it('keeps labels and usage only when asked to', async () => {
    const location = fresh({ keepLabels: false, keepUsage: false });
    const bytes = randomBytes(64);
    const key = sha256(bytes);
    await location.write(key, bytesSource(bytes), ['a']);
    expect(await (await location.read(key))!.labels()).toBeNull();
    for await (const entry of location.contents()) {
      expect(entry.meta).toEqual({ size: 64, labels: null, lastUsed: null });
    }
    expect(await admin.hkeys(location.prefix + key)).toEqual(['d']);
    await location.close();
  });

  it('leaves a client given by the user open on close', async () => {
    const client = new Redis(server.url);
    const location = new RedisLocation(client, { prefix: `t${++prefixes}:` });
    const bytes = randomBytes(64);
    await expectStored(location.write(sha256(bytes), bytesSource(bytes)), sha256(bytes));
    await location.close();
    expect(await client.ping()).toBe('PONG');
    client.disconnect();
  });
});

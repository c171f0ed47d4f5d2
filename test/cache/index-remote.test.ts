/**
 * RedisIndex and S3Index against real servers (redis-server, s3rver): the conformance of an
 * EntryIndex, a key space the location's own contents() never lists, and typed errors when the
 * server is gone.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisIndex } from '../../src/cache/index-redis.js';
import { S3Index } from '../../src/cache/index-s3.js';
import { smartCache } from '../../src/cache/index.js';
import { ConnectionError } from '../../src/errors.js';
import type { Location } from '../../src/locations/interface.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { S3 } from '../../src/locations/s3/s3.js';
import { type RedisServer, startRedis } from '../servers/redis.js';
import { S3_CREDENTIALS, type S3Server, startS3 } from '../servers/s3.js';
import { entryIndexConformance } from './entry-index-conformance.js';

const sha = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

let redis: RedisServer;
let admin: Redis;
let s3: S3Server;
let prefixes = 0;

beforeAll(async () => {
  [redis, s3] = await Promise.all([startRedis(), startS3()]);
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin?.disconnect();
  await Promise.all([redis?.destroy(), s3?.destroy()]);
});

entryIndexConformance({
  name: 'RedisIndex',
  location: () => new RedisLocation(redis.url, { prefix: `ri${++prefixes}:` }),
  index: (location) => new RedisIndex(location as RedisLocation),
  corrupt: async (location, key) => {
    const name = `${(location as RedisLocation).prefix}cairn:sc:${key}`;
    const bytes = (await admin.hgetBuffer(name, 'e'))!;
    bytes[bytes.length - 1] ^= 0x01;
    await admin.hset(name, 'e', bytes);
  },
  foreign: async (location, key) => {
    const name = `${(location as RedisLocation).prefix}cairn:sc:${key}`;
    await admin.del(name);
    await admin.set(name, 'a value of another program');
  },
  usedResolutionMs: 1,
});

const objectName = (location: Location, key: string) => `${(location as S3).prefix}tools/smart-cache/entries/${key}`;

entryIndexConformance({
  name: 'S3Index',
  location: () => new S3(s3.endpoint, s3.bucket, { credentials: S3_CREDENTIALS, prefix: `si${++prefixes}` }),
  index: (location) => new S3Index(location as S3),
  corrupt: async (location, key) => {
    const file = s3.objectFile(objectName(location, key));
    const bytes = await fsp.readFile(file);
    bytes[bytes.length - 1] ^= 0x01;
    await fsp.writeFile(file, bytes);
  },
  foreign: async (location, key) => {
    await (location as S3).putObject(objectName(location, key), Buffer.from('a value of another program'), 'test');
  },
  // S3 keeps modification times in whole seconds
  usedResolutionMs: 1000,
});

describe('index key spaces', () => {
  it('entries in Redis are hashes beside the values, under the prefix, never listed by the location', async () => {
    const location = new RedisLocation(redis.url, { prefix: `ks${++prefixes}:` });
    const cached = smartCache({ index: location, storage: location })(async function parts(n: number) {
      return new Float64Array(1024).fill(n);
    });
    const value = await cached(2);
    const listed: string[] = [];
    for await (const entry of location.contents()) listed.push(entry.key);
    // only the stored part: sha256 of its bytes
    expect(listed).toEqual([sha(Buffer.from(value.buffer, value.byteOffset, value.byteLength))]);
    expect(await admin.exists(`${location.prefix}cairn:sc:${cached.key(2)}`)).toBe(1);
    await location.close();
  });

  it('entries in S3 live under tools/smart-cache/ of the prefix, never listed by the location', async () => {
    const location = new S3(s3.endpoint, s3.bucket, { credentials: S3_CREDENTIALS, prefix: `ks${++prefixes}` });
    const cached = smartCache({ index: location, storage: location })(async function parts(n: number) {
      return new Float64Array(1024).fill(n);
    });
    const value = await cached(3);
    const listed: string[] = [];
    for await (const entry of location.contents()) listed.push(entry.key);
    expect(listed).toEqual([sha(Buffer.from(value.buffer, value.byteOffset, value.byteLength))]);
    expect(await location.statObject(`${location.prefix}tools/smart-cache/entries/${cached.key(3)}`, 'test')).not.toBeNull();
    await location.close();
  });
});

describe('a server that is gone', () => {
  it('Redis: every index operation is a ConnectionError, and smartCache reports it (onError) and still returns the value', async () => {
    const server = await startRedis();
    const location = new RedisLocation(server.url, { prefix: 'gone:', timeoutMs: 2000 });
    const index = new RedisIndex(location);
    const key = sha('gone');
    await index.put(key, Buffer.from('x'), { fn: 'f', digest: sha('d'), args: sha('a'), size: 1 }, []);
    await server.stop();
    try {
      await expect(index.get(key)).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.put(key, Buffer.from('y'), { fn: 'f', digest: sha('d'), args: sha('a'), size: 1 }, [])).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.delete(key)).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.digestsFor('f', sha('a'))).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.entries()[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(ConnectionError);
      const errors: unknown[] = [];
      const cached = smartCache({ index: location, storage: location }, { onError: (error) => errors.push(error) })(async function f(n: number) {
        return n * 2;
      });
      expect(await cached(21)).toBe(42);
      expect(cached.stats).toMatchObject({ misses: 1, errors: errors.length });
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((error) => error instanceof ConnectionError)).toBe(true);
    } finally {
      await location.close();
      await server.destroy();
    }
  });

  it('S3: every index operation is a ConnectionError, and smartCache reports it (onError) and still returns the value', async () => {
    const server = await startS3();
    const location = new S3(server.endpoint, server.bucket, { credentials: S3_CREDENTIALS, prefix: 'gone', timeoutMs: 2000 });
    const index = new S3Index(location);
    const key = sha('gone');
    await index.put(key, Buffer.from('x'), { fn: 'f', digest: sha('d'), args: sha('a'), size: 1 }, []);
    await server.stop();
    try {
      await expect(index.get(key)).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.put(key, Buffer.from('y'), { fn: 'f', digest: sha('d'), args: sha('a'), size: 1 }, [])).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.delete(key)).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.digestsFor('f', sha('a'))).rejects.toBeInstanceOf(ConnectionError);
      await expect(index.entries()[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(ConnectionError);
      const errors: unknown[] = [];
      const cached = smartCache({ index: location, storage: location }, { onError: (error) => errors.push(error) })(async function f(n: number) {
        return n * 2;
      });
      expect(await cached(21)).toBe(42);
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((error) => error instanceof ConnectionError)).toBe(true);
    } finally {
      await location.close();
      await server.destroy();
    }
  });
});

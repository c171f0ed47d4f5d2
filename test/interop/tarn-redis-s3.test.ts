/**
 * One Redis and one S3 bucket shared by cairn (`layout: 'tarn'`) and real Python tarn 0.14 (see
 * tarn.ts), in both directions; and, in both layouts, a corrupted value that the next write
 * replaces and that Levels heals.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { S3Client, PutObjectCommand, GetObjectTaggingCommand } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Disk, Level, Levels, StorageCorruption, type Location } from '../../src/index.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { S3 } from '../../src/locations/s3/s3.js';
import { bytesSource, expectStored, locationConformance } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { S3_CREDENTIALS, startS3, type S3Server } from '../servers/s3.js';
import { b64, fromB64, removeTarnRuntime, tarn, type TarnEntry, type TarnLocation } from './tarn.js';

// each test starts Python tarn a few times (about a second each, more on a loaded machine)
vi.setConfig({ testTimeout: 180_000 });

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let redis: RedisServer;
let admin: Redis;
let s3: S3Server;
let prefixes = 0;
let buckets = 0;
const BUCKETS = ['tarn1', 'tarn2', 'tarn3', 'tarn4', 'tarn5', 'tarn6', 'tarn7', 'tarn8'];

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
  s3 = await startS3({ buckets: BUCKETS });
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.destroy();
  await s3?.destroy();
  removeTarnRuntime();
  cleanup();
});

const nextPrefix = () => `interop${++prefixes}:`;
const nextBucket = () => BUCKETS[buckets++]!;
const tarnRedis = (prefix: string): TarnLocation => ({ kind: 'redis', url: redis.url, prefix, keep_labels: true, keep_usage: true });
const tarnS3 = (bucket: string): TarnLocation => ({ kind: 's3', endpoint: s3.endpoint, bucket, key: S3_CREDENTIALS.accessKeyId, secret: S3_CREDENTIALS.secretAccessKey });
const cairnS3 = (bucket: string, layout: 'tarn' | 'cairn' = 'tarn') => new S3(s3.endpoint, bucket, { credentials: S3_CREDENTIALS, layout });

/** Flips the first byte of a value in tarn's Redis layout. */
async function corruptTarnRedis(location: Location, key: string): Promise<void> {
  const name = Buffer.concat([Buffer.from((location as RedisLocation).prefix), Buffer.from(key, 'hex')]);
  const bytes = (await admin.getBuffer(name))!;
  bytes[0] ^= 0xff;
  await admin.set(name, bytes);
}

/** Flips the first byte of a value in cairn's Redis layout. */
async function corruptCairnRedis(location: Location, key: string): Promise<void> {
  const name = (location as RedisLocation).prefix + key;
  const bytes = (await admin.hgetBuffer(name, 'd'))!;
  bytes[0] ^= 0xff;
  await admin.hset(name, 'd', bytes);
}

/** Flips the first byte of an object on the S3 server's disk. */
async function corruptS3(location: Location, key: string, bucket: string): Promise<void> {
  const file = s3.objectFile((location as S3).objectKey(key), bucket);
  const bytes = await fsp.readFile(file);
  bytes[0] ^= 0xff;
  await fsp.writeFile(file, bytes);
}

locationConformance({
  name: 'RedisLocation, tarn layout',
  create: () => new RedisLocation(redis.url, { layout: 'tarn', prefix: nextPrefix() }),
  destroy: (location) => location.close?.(),
  corrupt: corruptTarnRedis,
});

const conformanceBucket = nextBucket();
locationConformance({
  name: 'S3, tarn layout',
  create: () => cairnS3(conformanceBucket),
  destroy: (location) => location.close?.(),
  corrupt: (location, key) => corruptS3(location, key, conformanceBucket),
});

describe('one Redis shared by cairn and tarn (layout: tarn)', () => {
  it('cairn writes, tarn reads: bytes, labels, contents and last use', async () => {
    const prefix = nextPrefix();
    const location = new RedisLocation(redis.url, { layout: 'tarn', prefix });
    const values = [randomBytes(10), randomBytes(100_000)];
    for (const [i, bytes] of values.entries()) await expectStored(location.write(sha(bytes), bytesSource(bytes), ['cairn', `n${i}`]), sha(bytes), bytes);
    const keys = values.map(sha);
    const results = await tarn(tarnRedis(prefix), [...keys.map((key) => ({ op: 'read' as const, key })), ...keys.map((key) => ({ op: 'labels' as const, key })), { op: 'contents' }]);
    keys.forEach((_key, i) => expect(fromB64(results[i]).equals(values[i]!)).toBe(true));
    keys.forEach((_key, i) => expect(results[2 + i]).toEqual(['cairn', `n${i}`].sort()));
    const listed = results[4] as TarnEntry[];
    expect(listed.map((entry) => entry.key)).toEqual([...keys].sort());
    for (const entry of listed) expect(entry.last_used! * 1000).toBeGreaterThan(Date.now() - 60_000);
    await location.close();
  });

  it('tarn writes, cairn reads: bytes, labels, contents and last use; a label added by cairn reaches tarn', async () => {
    const prefix = nextPrefix();
    const values = [randomBytes(5), randomBytes(50_000)];
    const keys = (await tarn(tarnRedis(prefix), values.map((bytes) => ({ op: 'write' as const, data: b64(bytes), labels: ['tarn'] })))) as string[];
    const location = new RedisLocation(redis.url, { layout: 'tarn', prefix });
    for (const [i, key] of keys.entries()) {
      expect((await location.readBytes(key))!.equals(values[i]!)).toBe(true);
      expect(await (await location.read(key))!.labels()).toEqual(['tarn']);
    }
    const listed = new Map<string, { labels: string[] | null; lastUsed: Date | null }>();
    for await (const { key, meta } of location.contents()) listed.set(key, meta);
    expect([...listed.keys()].sort()).toEqual([...keys].sort());
    for (const meta of listed.values()) {
      expect(meta.labels).toEqual(['tarn']);
      expect(meta.lastUsed!.getTime()).toBeGreaterThan(Date.now() - 60_000);
    }
    await location.write(keys[0]!, bytesSource(values[0]!), ['cairn']);
    expect(await tarn(tarnRedis(prefix), [{ op: 'labels', key: keys[0]! }])).toEqual([['cairn', 'tarn']]);
    expect(await location.delete(keys[1]!)).toBe(true);
    expect(await tarn(tarnRedis(prefix), [{ op: 'read', key: keys[1]! }])).toEqual([null]);
    await location.close();
  });
});

describe('one S3 bucket shared by cairn and tarn (layout: tarn)', () => {
  it('cairn writes, tarn reads: bytes, labels, contents and last use', async () => {
    const bucket = nextBucket();
    const location = cairnS3(bucket);
    const values = [randomBytes(10), randomBytes(200_000)];
    for (const [i, bytes] of values.entries()) await expectStored(location.write(sha(bytes), bytesSource(bytes), ['cairn', `n${i}`]), sha(bytes), bytes);
    const keys = values.map(sha);
    expect(location.objectKey(keys[0]!)).toBe(`${keys[0]!.slice(0, 4)}/${keys[0]!.slice(4)}`);
    const results = await tarn(tarnS3(bucket), [...keys.map((key) => ({ op: 'read' as const, key })), ...keys.map((key) => ({ op: 'labels' as const, key })), { op: 'contents' }]);
    keys.forEach((_key, i) => expect(fromB64(results[i]).equals(values[i]!)).toBe(true));
    keys.forEach((_key, i) => expect(results[2 + i]).toEqual(['cairn', `n${i}`].sort()));
    const listed = results[4] as TarnEntry[];
    expect(listed.map((entry) => entry.key)).toEqual([...keys].sort());
    for (const entry of listed) expect(entry.last_used! * 1000).toBeGreaterThan(Date.now() - 60_000);
    await location.close();
  });

  it('tarn writes, cairn reads: bytes, labels, contents and last use; a label added by cairn reaches tarn', async () => {
    const bucket = nextBucket();
    const values = [randomBytes(5), randomBytes(70_000)];
    const keys = (await tarn(tarnS3(bucket), values.map((bytes) => ({ op: 'write' as const, data: b64(bytes), labels: ['tarn'] })))) as string[];
    const location = cairnS3(bucket);
    for (const [i, key] of keys.entries()) {
      expect((await location.readBytes(key))!.equals(values[i]!)).toBe(true);
      expect(await (await location.read(key))!.labels()).toEqual(['tarn']);
    }
    const listed = new Map<string, { labels: string[] | null; lastUsed: Date | null }>();
    for await (const { key, meta } of location.contents()) listed.set(key, meta);
    expect([...listed.keys()].sort()).toEqual([...keys].sort());
    for (const meta of listed.values()) {
      expect(meta.labels).toEqual(['tarn']);
      expect(meta.lastUsed!.getTime()).toBeGreaterThan(Date.now() - 60_000);
    }
    await location.write(keys[0]!, bytesSource(values[0]!), ['cairn']);
    expect(await tarn(tarnS3(bucket), [{ op: 'labels', key: keys[0]! }])).toEqual([['cairn', 'tarn']]);
    expect(await location.delete(keys[1]!)).toBe(true);
    expect(await tarn(tarnS3(bucket), [{ op: 'read', key: keys[1]! }, { op: 'contents' }])).toEqual([null, [{ key: keys[0]!, labels: ['cairn', 'tarn'], last_used: expect.any(Number) }]]);
    await location.close();
  });
});

describe('a corrupted value in Redis or S3 is replaced by the next write and healed by Levels', () => {
  const cases: { name: string; make: () => Location; corrupt: (location: Location, key: string) => Promise<void> }[] = [
    { name: 'Redis, cairn layout', make: () => new RedisLocation(redis.url, { prefix: nextPrefix() }), corrupt: corruptCairnRedis },
    { name: 'Redis, tarn layout', make: () => new RedisLocation(redis.url, { prefix: nextPrefix(), layout: 'tarn' }), corrupt: corruptTarnRedis },
    ...(['cairn', 'tarn'] as const).map((layout) => {
      const bucket = nextBucket();
      return { name: `S3, ${layout} layout`, make: () => cairnS3(bucket, layout), corrupt: (location: Location, key: string) => corruptS3(location, key, bucket) };
    }),
  ];
  for (const { name, make, corrupt } of cases) {
    it(`${name}: the next write replaces it, keeping its labels`, async () => {
      const location = make();
      const bytes = randomBytes(3000);
      const key = sha(bytes);
      await location.write(key, bytesSource(bytes), ['first']);
      await corrupt(location, key);
      await expect(location.readBytes!(key)).rejects.toBeInstanceOf(StorageCorruption);
      await expectStored(location.write(key, bytesSource(bytes), ['second']), key, bytes);
      expect((await location.readBytes!(key))!.equals(bytes)).toBe(true);
      expect((await (await location.read(key))!.labels())!.sort()).toEqual(['first', 'second']);
      await location.close?.();
    });

    it(`${name}: Levels with skipFailing serves the good copy below and heals the level`, async () => {
      const location = make();
      const disk = new Disk(tempDir());
      const bytes = randomBytes(5000);
      const key = sha(bytes);
      await location.write(key, bytesSource(bytes));
      await disk.write(key, bytesSource(bytes));
      await corrupt(location, key);
      const levels = new Levels(new Level(location, { name: 'cache' }), disk, { skipFailing: true });
      expect((await levels.readBytes(key))!.equals(bytes)).toBe(true);
      expect((await location.readBytes!(key))!.equals(bytes)).toBe(true);
      await corrupt(location, key);
      expect((await (await levels.read(key))!.bytes()).equals(bytes)).toBe(true);
      expect((await location.readBytes!(key))!.equals(bytes)).toBe(true);
      await location.close?.();
      await disk.close();
    });
  }
});

describe('what tarn cannot read', () => {
  it('tarn’s contents() of a bucket fails on an object that is not a value (cairn’s layout keeps its labels so)', async () => {
    const bucket = nextBucket();
    const location = cairnS3(bucket, 'cairn');
    const bytes = randomBytes(100);
    await location.write(sha(bytes), bytesSource(bytes), ['x']);
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3_CREDENTIALS });
    // a stray object of another tool, as tarn's contents() meets it
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'notes.txt', Body: 'x' }));
    const tagged = await client.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: location.objectKey(sha(bytes)) }));
    expect(tagged.TagSet ?? []).toEqual([]); // cairn's layout: labels are marker objects, not tags
    await expect(tarn(tarnS3(bucket), [{ op: 'contents' }])).rejects.toThrow(/AssertionError/);
    client.destroy();
    await location.close();
  });
});

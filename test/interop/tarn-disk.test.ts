/**
 * One Disk lake, written and read by cairn and by real Python tarn 0.14 (see tarn.ts), in both
 * directions: values, labels, last-used marks, a lake shared with a colleague (tarn run as
 * `nobody`), tarn's RedisSize counter, tarn's old `<key>/data` layout and a config that names
 * only its hash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Disk, HashKeyStorage, InvalidLabelsError } from '../../src/index.js';
import { bytesSource, expectStored } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { startRedis, type RedisServer } from '../servers/redis.js';
import { b64, fromB64, NOBODY, removeTarnRuntime, runTarn, tarn, type TarnEntry, USERS_GID } from './tarn.js';

// each test starts Python tarn a few times (about a second each, more on a loaded machine)
vi.setConfig({ testTimeout: 180_000 });

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const asRoot = process.getuid?.() === 0;

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  removeTarnRuntime();
  cleanup();
});

/** A folder other users may enter, holding the lake `lake` (not yet created). */
function lakePath(): string {
  const parent = tempDir('cairn-tarn-lake-');
  chmodSync(parent, 0o755);
  return join(parent, 'lake');
}

const markOf = (root: string, key: string) => join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2));

describe('cairn writes, tarn reads', () => {
  it('values, labels and contents of a cairn lake read back in tarn, and tarn’s reads move cairn’s marks', async () => {
    const root = lakePath();
    const storage = new HashKeyStorage(root);
    const values = [randomBytes(100), randomBytes(70_000), randomBytes(2_000_000)];
    const keys: string[] = [];
    for (const [i, bytes] of values.entries()) keys.push((await storage.write(bytes, { labels: ['cairn', `n${i}`] }))!);
    const old = new Date('2024-01-01T00:00:00Z');
    for (const key of keys) utimesSync(markOf(root, key), old, old);

    const lake = { kind: 'disk', root } as const;
    const results = await tarn(lake, [...keys.map((key) => ({ op: 'read' as const, key })), ...keys.map((key) => ({ op: 'labels' as const, key })), { op: 'contents' }]);
    keys.forEach((key, i) => expect(fromB64(results[i]).equals(values[i]!), key).toBe(true));
    keys.forEach((_key, i) => expect(results[keys.length + i]).toEqual(['cairn', `n${i}`].sort()));
    const listed = results[2 * keys.length] as TarnEntry[];
    expect(listed.map((entry) => entry.key)).toEqual([...keys].sort());
    for (const entry of listed) expect(entry.last_used! * 1000).toBeGreaterThan(Date.now() - 60_000); // tarn's reads touched them
    await storage.close();
  });

  it('a string given as labels is refused, as tarn refuses it', async () => {
    const root = lakePath();
    const storage = new HashKeyStorage(root);
    await expect(storage.write(Buffer.from('x'), { labels: 'abc' as unknown as string[] })).rejects.toBeInstanceOf(InvalidLabelsError);
    expect(() => new HashKeyStorage(root, { labels: 'abc' as unknown as string[] })).toThrow(InvalidLabelsError);
    await expect(storage.write(Buffer.from('x'), { labels: [1] as unknown as string[] })).rejects.toBeInstanceOf(InvalidLabelsError);
    // nothing was stored, nothing labelled
    expect(await storage.has(sha(Buffer.from('x')))).toBe(false);
    const reply = await runTarn({ kind: 'disk', root }, [{ op: 'write', data: b64(Buffer.from('x')), labels: 'abc' }]);
    expect(reply.error?.type).toBe('TypeError');
  });
});

describe('tarn writes, cairn reads', () => {
  it('values and labels tarn writes into a cairn lake, and into a lake tarn created', async () => {
    for (const made of ['cairn', 'tarn'] as const) {
      const root = lakePath();
      if (made === 'cairn') new Disk(root);
      const values = [randomBytes(10), randomBytes(300_000)];
      const keys = (await tarn(
        { kind: 'disk', root },
        values.map((bytes, i) => ({ op: 'write' as const, data: b64(bytes), labels: [`t${i}`] })),
        { labels: ['preset'] },
      )) as string[];
      expect(keys).toEqual(values.map(sha));
      const storage = new HashKeyStorage(root);
      for (const [i, key] of keys.entries()) expect((await storage.readBytes(key))!.equals(values[i]!)).toBe(true);
      const listed = new Map<string, string[] | null>();
      for await (const { key, meta } of storage.contents()) listed.set(key, meta.labels);
      expect([...listed.keys()].sort()).toEqual([...keys].sort());
      // tarn's write labels replace its preset ones; a lake tarn created keeps no labels at all
      for (const [i, key] of keys.entries()) expect(listed.get(key)).toEqual(made === 'cairn' ? [`t${i}`] : null);
      await storage.close();
    }
  });

  it('a config that names its hash and no levels: tarn’s [1, 31], in both directions', async () => {
    const root = lakePath();
    mkdirSync(root);
    writeFileSync(join(root, 'config.yml'), 'hash: sha256\n');
    const fromTarn = randomBytes(5000);
    const [key] = (await tarn({ kind: 'disk', root }, [{ op: 'write', data: b64(fromTarn) }])) as string[];
    const disk = new Disk(root, { levels: [1, 31] });
    expect(disk.levels).toEqual([1, 31]);
    expect((await disk.readBytes(key!))!.equals(fromTarn)).toBe(true);
    expect(new Disk(root).levels).toEqual([1, 31]);
    const fromCairn = randomBytes(4000);
    const cairnKey = (await new HashKeyStorage(disk).write(fromCairn))!;
    const [read] = await tarn({ kind: 'disk', root }, [{ op: 'read', key: cairnKey }]);
    expect(fromB64(read).equals(fromCairn)).toBe(true);
    await disk.close();
  });

  it('tarn’s old layout, a folder `<key>/data`: read, listed, written again and deleted by cairn', async () => {
    const root = lakePath();
    const disk = new Disk(root);
    const bytes = randomBytes(3000);
    const key = sha(bytes);
    const folder = join(root, key.slice(0, 2), key.slice(2));
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'data'), bytes, { mode: 0o444 });
    // tarn 0.14 reads it
    expect(fromB64((await tarn({ kind: 'disk', root }, [{ op: 'read', key }]))[0]).equals(bytes)).toBe(true);
    expect((await disk.readBytes(key))!.equals(bytes)).toBe(true);
    const value = (await disk.read(key))!;
    expect(value.size).toBe(bytes.length);
    expect((await value.bytes()).equals(bytes)).toBe(true);
    expect(value.path).toBe(join(folder, 'data'));
    const listed = [];
    for await (const entry of disk.contents()) listed.push([entry.key, entry.meta.size]);
    expect(listed).toEqual([[key, bytes.length]]);
    expect(await disk.usage()).toBe(bytes.length);
    // written again: already there
    await expectStored(disk.write(key, bytesSource(bytes)), key, bytes);
    expect(statSync(folder).isDirectory()).toBe(true);
    expect(await disk.delete(key)).toBe(true);
    expect(await disk.readBytes(key)).toBeNull();
    await disk.close();
  });

  it('a corrupted blob of the old layout is replaced by a file when the key is written again', async () => {
    const root = lakePath();
    const disk = new Disk(root);
    const storage = new HashKeyStorage(disk);
    const bytes = randomBytes(3000);
    const key = sha(bytes);
    const folder = join(root, key.slice(0, 2), key.slice(2));
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'data'), Buffer.from('not the value'));
    expect(await storage.write(bytes)).toBe(key);
    expect(statSync(join(root, key.slice(0, 2), key.slice(2))).isFile()).toBe(true);
    expect(readFileSync(disk.pathOf(key)).equals(bytes)).toBe(true);
    expect(fromB64((await tarn({ kind: 'disk', root }, [{ op: 'read', key }]))[0]).equals(bytes)).toBe(true);
    await storage.close();
  });
});

describe.runIf(asRoot)('a lake shared with a colleague: tarn run as another user', () => {
  it('a lake not shared by a group: tarn as `nobody` reads cairn’s values, and its reads touch cairn’s marks', async () => {
    const root = lakePath();
    const storage = new HashKeyStorage(root);
    const bytes = randomBytes(1000);
    const key = (await storage.write(bytes, { labels: ['cairn'] }))!;
    expect(statSync(join(root)).mode & 0o777).toBe(0o755);
    const old = new Date('2024-01-01T00:00:00Z');
    utimesSync(markOf(root, key), old, old);
    const [read, labels] = await tarn({ kind: 'disk', root }, [{ op: 'read', key }, { op: 'labels', key }], { uid: NOBODY });
    expect(fromB64(read).equals(bytes)).toBe(true);
    expect(labels).toEqual(['cairn']);
    expect(statSync(markOf(root, key)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
    await storage.close();
  });

  it('a group-shared lake: tarn as another member reads, labels and writes; cairn sees it all', async () => {
    const root = lakePath();
    mkdirSync(root);
    chownSync(root, 0, USERS_GID);
    chmodSync(root, 0o2775);
    const storage = new HashKeyStorage(root);
    const mine = randomBytes(2000);
    const key = (await storage.write(mine, { labels: ['cairn'] }))!;
    const theirs = randomBytes(50_000);
    const colleague = { uid: NOBODY, groups: [USERS_GID] };
    const results = await tarn(
      { kind: 'disk', root },
      [{ op: 'read', key }, { op: 'write', data: b64(mine), labels: ['tarn'] }, { op: 'write', data: b64(theirs), labels: ['tarn'] }],
      colleague,
    );
    expect(fromB64(results[0]).equals(mine)).toBe(true);
    const theirKey = results[2] as string;
    expect(theirKey).toBe(sha(theirs));
    expect((await storage.readBytes(theirKey))!.equals(theirs)).toBe(true);
    const labels = new Map<string, string[] | null>();
    for await (const entry of storage.contents()) labels.set(entry.key, entry.meta.labels);
    expect(labels.get(key)!.sort()).toEqual(['cairn', 'tarn']);
    expect(labels.get(theirKey)).toEqual(['tarn']);
    // and cairn labels what the colleague wrote, then the colleague reads the labels back
    await storage.write(theirs, { labels: ['cairn'] });
    expect(await tarn({ kind: 'disk', root }, [{ op: 'labels', key: theirKey }], colleague)).toEqual([['cairn', 'tarn']]);
    // cairn's marks and labels have tarn's mode: the colleague's tarn touched and relabelled them
    expect(statSync(markOf(root, key)).mode & 0o777).toBe(0o777);
    await storage.close();
  });
});

describe('tarn’s size tool (RedisSize in config.yml)', () => {
  it('cairn and tarn keep one byte count: writes add to it, deletes take from it, max_size is checked against it', async () => {
    const root = lakePath();
    mkdirSync(root);
    writeFileSync(
      join(root, 'config.yml'),
      `labels: JsonLabels\nlevels:\n- 1\n- -1\nmax_size: 100000\nsize:\n  args:\n  - 127.0.0.1\n  - ${redis.port}\n  kwargs:\n    prefix: interop-lake\n  name: RedisSize\nusage: StatUsage\n`,
    );
    const counter = new Redis(redis.port, '127.0.0.1');
    const count = async () => Number((await counter.get('interop-lake.S')) ?? 0);
    try {
      const fromTarn = randomBytes(30_000);
      const [tarnKey] = (await tarn({ kind: 'disk', root }, [{ op: 'write', data: b64(fromTarn) }])) as string[];
      expect(await count()).toBe(30_000);
      const disk = new Disk(root);
      const storage = new HashKeyStorage(disk, { error: false });
      const small = randomBytes(1000);
      const large = randomBytes(60_000);
      const smallKey = (await storage.write(small))!;
      const largeKey = (await storage.write(large))!;
      expect(await count()).toBe(91_000);
      await storage.write(small); // already there: not counted twice
      expect(await count()).toBe(91_000);
      // over max_size by the shared count (91,000 + 20,000 > 100,000): declined
      expect(await storage.write(randomBytes(20_000))).toBeNull();
      expect(await disk.delete(largeKey)).toBe(true);
      expect(await count()).toBe(31_000);
      expect(await tarn({ kind: 'disk', root }, [{ op: 'delete', key: smallKey }])).toEqual([true]);
      expect(await count()).toBe(30_000);
      expect((await storage.readBytes(tarnKey!))!.equals(fromTarn)).toBe(true);
      await storage.close();
    } finally {
      await counter.quit();
    }
  });
});

import { chmodSync, existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, Disk, type Location } from '../../src/index.js';
import { bytesSource, locationConformance, sha256, streamSource, expectStored } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

/** Overwrites a blob in place (it is read-only, so make it writable first), as bit rot would. */
function corruptBlob(location: Location, key: string): Promise<void> {
  const file = (location as Disk).pathOf(key);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[0] = bytes[0]! ^ 0xff;
  writeFileSync(file, bytes);
  return Promise.resolve();
}

locationConformance({ name: 'Disk', create: () => new Disk(tempDir()), corrupt: corruptBlob });
locationConformance({
  name: 'Disk (async small I/O, no fsync)',
  create: () => new Disk(tempDir(), { syncSmallIo: false, fsync: false }),
  corrupt: corruptBlob,
});

describe('Disk layout', () => {
  it('creates a tarn config.yml and stores blobs at ab/cdef… as read-only files', async () => {
    const root = tempDir();
    const disk = new Disk(root);
    const config = readFileSync(join(root, 'config.yml'), 'utf8');
    expect(config).toMatch(/levels:\s*\n\s*- 1\s*\n\s*- -1/);
    const bytes = randomBytes(1000);
    const key = sha256(bytes);
    await expectStored(disk.write(key, bytesSource(bytes)), key);
    const file = join(root, key.slice(0, 2), key.slice(2));
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(statSync(file).mode & 0o222).toBe(0);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });

  it('honours the levels of an existing config and refuses a mismatching levels option', async () => {
    const root = tempDir();
    new Disk(root, { levels: [2, -1] });
    const disk = new Disk(root);
    expect(disk.levels).toEqual([2, -1]);
    const bytes = randomBytes(10);
    const key = sha256(bytes);
    await disk.write(key, bytesSource(bytes));
    expect(existsSync(join(root, key.slice(0, 4), key.slice(4)))).toBe(true);
    expect(() => new Disk(root, { levels: [1, -1] })).toThrow(ConfigError);
  });

  it('rejects a config it cannot honour with ConfigError', () => {
    const root = tempDir();
    writeFileSync(join(root, 'config.yml'), 'levels: [1, 2]\n');
    expect(() => new Disk(root)).toThrow(/must add up to 32/);
    writeFileSync(join(root, 'config.yml'), 'hash: blake2b\n');
    expect(() => new Disk(root)).toThrow(ConfigError);
    writeFileSync(join(root, 'config.yml'), 'levels: [1, -1\n');
    expect(() => new Disk(root)).toThrow(/not valid YAML/);
  });

  it('moves a large copy into place without leaving temp files, verifying an unverified stream', async () => {
    const root = tempDir();
    const disk = new Disk(root);
    const bytes = randomBytes(2 * 1024 * 1024 + 5);
    const key = sha256(bytes);
    await expectStored(disk.write(key, streamSource(bytes, false)), key);
    expect(readFileSync(disk.pathOf(key)).equals(bytes)).toBe(true);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });

  it('replaces an existing blob whose bytes no longer match its key', async () => {
    const disk = new Disk(tempDir());
    for (const size of [1000, 2 * 1024 * 1024]) {
      const bytes = randomBytes(size);
      const key = sha256(bytes);
      await disk.write(key, bytesSource(bytes));
      await corruptBlob(disk, key);
      await expectStored(disk.write(key, bytesSource(bytes)), key);
      expect(readFileSync(disk.pathOf(key)).equals(bytes)).toBe(true);
    }
  });
});

describe('Disk limits', () => {
  it('declines writes over maxSize, counting what the lake already holds', async () => {
    const root = tempDir();
    const first = new Disk(root, { maxSize: 10_000 });
    const a = randomBytes(6000);
    await expectStored(first.write(sha256(a), bytesSource(a)), sha256(a));
    // a new instance finds the 6000 bytes already there
    const second = new Disk(root, { maxSize: '10KB' });
    const b = randomBytes(6000);
    expect(await second.write(sha256(b), bytesSource(b))).toBeNull();
    const c = randomBytes(3000);
    await expectStored(second.write(sha256(c), bytesSource(c)), sha256(c));
    expect(await second.usage()).toBe(9000);
    await second.delete(sha256(a));
    expect(await second.usage()).toBe(3000);
    await expectStored(second.write(sha256(b), bytesSource(b)), sha256(b));
  });

  it('declines writes when the filesystem is fuller than maxUsage or freer than minFree allows', async () => {
    const bytes = randomBytes(100);
    const full = new Disk(tempDir(), { maxUsage: 0 });
    expect(await full.write(sha256(bytes), bytesSource(bytes))).toBeNull();
    const needsPetabyte = new Disk(tempDir(), { minFree: '1PB' });
    expect(await needsPetabyte.write(sha256(bytes), bytesSource(bytes))).toBeNull();
    const roomy = new Disk(tempDir(), { maxUsage: 1, minFree: '1MB' });
    await expectStored(roomy.write(sha256(bytes), bytesSource(bytes)), sha256(bytes));
  });

  it('reports bad limits as ConfigError', () => {
    expect(() => new Disk(tempDir(), { maxSize: '12 parsecs' })).toThrow(ConfigError);
    expect(() => new Disk(tempDir(), { maxUsage: 1.5 })).toThrow(ConfigError);
  });
});

describe('Disk last use', () => {
  const markOf = (root: string, key: string) => join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2));
  const old = new Date('2020-01-01T00:00:00Z');

  it('a read refreshes the key’s last-used mark in the background, done by close()', async () => {
    const root = tempDir();
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await new Disk(root).write(key, bytesSource(bytes));
    const mark = markOf(root, key);
    utimesSync(mark, old, old);
    const disk = new Disk(root);
    expect((await disk.readBytes(key))!.equals(bytes)).toBe(true);
    await disk.close();
    expect(statSync(mark).mtime.getTime()).toBeGreaterThan(Date.now() - 60_000);
    // within touchInterval a second read leaves the mark alone
    utimesSync(mark, old, old);
    await disk.read(key);
    await disk.close();
    expect(statSync(mark).mtime.getTime()).toBe(old.getTime());
  });

  it('has() and a read that is not a use (verify, migrate) leave the mark where it was; a plain read moves it', async () => {
    const root = tempDir();
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await new Disk(root).write(key, bytesSource(bytes));
    const mark = markOf(root, key);
    utimesSync(mark, old, old);
    const disk = new Disk(root);
    expect(await disk.has(key)).toBe(true);
    expect(await disk.has(sha256(Buffer.from('never written')))).toBe(false);
    expect(await (await disk.read(key, { use: false }))!.bytes()).toEqual(bytes);
    await disk.close();
    expect(statSync(mark).mtime.getTime()).toBe(old.getTime());
    await disk.read(key);
    await disk.close();
    expect(statSync(mark).mtime.getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('markOnWrite: false: a new blob’s mtime is its last use, and its first read creates the mark', async () => {
    const root = tempDir();
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    const writer = new Disk(root, { markOnWrite: false });
    await writer.write(key, bytesSource(bytes));
    expect(existsSync(markOf(root, key))).toBe(false);
    utimesSync(writer.pathOf(key), old, old);
    expect(await writer.lastUsed(key)).toEqual(old);
    for await (const { meta } of writer.contents()) expect(meta.lastUsed).toEqual(old);
    const reader = new Disk(root);
    await reader.readBytes(key);
    await reader.close();
    expect(statSync(markOf(root, key)).mtime.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await reader.lastUsed(key))!.getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it.runIf(process.getuid?.() === 0)('marks made by the worker thread get the lake’s group and modes', async () => {
    const root = tempDir();
    const options = { group: 100, groupWritable: true, markOnWrite: false };
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await new Disk(root, options).write(key, bytesSource(bytes));
    const reader = new Disk(root, options);
    await reader.readBytes(key);
    await reader.close();
    const mark = statSync(markOf(root, key));
    // tarn's mode for marks and their folders (0777: any user's tarn touches them), setgid in a shared lake
    expect([mark.gid, mark.mode & 0o777]).toEqual([100, 0o777]);
    const folder = statSync(join(root, 'tools', 'usage', key.slice(0, 2)));
    expect([folder.gid, folder.mode & 0o2777]).toEqual([100, 0o2777]);
  });

  it('markOnWrite: false: writing a stored value again is a use, and so is writing over an old mark', async () => {
    const root = tempDir();
    const disk = new Disk(root, { markOnWrite: false });
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await disk.write(key, bytesSource(bytes));
    utimesSync(disk.pathOf(key), old, old);
    await expectStored(disk.write(key, bytesSource(bytes)), key);
    expect((await disk.lastUsed(key))!.getTime()).toBeGreaterThan(Date.now() - 60_000);
    for await (const { meta } of disk.contents()) expect(meta.lastUsed!.getTime()).toBeGreaterThan(Date.now() - 60_000);
    // the blob moved aside (gc, verify) leaves its old mark: a new blob of the key refreshes it
    utimesSync(markOf(root, key), old, old);
    expect(await disk.quarantine(key)).not.toBeNull();
    await disk.write(key, bytesSource(bytes));
    expect((await disk.lastUsed(key))!.getTime()).toBeGreaterThan(Date.now() - 60_000);
  });
});

import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, Fanout, Level, Levels, type Location, Memory, Small, type SkipEvent, StorageCorruption } from '../../src/index.js';
import { bytesSource, locationConformance, sha256, streamSource, expectStored } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

locationConformance({ name: 'Levels(Memory, Disk)', create: () => new Levels(new Memory(), new Disk(tempDir())) });
locationConformance({ name: 'Fanout(Disk, Disk)', create: () => new Fanout(tempDir(), tempDir()) });
locationConformance({ name: 'Small(Memory)', create: () => new Small(new Memory(), { maxSize: 1_000_000 }), maxValueSize: 1_000_000 });
locationConformance({
  name: 'Levels(Level(Disk, {write: false}), Disk)',
  create: () => new Levels(new Level(new Disk(tempDir()), { write: false }), tempDir()),
});

function corrupt(disk: Disk, key: string): void {
  const file = disk.pathOf(key);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
  writeFileSync(file, bytes);
}

describe('Fanout', () => {
  it('writes to the second location once the first is full, and reads from both', async () => {
    const first = new Disk(tempDir(), { maxSize: 2500 });
    const second = new Disk(tempDir());
    const fanout = new Fanout(first, second);
    const values = [randomBytes(1000), randomBytes(1000), randomBytes(1000)];
    for (const value of values) await expectStored(fanout.write(sha256(value), bytesSource(value)), sha256(value));
    expect(await first.read(sha256(values[2]!))).toBeNull();
    expect(await second.read(sha256(values[2]!))).not.toBeNull();
    for (const value of values) expect((await fanout.readBytes(sha256(value)))!.equals(value)).toBe(true);
  });

  it('declines when every location declines', async () => {
    const fanout = new Fanout(new Disk(tempDir(), { maxSize: 10 }), new Small(new Memory(), { maxSize: 10 }));
    const bytes = randomBytes(100);
    expect(await fanout.write(sha256(bytes), bytesSource(bytes))).toBeNull();
  });

  it('reports touch true when any location holds the key, not only the last one', async () => {
    const first = new Memory();
    const fanout = new Fanout(first, new Memory());
    const bytes = randomBytes(10);
    await first.write(sha256(bytes), bytesSource(bytes));
    expect(await fanout.touch(sha256(bytes))).toBe(true);
  });
});

describe('Levels', () => {
  it('copies a value read from a lower level into the upper levels, with its labels', async () => {
    const top = new Memory();
    const middle = new Disk(tempDir());
    const bottom = new Disk(tempDir());
    const levels = new Levels(top, middle, bottom);
    const bytes = randomBytes(5000);
    const key = sha256(bytes);
    await bottom.write(key, bytesSource(bytes), ['raw']);
    const value = await levels.read(key);
    expect((await value!.bytes()).equals(bytes)).toBe(true);
    expect((await top.readBytes(key))!.equals(bytes)).toBe(true);
    expect((await middle.readBytes(key))!.equals(bytes)).toBe(true);
    expect(await (await middle.read(key))!.labels()).toEqual(['raw']);
  });

  it('does not copy into levels with replicate: false, and writes only to levels with write: true', async () => {
    const cache = new Memory();
    const store = new Disk(tempDir());
    const levels = new Levels(new Level(cache, { replicate: false, write: false }), store);
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await expectStored(levels.write(key, bytesSource(bytes)), key);
    expect(await cache.read(key)).toBeNull();
    await levels.read(key);
    expect(await cache.read(key)).toBeNull();
  });

  it('refuses a corrupted lower copy with StorageCorruption and promotes nothing', async () => {
    const top = new Memory();
    const topDisk = new Disk(tempDir());
    const bottom = new Disk(tempDir());
    for (const size of [3000, 3 * 1024 * 1024]) {
      const bytes = randomBytes(size);
      const key = sha256(bytes);
      await bottom.write(key, bytesSource(bytes));
      corrupt(bottom, key);
      await expect(new Levels(top, bottom).read(key)).rejects.toBeInstanceOf(StorageCorruption);
      await expect(new Levels(topDisk, bottom).read(key)).rejects.toBeInstanceOf(StorageCorruption);
      await expect(new Levels(topDisk, bottom).readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
      expect(await top.read(key)).toBeNull();
      expect(await topDisk.read(key)).toBeNull();
    }
  });

  it('with skipFailing, passes over a corrupted copy to a good one further down, and promotes the good one', async () => {
    const top = new Memory();
    const corrupted = new Disk(tempDir());
    const good = new Disk(tempDir());
    const bytes = randomBytes(4000);
    const key = sha256(bytes);
    await corrupted.write(key, bytesSource(bytes));
    await good.write(key, bytesSource(bytes));
    corrupt(corrupted, key);
    const levels = new Levels(top, new Level(corrupted, { name: 'corrupted' }), good, { skipFailing: true });
    const skips: SkipEvent[] = [];
    levels.on('skip', (event: SkipEvent) => skips.push(event));
    expect((await (await levels.read(key))!.bytes()).equals(bytes)).toBe(true);
    expect(skips.map((skip) => [skip.level, skip.operation])).toEqual([['corrupted', 'read']]);
    expect(skips[0]!.error).toBeInstanceOf(StorageCorruption);
    expect((await top.readBytes(key))!.equals(bytes)).toBe(true);
    // the good copy was also written over the corrupted one on its way up: the level healed
    expect((await corrupted.readBytes(key))!.equals(bytes)).toBe(true);
  });

  it('with skipFailing, read() passes over a corrupted copy on top to the good one below, as readBytes() does', async () => {
    for (const size of [4000, 3 * 1024 * 1024]) {
      const corrupted = new Disk(tempDir());
      const good = new Disk(tempDir());
      const bytes = randomBytes(size);
      const key = sha256(bytes);
      await corrupted.write(key, bytesSource(bytes));
      await good.write(key, bytesSource(bytes));
      corrupt(corrupted, key);
      const levels = new Levels(new Level(corrupted, { name: 'top' }), good, { skipFailing: true });
      const skips: SkipEvent[] = [];
      levels.on('skip', (event: SkipEvent) => skips.push(event));
      const value = (await levels.read(key))!;
      const streamed: Buffer[] = [];
      for await (const chunk of value.stream()) streamed.push(chunk as Buffer);
      expect(Buffer.concat(streamed).equals(bytes)).toBe(true);
      expect((await value.bytes()).equals(bytes)).toBe(true);
      expect(skips.map((skip) => [skip.level, skip.operation])).toEqual([['top', 'read']]);
      expect(skips[0]!.error).toBeInstanceOf(StorageCorruption);
      // the good copy was written over the corrupted one on its way up
      expect((await corrupted.readBytes(key))!.equals(bytes)).toBe(true);
      // without skipFailing the corruption is an error, never wrong bytes
      corrupt(corrupted, key);
      const strict = (await new Levels(corrupted, good).read(key))!;
      await expect(strict.bytes()).rejects.toBeInstanceOf(StorageCorruption);
    }
  });

  it('with skipFailing, passes over a failing level and reports it through the skip event', async () => {
    const broken: Location = Object.assign(new Memory(), {
      name: 'Broken',
      read: async () => {
        throw new Error('disk on fire');
      },
    });
    const store = new Memory();
    const bytes = randomBytes(10);
    const key = sha256(bytes);
    await store.write(key, bytesSource(bytes));
    await expect(new Levels(broken, store).read(key)).rejects.toThrow('disk on fire');
    const levels = new Levels(broken, store, { skipFailing: true });
    const skips: SkipEvent[] = [];
    levels.on('skip', (event: SkipEvent) => skips.push(event));
    expect((await (await levels.read(key))!.bytes()).equals(bytes)).toBe(true);
    // the broken level failed twice: when it was read, and when the found value was copied into it
    expect(skips.map((skip) => [skip.level, skip.operation, skip.key])).toEqual([
      ['Broken', 'read', key],
      ['Broken', 'replicate', key],
    ]);
    expect((skips[0]!.error as Error).message).toBe('disk on fire');
  });

  it('never hands a stream to two writers: a level that declines after reading part of it leaves the next one a whole copy', async () => {
    const small = new Small(new Memory(), { maxSize: 100_000 });
    const disk = new Disk(tempDir());
    const levels = new Levels(small, disk);
    const bytes = randomBytes(1_000_000);
    const key = sha256(bytes);
    await expectStored(levels.write(key, streamSource(bytes, false, 10_000)), key);
    expect(await small.read(key)).toBeNull();
    expect((await disk.readBytes(key))!.equals(bytes)).toBe(true);
  });
});

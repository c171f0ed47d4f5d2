import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  Disk,
  Fanout,
  HashKeyStorage,
  Level,
  Levels,
  type Location,
  Memory,
  Small,
  type SkipEvent,
  StorageCorruption,
  type Value,
  WriteError,
} from '../../src/index.js';
import { RedisLocation } from '../../src/entries/redis.js';
import { S3 } from '../../src/entries/s3.js';
import { hasKey } from '../../src/locations/interface.js';
import { bytesSource, locationConformance, sha256, streamSource, expectStored } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { type RedisServer, startRedis } from '../servers/redis.js';
import { S3_CREDENTIALS, type S3Server, startS3 } from '../servers/s3.js';

afterAll(cleanup);

locationConformance({ name: 'Levels(Memory, Disk)', create: () => new Levels(new Memory(), new Disk(tempDir())) });
locationConformance({ name: 'Fanout(Disk, Disk)', create: () => new Fanout(tempDir(), tempDir()) });
locationConformance({ name: 'Small(Memory)', create: () => new Small(new Memory(), { maxSize: 1_000_000 }), maxValueSize: 1_000_000 });
locationConformance({
  name: 'Levels(Level(Disk, {write: false}), Disk)',
  create: () => new Levels(new Level(new Disk(tempDir()), { write: false }), tempDir()),
});
locationConformance({
  name: 'Levels(Disk, Level(Disk, {writeThrough: true}))',
  create: () => new Levels(new Disk(tempDir()), new Level(new Disk(tempDir()), { writeThrough: true })),
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

  it('answers readBatch with every key once, asking each location for the keys still missing', async () => {
    const first = recorded(new Memory(), 'first');
    const second = recorded(new Disk(tempDir()), 'second');
    const a = await stored(first.location, 'in the first');
    const b = await stored(second.location, 'in the second');
    const missing = sha256(Buffer.from('in neither'));
    const answers = await batch(new Fanout(first.location, second.location), [b, a, b, missing, a]);
    expect(new Map(answers)).toEqual(new Map([[a, 'in the first'], [b, 'in the second'], [missing, null]]));
    expect(answers.length).toBe(3);
    expect(first.calls.readBatch).toEqual([[b, a, missing]]);
    expect(second.calls.readBatch).toEqual([[b, missing]]);
    // the default readBatch (one read after another) answers a key asked twice once too
    expect((await batch(first.location, [a, a])).length).toBe(1);
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
    // the broken level failed when it was read; the copy into it is its write's answer, not a read back
    expect(skips.map((skip) => [skip.level, skip.operation, skip.key])).toEqual([['Broken', 'read', key]]);
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

/** Every call a composition makes of a location: what it read, one by one and in batches, and what it asked has() of. */
interface Calls {
  read: string[];
  readBytes: string[];
  readBatch: string[][];
  has: string[];
}

/** `inner` under another name, recording the reads and has() calls made of it. */
function recorded(inner: Location, name: string): { location: Location; calls: Calls } {
  const calls: Calls = { read: [], readBytes: [], readBatch: [], has: [] };
  const location: Location = {
    name,
    read: (key, options) => {
      calls.read.push(key);
      return inner.read(key, options);
    },
    readBytes: (key) => {
      calls.readBytes.push(key);
      return inner.readBytes!(key);
    },
    readBatch: (keys) => {
      const list = [...keys];
      calls.readBatch.push(list);
      return inner.readBatch(list);
    },
    has: (key) => {
      calls.has.push(key);
      return hasKey(inner, key);
    },
    write: (key, source, labels) => inner.write(key, source, labels),
    delete: (key) => inner.delete(key),
    touch: (key) => inner.touch(key),
    contents: () => inner.contents(),
  };
  return { location, calls };
}

async function stored(location: Location, text: string, labels?: string[]): Promise<string> {
  const bytes = Buffer.from(text);
  await expectStored(location.write(sha256(bytes), bytesSource(bytes), labels), sha256(bytes), bytes);
  return sha256(bytes);
}

async function batch(location: Location, keys: string[]): Promise<[string, string | null][]> {
  const answers: [string, string | null][] = [];
  for await (const [key, value] of location.readBatch(keys)) answers.push([key, value === null ? null : (await value.bytes()).toString()]);
  return answers;
}

describe('Levels: the value a write returns', () => {
  it('copies a value up without reading it back: read() returns what the upper level stored', async () => {
    const top = recorded(new Memory(), 'top');
    const bottom = new Disk(tempDir());
    const key = await stored(bottom, 'found below', ['raw']);
    const levels = new Levels(top.location, bottom);
    const value = (await levels.read(key))!;
    // the search asked the top level once; the copy into it was not read back
    expect(top.calls.read).toEqual([key]);
    expect(value.path).toBeNull(); // the Memory copy, not the Disk file
    expect((await value.bytes()).toString()).toBe('found below');
    expect(await value.labels()).toEqual(['raw']);
    expect(top.calls.read).toEqual([key]);
  });

  it('readBytes() fetches a value found below once (bytes and labels from one read) and copies it up', async () => {
    const top = new Memory();
    const bottom = recorded(new Memory(), 'bottom');
    const key = await stored(bottom.location, 'once', ['x']);
    const levels = new Levels(top, bottom.location);
    expect((await levels.readBytes(key))!.toString()).toBe('once');
    expect(bottom.calls.read).toEqual([key]);
    expect(bottom.calls.readBytes).toEqual([]);
    expect(await (await top.read(key))!.labels()).toEqual(['x']);
    // on the top level, with nothing above to copy into, the fast path alone
    const alone = recorded(new Memory(), 'alone');
    const onTop = await stored(alone.location, 'on top');
    expect((await new Levels(alone.location, new Memory()).readBytes(onTop))!.toString()).toBe('on top');
    expect(alone.calls.readBytes).toEqual([onTop]);
    expect(alone.calls.read).toEqual([]);
  });
});

describe('Levels.readBatch', () => {
  it('asks each level once for the keys still missing, answers in the order asked, once per key, and copies hits up', async () => {
    const a = recorded(new Memory(), 'a');
    const b = recorded(new Memory(), 'b');
    const c = recorded(new Disk(tempDir()), 'c');
    const k1 = await stored(a.location, 'one');
    const k2 = await stored(b.location, 'two', ['l2']);
    const k3 = await stored(b.location, 'three');
    const k4 = await stored(c.location, 'four');
    const k5 = sha256(Buffer.from('nowhere'));
    const levels = new Levels(a.location, b.location, c.location);
    expect(await batch(levels, [k4, k1, k5, k2, k1, k3])).toEqual([
      [k4, 'four'],
      [k1, 'one'],
      [k5, null],
      [k2, 'two'],
      [k3, 'three'],
    ]);
    expect(a.calls.readBatch).toEqual([[k4, k1, k5, k2, k3]]);
    expect(b.calls.readBatch).toEqual([[k4, k5, k2, k3]]);
    expect(c.calls.readBatch).toEqual([[k4, k5]]);
    for (const { calls } of [a, b, c]) expect([calls.read, calls.readBytes]).toEqual([[], []]);
    // copied up as read() copies: into every upper level, with the labels
    for (const key of [k2, k3, k4]) expect(await a.location.read(key)).not.toBeNull();
    expect(await b.location.read(k4)).not.toBeNull();
    expect(await (await a.location.read(k2))!.labels()).toEqual(['l2']);
    expect(levels.stats().map(({ hits, misses }) => [hits, misses])).toEqual([
      [1, 4],
      [2, 2],
      [1, 1],
    ]);
  });

  it('asks batchSize keys at a time, still in order', async () => {
    const top = recorded(new Memory(), 'top');
    const keys = [await stored(top.location, 'a'), await stored(top.location, 'b'), await stored(top.location, 'c')];
    const levels = new Levels(top.location, new Memory(), { batchSize: 2 });
    expect(await batch(levels, keys)).toEqual([
      [keys[0], 'a'],
      [keys[1], 'b'],
      [keys[2], 'c'],
    ]);
    expect(top.calls.readBatch).toEqual([[keys[0], keys[1]], [keys[2]]]);
    expect(() => new Levels(new Memory(), { batchSize: 0 })).toThrow(ConfigError);
  });

  it('with skipFailing, asks the level below for the keys a level failed part way through; without, the failure is thrown', async () => {
    const flaky = new Memory();
    const store = new Memory();
    const keys = [await stored(flaky, 'first'), await stored(store, 'second'), await stored(store, 'third')];
    await stored(store, 'first');
    const failing: Location = Object.assign(Object.create(flaky) as Memory, {
      name: 'Flaky',
      async *readBatch(asked: Iterable<string>) {
        const [first] = [...asked];
        yield [first!, await flaky.read(first!)] as [string, Value | null];
        throw new Error('connection cut');
      },
    });
    await expect(batch(new Levels(failing, store), keys)).rejects.toThrow('connection cut');
    const levels = new Levels(failing, store, { skipFailing: true });
    const skips: SkipEvent[] = [];
    levels.on('skip', (event: SkipEvent) => skips.push(event));
    expect(await batch(levels, keys)).toEqual([
      [keys[0], 'first'],
      [keys[1], 'second'],
      [keys[2], 'third'],
    ]);
    expect(skips.map((skip) => [skip.level, skip.operation, skip.key, (skip.error as Error).message])).toEqual([['Flaky', 'read', null, 'connection cut']]);
  });

  it('with skipFailing, passes over a corrupted copy to the good one below and heals the level', async () => {
    const corrupted = new Disk(tempDir());
    const good = new Disk(tempDir());
    const bytes = randomBytes(4000);
    const key = sha256(bytes);
    await corrupted.write(key, bytesSource(bytes));
    await good.write(key, bytesSource(bytes));
    corrupt(corrupted, key);
    const levels = new Levels(new Level(corrupted, { name: 'corrupted' }), good, { skipFailing: true });
    const skips: SkipEvent[] = [];
    levels.on('skip', (event: SkipEvent) => skips.push(event));
    const answers: [string, Buffer | null][] = [];
    for await (const [found, value] of levels.readBatch([key])) answers.push([found, value && (await value.bytes())]);
    expect(answers.length).toBe(1);
    expect(answers[0]![1]!.equals(bytes)).toBe(true);
    expect(skips.map((skip) => [skip.level, skip.operation])).toEqual([['corrupted', 'read']]);
    expect((await corrupted.readBytes(key))!.equals(bytes)).toBe(true);
  });
});

describe('has() through Levels, Small and Fanout', () => {
  it('asks has() of the locations, reads nothing and copies nothing up', async () => {
    const upper = recorded(new Memory(), 'upper');
    const lower = recorded(new Memory(), 'lower');
    const key = await stored(lower.location, 'held below');
    const missing = sha256(Buffer.from('held nowhere'));
    const compositions = [new Levels(upper.location, lower.location), new Fanout(upper.location, lower.location), new Small(lower.location, { maxSize: 100 })];
    for (const composition of compositions) {
      expect(await composition.has(key)).toBe(true);
      expect(await composition.has(missing)).toBe(false);
    }
    expect(upper.calls.has).toEqual([key, missing, key, missing]);
    expect(lower.calls.has).toEqual([key, missing, key, missing, key, missing]);
    for (const { calls } of [upper, lower]) expect([calls.read, calls.readBytes, calls.readBatch]).toEqual([[], [], []]);
    expect(await upper.location.has!(key)).toBe(false);
  });

  it('with skipFailing, Levels passes over a level whose has() fails', async () => {
    const broken: Location = Object.assign(new Memory(), {
      name: 'Broken',
      has: async () => {
        throw new Error('unreachable');
      },
    });
    const store = new Memory();
    const key = await stored(store, 'kept');
    await expect(new Levels(broken, store).has(key)).rejects.toThrow('unreachable');
    const levels = new Levels(broken, store, { skipFailing: true });
    const skips: SkipEvent[] = [];
    levels.on('skip', (event: SkipEvent) => skips.push(event));
    expect(await levels.has(key)).toBe(true);
    expect(skips.map((skip) => [skip.level, skip.operation, skip.key])).toEqual([['Broken', 'has', key]]);
  });
});

describe('Levels over Redis', () => {
  let redis: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  afterAll(async () => {
    admin.disconnect();
    await redis.destroy();
  });

  /** The commands Redis received (not those its scripts ran) while `work` ran. */
  async function commandsDuring(work: () => Promise<void>): Promise<string[]> {
    const monitor = await admin.monitor();
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') seen.push(args[0]!.toLowerCase());
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await work();
    await new Promise((resolve) => setTimeout(resolve, 200));
    monitor.disconnect();
    return seen;
  }

  it('fetches a value found in Redis once (bytes and labels in one HGETALL) and batches a readBatch into HGETALLs', async () => {
    const location = new RedisLocation(redis.url, { prefix: 'levels:' });
    const values = Array.from({ length: 20 }, () => randomBytes(300));
    const keys = values.map((bytes) => sha256(bytes));
    for (const bytes of values) await location.write(sha256(bytes), bytesSource(bytes), ['r']);
    // each key's first read also sends its usage mark (once a minute): done here
    for await (const [, value] of location.readBatch(keys)) expect(value).not.toBeNull();
    try {
      const top = new Memory();
      const levels = new Levels(top, location);
      expect(await commandsDuring(async () => void expect((await levels.readBytes(keys[0]!))!.equals(values[0]!)).toBe(true))).toEqual(['hgetall']);
      expect(await (await top.read(keys[0]!))!.labels()).toEqual(['r']);
      const seen = await commandsDuring(async () => {
        const answers = await batch(new Levels(new Small(new Memory(), { maxSize: 10 }), location), keys);
        expect(answers.map(([key]) => key)).toEqual(keys);
      });
      expect(seen).toEqual(keys.map(() => 'hgetall'));
    } finally {
      await location.close();
    }
  });
});

describe('Levels: two machines sharing one remote level', () => {
  let s3: S3Server;
  let lakes = 0;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3.destroy();
  });

  /** A child process standing for a machine: its own local Disk above the shared S3 bucket. */
  function machine(prefix: string, writeThrough: boolean) {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'levels-machine.ts'), tempDir(), s3.endpoint, s3.bucket, prefix, String(writeThrough)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const ask = async <T>(command: object): Promise<T> => {
      child.stdin!.write(JSON.stringify(command) + '\n');
      const line = await lines.next();
      if (line.done) throw new Error(`the machine exited with ${await exited}`);
      return JSON.parse(line.value) as T;
    };
    return {
      write: async (text: string) => (await ask<{ key: string }>({ write: text })).key,
      read: (key: string) => ask<{ text: string | null; local: boolean }>({ read: key }),
      exit: async () => {
        child.stdin!.end(JSON.stringify({ exit: true }) + '\n');
        return exited;
      },
    };
  }

  it('with writeThrough on the shared level, what one machine writes the other reads (and keeps locally)', async () => {
    const prefix = `shared${++lakes}`;
    const [a, b] = [machine(prefix, true), machine(prefix, true)];
    try {
      const fromA = await a.write('written on machine A');
      expect(await b.read(fromA)).toEqual({ text: 'written on machine A', local: true });
      const fromB = await b.write('written on machine B');
      expect(await a.read(fromB)).toEqual({ text: 'written on machine B', local: true });
    } finally {
      expect([await a.exit(), await b.exit()]).toEqual([0, 0]);
    }
    // the bucket holds both, with the writers' labels
    const shared = new S3(s3.endpoint, s3.bucket, { credentials: S3_CREDENTIALS, prefix });
    const listed = new Map<string, string[] | null>();
    for await (const entry of shared.contents()) listed.set(entry.key, entry.meta.labels);
    expect([...listed.values()]).toEqual([['machine'], ['machine']]);
    await shared.close();
  });

  it("without it (tarn's semantics), a write stays on the machine's local level: the other machine does not see it", async () => {
    const prefix = `shared${++lakes}`;
    const [a, b] = [machine(prefix, false), machine(prefix, false)];
    try {
      const fromA = await a.write('local to machine A');
      expect(await a.read(fromA)).toEqual({ text: 'local to machine A', local: true });
      expect(await b.read(fromA)).toEqual({ text: null, local: false });
    } finally {
      expect([await a.exit(), await b.exit()]).toEqual([0, 0]);
    }
  });
});

describe('Level writeThrough', () => {
  it('stores a write in the upper level and in the write-through level, a staged file as bytes', async () => {
    const local = new Disk(tempDir());
    const shared = new Disk(tempDir());
    const storage = new HashKeyStorage(new Levels(local, new Level(shared, { writeThrough: true })));
    // a file above 1 MiB is staged in the local Disk's temp folder, then linked into place there
    const file = join(tempDir(), 'input');
    const bytes = randomBytes(2_000_000);
    writeFileSync(file, bytes);
    const key = (await storage.write(file, { labels: ['both'] }))!;
    expect((await local.readBytes(key))!.equals(bytes)).toBe(true);
    expect((await shared.readBytes(key))!.equals(bytes)).toBe(true);
    expect(await (await shared.read(key))!.labels()).toEqual(['both']);
  });

  it('is a level option of config files too', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'cairn.config.yaml'), 'storage:\n  levels:\n    - local\n    - disk: shared\n      writeThrough: true\n');
    const storage = await HashKeyStorage.fromConfig(join(dir, 'cairn.config.yaml'));
    expect((storage.local as Levels).levels.map((level) => level.writeThrough)).toEqual([false, true]);
    const key = (await storage.write(Buffer.from('in both')))!;
    for (const folder of ['local', 'shared']) expect((await new Disk(join(dir, folder)).readBytes(key))!.toString()).toBe('in both');
    await storage.close();
  });

  it('declines the write (null, a WriteError through HashKeyStorage) when the write-through level declines', async () => {
    const local = new Disk(tempDir());
    const levels = new Levels(local, new Level(new Disk(tempDir(), { maxSize: 10 }), { writeThrough: true }));
    const bytes = randomBytes(100);
    expect(await levels.write(sha256(bytes), bytesSource(bytes))).toBeNull();
    await expect(new HashKeyStorage(levels).write(randomBytes(100))).rejects.toBeInstanceOf(WriteError);
    expect(() => new Level(new Memory(), { write: false, writeThrough: true })).toThrow(ConfigError);
  });

  it('with skipFailing, a failing write-through level is skipped and reported; without, the write fails', async () => {
    const broken: Location = Object.assign(new Memory(), {
      name: 'Broken',
      write: async () => {
        throw new Error('bucket gone');
      },
    });
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await expect(new Levels(new Memory(), new Level(broken, { writeThrough: true })).write(key, bytesSource(bytes))).rejects.toThrow('bucket gone');
    const levels = new Levels(new Memory(), new Level(broken, { writeThrough: true }), { skipFailing: true });
    const skips: SkipEvent[] = [];
    levels.on('skip', (event: SkipEvent) => skips.push(event));
    await expectStored(levels.write(key, bytesSource(bytes)), key, bytes);
    expect(skips.map((skip) => [skip.level, skip.operation, skip.key])).toEqual([['Broken', 'write', key]]);
  });
});

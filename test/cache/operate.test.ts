/**
 * Operating a cache: clear(), clearCache, reduceCache (LRU by bytes, count and age), the limits
 * option, and where the index lives for each kind of `where`.
 */
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { cacheUsage, clearCache, reduceCache, smartCache } from '../../src/cache/index.js';
import { indexFor } from '../../src/cache/index-for.js';
import { MemoryIndex } from '../../src/cache/index-memory.js';
import { ConfigError } from '../../src/errors.js';
import { Disk } from '../../src/locations/disk/disk.js';
import { Fanout } from '../../src/locations/compose/fanout.js';
import { Memory } from '../../src/locations/memory.js';
import { HashKeyStorage } from '../../src/storage/hash-key-storage.js';
import { TierKV } from '../../src/storage/tierkv/tierkv.js';
import { ResourceFilesystem, ResourceMemory } from '../../src/storage/tierkv/resources.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

/** Blob files in a cache folder's storage. */
function blobs(dir: string): string[] {
  const root = join(dir, 'storage');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((name) => /^[0-9a-f]{2}\/[0-9a-f]{62}$/.test(name));
}

/** A function that counts its runs and returns a 16 kB part of its own. */
function counted(dir: string, name: string, options = {}) {
  const runs = { count: 0 };
  const fn = smartCache(dir, { name, ...options })(async (x: number) => {
    runs.count++;
    return { x, data: new Float64Array(2000).fill(x + name.length * 1000) };
  });
  return { fn, runs };
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500 && !(await check()); i++) await sleep(20);
}

describe('clear', () => {
  it('cached.clear() removes that function\'s entries and parts, and nothing of another function', async () => {
    const dir = tempDir();
    const a = counted(dir, 'a');
    const bee = counted(dir, 'bee');
    for (const x of [1, 2, 3]) {
      await a.fn(x);
      await bee.fn(x);
    }
    expect(blobs(dir)).toHaveLength(6);
    const report = await a.fn.clear();
    expect(report.removed.map((entry) => entry.fn)).toEqual(['a', 'a', 'a']);
    expect(report.removedParts).toBe(3);
    expect(report.kept).toBe(3);
    expect(blobs(dir)).toHaveLength(3);
    expect((await a.fn(2)).data[0]).toBe(1002);
    expect(a.runs.count).toBe(4);
    expect((await bee.fn(2)).data[0]).toBe(3002);
    expect(bee.runs.count).toBe(3);
  });

  it('a part shared with another entry stays when one of them is cleared', async () => {
    const dir = tempDir();
    const same = new Float32Array(4096).fill(7);
    // different code (the name is not part of the key: equal code and arguments share an entry)
    const first = smartCache(dir, { name: 'first' })(async () => ({ same, n: 1 }));
    const second = smartCache(dir, { name: 'second' })(async () => ({ same, n: 2 }));
    await first();
    await second();
    expect(blobs(dir)).toHaveLength(1);
    expect((await first.clear()).removedParts).toBe(0);
    expect(blobs(dir)).toHaveLength(1);
    expect((await second()).same[4095]).toBe(7);
    expect(second.stats).toMatchObject({ hits: 1, misses: 1 });
  });

  it('clearCache empties the whole cache, parts included', async () => {
    const dir = tempDir();
    const a = counted(dir, 'a');
    const bee = counted(dir, 'bee');
    await a.fn(1);
    await bee.fn(1);
    const report = await clearCache(dir);
    expect(report.removed).toHaveLength(2);
    expect(report.kept).toBe(0);
    expect(blobs(dir)).toHaveLength(0);
    expect(await cacheUsage(dir)).toEqual([]);
    await a.fn(1);
    expect(a.runs.count).toBe(2);
  });
});

describe('reduceCache', () => {
  it('evicts the least recently used first (a hit counts as a use)', async () => {
    const dir = tempDir();
    const { fn, runs } = counted(dir, 'lru');
    for (const x of [1, 2, 3]) {
      await fn(x);
      await sleep(5);
    }
    await fn(1); // 1 is now the most recently used
    await sleep(5);
    const dry = await reduceCache(dir, { maxEntries: 2, dryRun: true });
    expect(dry.removed.map((entry) => entry.key)).toEqual([fn.key(2)]);
    expect(blobs(dir)).toHaveLength(3);
    const report = await reduceCache(dir, { maxEntries: 2 });
    expect(report.removed.map((entry) => entry.key)).toEqual([fn.key(2)]);
    expect(report).toMatchObject({ kept: 2, removedParts: 1 });
    expect(blobs(dir)).toHaveLength(2);
    const before = runs.count;
    await fn(1);
    await fn(3);
    expect(runs.count).toBe(before);
    await fn(2);
    expect(runs.count).toBe(before + 1);
  });

  it('by bytes and by age', async () => {
    const dir = tempDir();
    const { fn } = counted(dir, 'sized');
    for (const x of [1, 2, 3, 4]) {
      await fn(x);
      await sleep(5);
    }
    const [usage] = await cacheUsage(dir);
    expect(usage).toMatchObject({ fn: 'sized', entries: 4 });
    // each entry is its 16,000-byte part plus a small entry
    expect(usage!.bytes).toBeGreaterThan(64_000);
    const bySize = await reduceCache(dir, { maxBytes: 2.5 * 16_500 });
    expect(bySize.removed.map((entry) => entry.key)).toEqual([fn.key(1), fn.key(2)]);
    await sleep(1100);
    await fn(5);
    const byAge = await reduceCache(dir, { maxAge: '1s' });
    expect(byAge.removed.map((entry) => entry.key).sort()).toEqual([fn.key(3), fn.key(4)].sort());
    expect(byAge.kept).toBe(1);
  });

  it('bad limits are a ConfigError naming the option', async () => {
    await expect(reduceCache(tempDir(), { maxBytes: 'lots' })).rejects.toThrow(/maxBytes/);
    await expect(reduceCache(tempDir(), { maxEntries: -1 })).rejects.toThrow(ConfigError);
    expect(() => smartCache(tempDir(), { limits: { maxAge: 'soon' } })(async () => 1)).toThrow(/maxAge/);
  });

  it('the limits option keeps the cache under its limits as entries are added', async () => {
    const dir = tempDir();
    const { fn } = counted(dir, 'bounded', { limits: { maxEntries: 3 } });
    for (let x = 0; x < 10; x++) await fn(x);
    // throttled: applied at the first write, then at most once a second
    await sleep(1100);
    await fn(10);
    // eviction runs in the background: entries go first, then their parts
    await until(async () => (await cacheUsage(dir))[0]!.entries <= 3 && blobs(dir).length <= 3);
    expect((await cacheUsage(dir))[0]!.entries).toBe(3);
    expect(blobs(dir)).toHaveLength(3);
    const kept = await fn(10);
    expect(kept.x).toBe(10);
    expect(fn.stats.hits).toBe(1);
  });
});

describe('where the index lives', () => {
  it('a HashKeyStorage on Memory gets a memory index; an EntryIndex object can be passed', async () => {
    let runs = 0;
    const body = async (x: number) => {
      runs++;
      return new Uint8Array(8192).fill(x);
    };
    const onMemory = smartCache(new HashKeyStorage(new Memory()))(body);
    expect((await onMemory(3))[8191]).toBe(3);
    expect((await onMemory(3))[0]).toBe(3);
    const index = new MemoryIndex();
    const custom = smartCache({ index, storage: new Memory() })(body);
    await custom(4);
    expect((await custom(4))[0]).toBe(4);
    expect(runs).toBe(2);
    const listed = [];
    for await (const entry of index.entries()) if (entry.args !== '') listed.push(entry);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ key: custom.key(4), fn: 'body', parts: [expect.stringMatching(/^[0-9a-f]{64}$/)] });
  });

  it('a Levels config file: the index goes in the first local Disk, shared by every storage made from it', async () => {
    const dir = tempDir();
    const config = join(dir, 'cairn.config.yaml');
    // a memory level in front that is filled by reads, the Disk written
    writeFileSync(config, `storage:\n  levels:\n    - memory: { maxSize: 10MB }\n      write: false\n    - disk: { path: ${join(dir, 'lake')} }\n`);
    // an object: a primitive the function reads from its scope is part of its key
    const calls = { runs: 0 };
    const make = async () =>
      smartCache(await HashKeyStorage.fromConfig(config), { name: 'leveled' })(async (x: number) => {
        calls.runs++;
        return new Float32Array(2048).fill(x);
      });
    const first = await make();
    expect((await first(2))[2047]).toBe(2);
    expect(existsSync(join(dir, 'lake', 'tools', 'smart-cache-index.sqlite'))).toBe(true);
    const second = await make();
    expect((await second(2))[0]).toBe(2);
    expect(calls.runs).toBe(1);
    // the Disk's own walk does not see the index
    const disk = new Disk(join(dir, 'lake'));
    const keys = [];
    for await (const key of disk.keys()) keys.push(key);
    expect(keys).toHaveLength(1);
    expect(statSync(disk.pathOf(keys[0]!)).size).toBe(8192);
  });

  it('a TierKV\'s storage has no Disk: a ConfigError at once that says what to pass, and { index, storage } works', async () => {
    const dir = tempDir();
    const store = await TierKV.open({ name: 'features', resources: [new ResourceMemory(), new ResourceFilesystem({ path: join(dir, 'tier') })] });
    try {
      expect(() => smartCache(store.storage)).toThrow(ConfigError);
      expect(() => smartCache(store.storage)).toThrow(/pass \{ index, storage \}/);
      let runs = 0;
      const f = smartCache({ index: join(dir, 'index'), storage: store.storage })(async (x: number) => {
        runs++;
        return new Float64Array(1024).fill(x);
      });
      expect((await f(5))[1023]).toBe(5);
      expect((await f(5))[0]).toBe(5);
      expect(runs).toBe(1);
      expect(existsSync(join(dir, 'index', 'index.sqlite'))).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('indexFor refuses a location that cannot hold call keys, saying what to pass', () => {
    expect(() => indexFor(new Fanout(new Memory(), new Memory()))).toThrow(/pass \{ index, storage \} with index a folder/);
    expect(() => smartCache({ index: new Fanout(new Memory(), new Memory()), storage: new Memory() })).toThrow(ConfigError);
  });
});

describe('compaction', () => {
  it('the index file gives back the space of removed entries', async () => {
    const dir = tempDir();
    // bodies of 20 kB stay inline in the index
    const wide = smartCache(dir, { name: 'wide' })(async (x: number) => 'x'.repeat(20_000) + x);
    for (let x = 0; x < 300; x++) await wide(x);
    const file = join(dir, 'index.sqlite');
    const size = () => statSync(file).size + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
    const full = size();
    expect(full).toBeGreaterThan(300 * 20_000);
    expect((await reduceCache(dir, { maxEntries: 10 })).kept).toBe(10);
    // the file shrinks to about what 10 entries take; the write-ahead log is bounded on its own
    expect(statSync(file).size).toBeLessThan(40 * 20_000);
    expect(size()).toBeLessThan(full / 2);
    expect(await wide(299)).toBe('x'.repeat(20_000) + 299);
    expect(wide.stats.misses).toBe(300);
  });
});

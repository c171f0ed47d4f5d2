import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, OutOfResourcesError } from '../../src/errors.js';
import { Memory } from '../../src/locations/memory.js';
import { tagsOfId } from '../../src/storage/tierkv/tag-index.js';
import { entryId } from '../../src/storage/tierkv/tags.js';
import { ResourceFilesystem, ResourceMemory, TierKV, type TierKVOptions } from '../../src/storage/tierkv/index.js';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-api-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const texts = (values: unknown[]) => values.map(String).sort();
const persistent = () => ({ name: 'api', resources: [new ResourceMemory({ limit: '4KB' }), new ResourceFilesystem({ path: folder(), compression: true })] });

describe.each<[string, () => TierKVOptions]>([
  ['memory only', () => ({ name: 'api' })],
  ['memory over a filesystem tier', persistent],
])('%s', (_, options) => {
  it('samples k distinct values from the entries of a list of tags', async () => {
    await TierKV.with(options(), async (store) => {
      for (let i = 0; i < 10; i++) await store.set(['BLUE', String(i)], `BLUE ${i}`);
      for (let i = 0; i < 5; i++) await store.set(['RED', String(i)], `RED ${i}`);
      await store.set(['GREEN', '0'], 'GREEN 0');
      const seen = new Set<string>();
      for (let round = 0; round < 200; round++) {
        const picked = texts(await store.sample(['BLUE', 'RED'], 4));
        expect(picked).toHaveLength(4);
        expect(new Set(picked).size).toBe(4);
        for (const text of picked) {
          expect(text).toMatch(/^(BLUE|RED) /);
          seen.add(text);
        }
      }
      expect(seen.size).toBe(15); // every entry of either tag comes up
      expect(texts(await store.sample(['RED', 'GREEN', 'nothing'], 100))).toEqual(['GREEN 0', 'RED 0', 'RED 1', 'RED 2', 'RED 3', 'RED 4']);
      expect(await store.sample(['nothing'], 3)).toEqual([]);
      expect(texts(await store.sample('GREEN', 3))).toEqual(['GREEN 0']);
    });
  });

  it('deletes every entry carrying a tag, and nothing else', async () => {
    const opts = options();
    await TierKV.with(opts, async (store) => {
      for (let i = 0; i < 300; i++) await store.set(['BLUE', String(i)], `BLUE ${i}`);
      await store.set(['RED', '1'], 'RED 1');
      await store.set(['RED', 'BLUE'], 'both');
      expect(await store.deleteTagged('BLUE')).toBe(301);
      expect(await store.get('BLUE')).toEqual([]);
      expect(await store.hasTags(['BLUE'])).toBe(false);
      expect(texts(await store.get('RED'))).toEqual(['RED 1']);
      expect(store.size).toBe(1);
      expect(await store.deleteTagged(['nothing'])).toBe(0);
    });
    if (opts.resources) {
      await TierKV.with(opts, async (store) => {
        expect(await store.get('BLUE')).toEqual([]);
        expect(texts(await store.get('RED'))).toEqual(['RED 1']);
      });
    }
  });

  it('stores many entries with setMany and reads a tag lazily with iterate', async () => {
    await TierKV.with(options(), async (store) => {
      const values = Array.from({ length: 3000 }, (_, i) => randomBytes(64 + (i % 50)));
      const ids = await store.setMany(values.map((value, i) => [['bulk', String(i)], value] as const));
      expect(ids).toHaveLength(3000);
      expect(ids[1234]).toBe(JSON.stringify(['1234', 'bulk']));
      const want = new Set(values.map((value) => value.toString('hex')));
      const got = new Set<string>();
      let removedWhileIterating = false;
      for await (const value of store.iterate('bulk')) {
        got.add(value.toString('hex'));
        if (!removedWhileIterating) {
          // removed entries that the iteration has not reached yet are skipped
          removedWhileIterating = true;
          expect(await store.deleteTagged(['2999'])).toBe(1);
          want.delete(values[2999]!.toString('hex'));
        }
      }
      expect(got).toEqual(want);
      await expect(store.setMany([[['ok'], 'x'], [[], 'no tags']])).rejects.toThrow(/at least one tag/);
      expect(texts(await store.get('ok'))).toEqual(['x']);
    });
  });
});

it('reports per tier the entries and bytes it holds, and where', async () => {
  const path = folder();
  await TierKV.with({ name: 'stats', resources: [new ResourceMemory({ limit: '3KB' }), new ResourceFilesystem({ path, limit: '2KB' }), new ResourceFilesystem({ path: folder() })] }, async (store) => {
    for (let i = 0; i < 5; i++) await store.set(String(i), randomBytes(1000));
    const stats = await store.stats();
    expect(stats.map((tier) => tier.tier)).toEqual(['memory', 'filesystem', 'filesystem']);
    expect(stats[1]!.where).toBe(join(path, 'stats'));
    expect(stats[0]).toMatchObject({ entries: 3, bytes: 3000 }); // the 3 most recently used copies
    expect(stats[1]).toMatchObject({ entries: 2, bytes: 2000 });
    expect(stats[2]).toMatchObject({ entries: 3, bytes: 3000 });
  });
  await TierKV.with({ name: 'stats' }, async (store) => {
    await store.set('a', randomBytes(10));
    await store.set('b', randomBytes(20));
    expect(await store.stats()).toEqual([{ tier: 'memory', where: 'memory', entries: 2, bytes: 30 }]);
  });
});

describe('limits', () => {
  it('frees the old bytes first when replacing a value in a full memory-only store', async () => {
    for (const compression of [false, true]) {
      await TierKV.with({ name: 'full', resources: [new ResourceMemory({ limit: '3KB', compression })] }, async (store) => {
        await store.set('a', randomBytes(2000));
        const replacement = randomBytes(2000);
        await store.set('a', replacement); // 2,000 + 2,000 > 3,000, but the old value goes
        expect((await store.get('a'))[0]!.equals(replacement)).toBe(true);
        await expect(store.set('b', randomBytes(2000))).rejects.toBeInstanceOf(OutOfResourcesError);
      });
    }
  });

  it('refuses a number limit above 1 (a fraction), and takes byte sizes as strings', () => {
    expect(() => new ResourceMemory({ limit: 1.5 })).toThrow(ConfigError);
    expect(() => new ResourceFilesystem({ path: folder(), limit: 4096 })).toThrow(/a byte size is a string/);
    expect(new ResourceMemory({ limit: '4096B' }).limit).toEqual({ bytes: 4096 });
    expect(new ResourceMemory({ limit: 1 }).limit).toEqual({ fraction: 1 });
  });

  it('counts a filesystem fraction as df does: used / (used + available), reserved blocks left out', async () => {
    const path = folder();
    const stats = statfsSync(path);
    const used = (stats.blocks - stats.bfree) * stats.bsize;
    const asDf = used / (used + stats.bavail * stats.bsize);
    const above = Math.min(1, asDf + 0.02);
    await TierKV.with({ name: 'df', resources: [new ResourceFilesystem({ path, limit: above })] }, async (store) => {
      await store.set('a', 'fits'); // refused when reserved blocks counted as used, where there are many
      expect(texts(await store.get('a'))).toEqual(['fits']);
    });
    if (asDf > 0.02) {
      await TierKV.with({ name: 'df2', resources: [new ResourceFilesystem({ path, limit: asDf - 0.02 })] }, async (store) => {
        await expect(store.set('a', 'over')).rejects.toBeInstanceOf(OutOfResourcesError);
      });
    }
  });
});

it('closes with Symbol.asyncDispose, as `await using` does', async () => {
  const path = folder();
  const options = { name: 'dispose', resources: [new ResourceFilesystem({ path })] };
  const store = await TierKV.open(options);
  await store.set('a', 'kept');
  await store[Symbol.asyncDispose]();
  await expect(store.get('a')).rejects.toBeInstanceOf(ConfigError);
  await TierKV.with(options, async (again) => expect(texts(await again.get('a'))).toEqual(['kept']));
});

describe('Memory eviction', () => {
  it('evicts least recently used first, however many evictions came before', async () => {
    const memory = new Memory({ maxSize: 1000 });
    const key = (i: number) => i.toString(16).padStart(64, '0');
    for (let i = 0; i < 20_000; i++) expect(memory.putSync(key(i), Buffer.alloc(100, i % 256))).toBe(true);
    expect(memory.count).toBe(10);
    expect(memory.size).toBe(1000);
    // the oldest survivor, used now, outlives the others
    expect(memory.peek(key(19_990))![0]).toBe(19_990 % 256);
    for (let i = 20_000; i < 20_009; i++) memory.putSync(key(i), Buffer.alloc(100));
    expect(memory.peek(key(19_990))).not.toBeNull();
    expect(memory.peek(key(19_991))).toBeNull();
    expect(await memory.delete(key(20_008))).toBe(true);
    expect(memory.size).toBe(900);
    memory.putSync(key(30_000), Buffer.alloc(200));
    expect(memory.count).toBe(9); // the least recently used one evicted to make room for 200 bytes
    expect(memory.peek(key(20_000))).toBeNull();
    expect(memory.peek(key(20_001))).not.toBeNull();
    expect(memory.peek(key(19_990))).not.toBeNull();
  });
});

it('reads the tags back from every entry id, also ids with escapes, quotes and empty tags', () => {
  const odd = ['plain', 'qu"ote', 'back\\slash', 'new\nline', '\u0001', '\ud83d\ude00', '\ud83d', '\ude00x', 'é', '', 'AB', 'A', 'BC', 'C', '","', '["', '"]'];
  const lists = [...odd.map((tag) => [tag]), ...odd.flatMap((a) => odd.map((b) => [a, b])), odd];
  for (const list of lists) {
    const { id, tags } = entryId(list);
    expect(tagsOfId(id)).toEqual([...tags]);
    expect(tagsOfId(id)).toEqual(JSON.parse(id));
  }
});

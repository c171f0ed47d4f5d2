import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Compression, ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';
import { type Rec, TagIndex, UNPLACED } from '../../src/storage/tierkv/tag-index.js';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-test-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const texts = (values: Buffer[]) => values.map(String).sort();

describe('entries and tags', () => {
  it("keeps ['AB','C'] and ['A','BC'] apart (the seed joined tags with no separator)", async () => {
    await TierKV.with({ name: 'collide' }, async (store) => {
      await store.set(['AB', 'C'], 'first');
      await store.set(['A', 'BC'], 'second');
      expect(texts(await store.get('AB'))).toEqual(['first']);
      expect(texts(await store.get('A'))).toEqual(['second']);
      expect(await store.keys()).toHaveLength(2);
    });
  });

  it('identifies an entry by its set of tags: order and repeats do not matter', async () => {
    await TierKV.with({ name: 'set' }, async (store) => {
      const id = await store.set(['RED', '1'], 'one');
      expect(await store.set(['1', 'RED', 'RED'], 'uno')).toBe(id);
      expect(texts(await store.get('RED'))).toEqual(['uno']);
      expect(store.tagsOf(id)).toEqual(['1', 'RED']);
    });
  });

  it('replaces the value of an existing entry, in memory and on a filesystem tier, also after reopening', async () => {
    const path = folder();
    const resources = () => [new ResourceMemory(), new ResourceFilesystem({ path })];
    await TierKV.with({ name: 'replace', resources: resources() }, async (store) => {
      await store.set(['BLUE', '1'], 'old');
      await store.set(['BLUE', '1'], 'new');
      expect(texts(await store.get('BLUE'))).toEqual(['new']);
      expect(texts(await store.getByKey('["1","BLUE"]'))).toEqual(['new']);
    });
    await TierKV.with({ name: 'replace', resources: resources() }, async (store) => {
      expect(texts(await store.get('BLUE'))).toEqual(['new']);
      expect(store.size).toBe(1);
    });
  });

  it('gets the union of several tags, each value once; [] for unknown tags', async () => {
    await TierKV.with({ name: 'union' }, async (store) => {
      await store.set(['BLUE', '1'], 'b1');
      await store.set(['BLUE', 'RED'], 'purple');
      await store.set(['RED', '2'], 'r2');
      await store.set('lonely', 'b1'); // same bytes as another entry: stored once, returned for each entry
      expect(texts(await store.get(['BLUE', 'RED']))).toEqual(['b1', 'purple', 'r2']);
      expect(texts(await store.get(['BLUE', 'lonely']))).toEqual(['b1', 'b1', 'purple']);
      expect(await store.get('GREEN')).toEqual([]);
      expect(await store.get([])).toEqual([]);
      expect(await store.hasTags(['GREEN', 'RED'])).toBe(true);
      expect(await store.hasTags(['GREEN'])).toBe(false);
      expect(await store.delete(['BLUE', '1'])).toBe(true);
      expect(texts(await store.get('lonely'))).toEqual(['b1']);
      expect(texts(await store.get('BLUE'))).toEqual(['purple']);
    });
  });

  it('gives callers their own bytes: changing a returned buffer does not change the store', async () => {
    await TierKV.with({ name: 'copy' }, async (store) => {
      const input = Buffer.from('original');
      await store.set('x', input);
      input.write('changed!');
      const [got] = await store.get('x');
      got!.write('mutated!');
      expect(texts(await store.get('x'))).toEqual(['original']);
    });
  });

  it('with copy: false returns views that keep their bytes while the store changes around them', async () => {
    await TierKV.with({ name: 'views' }, async (store) => {
      const ids: string[] = [];
      for (let i = 0; i < 300; i++) ids.push(await store.set(['V', String(i)], `value ${i}`.padEnd(900, '.')));
      const views = await store.get('V', { copy: false });
      const copies = await store.get('V');
      expect(views.map(String)).toEqual(copies.map(String));
      // removing most entries compacts the memory that holds them; new sets append after
      for (let i = 0; i < 280; i++) await store.delete(['V', String(i)]);
      for (let i = 0; i < 300; i++) await store.set(['W', String(i)], `other ${i}`.padEnd(900, '!'));
      expect(views.map(String)).toEqual(copies.map(String));
      const [sampled] = await store.sample('W', 1, { copy: false });
      expect(String(sampled)).toMatch(/^other \d+!+$/);
      expect((await store.getByKey(ids[299]!, { copy: false })).map(String)).toEqual([`value 299`.padEnd(900, '.')]);
      // an empty value is a value, with or without copies
      await store.set('empty', Buffer.alloc(0));
      expect((await store.get('empty')).map((bytes) => bytes.length)).toEqual([0]);
      expect((await store.get('empty', { copy: false })).map((bytes) => bytes.length)).toEqual([0]);
    });
  });

  it('reaches the values by content key through the composed HashKeyStorage', async () => {
    const path = folder();
    await TierKV.with({ name: 'storage', resources: [new ResourceMemory(), new ResourceFilesystem({ path })] }, async (store) => {
      const id = await store.set(['a', 'b'], 'hello');
      const key = store.keyOf(id)!;
      expect(String(await store.storage.readBytes(key))).toBe('hello');
      expect(store.levels.levels).toHaveLength(2);
    });
  });
});

describe('sample', () => {
  it('is uniform without replacement (20 entries, k = 5, 20,000 draws)', async () => {
    await TierKV.with({ name: 'uniform' }, async (store) => {
      for (let i = 0; i < 20; i++) await store.set(['T', String(i)], String(i));
      await store.set(['OTHER', 'x'], 'not T');
      const counts = new Map<string, number>();
      for (let draw = 0; draw < 20_000; draw++) {
        const values = (await store.sample('T', 5)).map(String);
        expect(new Set(values).size).toBe(5);
        for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
      }
      expect(counts.size).toBe(20);
      // each is expected 5,000 times, standard deviation about 61: ±500 is more than 8 of them
      for (const count of counts.values()) expect(Math.abs(count - 5000)).toBeLessThan(500);
    });
  });

  it('returns all values when fewer than k, and [] for an unknown tag', async () => {
    await TierKV.with({ name: 'few' }, async (store) => {
      await store.set(['T', '1'], 'a');
      await store.set(['T', '2'], 'b');
      expect(texts(await store.sample('T', 30_000))).toEqual(['a', 'b']);
      expect(await store.sample('nothing', 3)).toEqual([]);
    });
  });

  it('costs O(k): k random draws whatever the number of entries', () => {
    const index = new TagIndex();
    const fill = (tag: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const rec: Rec = { id: JSON.stringify([String(i), tag]), key: 'k', value: null, at: 0, size: 1, kind: 0, seq: 0, tier: -1, stored: 1, blob: false, ...UNPLACED };
        index.put(rec);
      }
    };
    fill('small', 100);
    fill('large', 200_000);
    let draws = 0;
    const counting = () => (draws++, Math.random());
    expect(index.sample('large', 32, counting)).toHaveLength(32);
    // the cost is counted, not timed (speed belongs in bench/): 32 draws among 200,000 entries
    expect(draws).toBe(32);
    draws = 0;
    expect(index.sample('small', 32, counting)).toHaveLength(32);
    expect(draws).toBe(32);
  });
});

describe('compression', () => {
  const codecs: Compression[] = [false, true, 'lz4', 'gzip', 'brotli'];
  const compressible = Buffer.from('feature '.repeat(5000));
  const large = randomBytes(100_000); // above the inline limit: a Disk blob
  for (const compression of codecs) {
    it(`round-trips values with compression ${JSON.stringify(compression)}, in memory and on disk, after reopening`, async () => {
      const path = folder();
      const resources = () => [new ResourceMemory({ compression }), new ResourceFilesystem({ path, compression })];
      await TierKV.with({ name: 'codec', resources: resources() }, async (store) => {
        await store.set(['c', 'small'], compressible);
        await store.set(['c', 'large'], large);
        await store.set(['c', 'tiny'], 'x');
        const got = await store.get('c');
        expect(got.map((value) => value.length).sort((a, b) => a - b)).toEqual([1, compressible.length, large.length]);
      });
      await TierKV.with({ name: 'codec', resources: resources() }, async (store) => {
        expect((await store.getByKey(JSON.stringify(['c', 'small'])))[0]!.equals(compressible)).toBe(true);
        expect((await store.getByKey(JSON.stringify(['c', 'large'])))[0]!.equals(large)).toBe(true);
        expect(String((await store.getByKey(JSON.stringify(['c', 'tiny'])))[0])).toBe('x');
        if (compression !== false) expect(store.tiers[0]!.storedBytes).toBeLessThan(compressible.length / 4 + large.length + 200);
      });
    });
  }
});

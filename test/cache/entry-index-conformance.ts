/**
 * What every EntryIndex backend must do, run against real servers: get/put/delete, entries()
 * (all and one function's), digestsFor(), touch, and smartCache on top of it detecting a corrupted
 * or foreign value under an entry's name and repairing it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { StorageCorruption } from '../../src/errors.js';
import type { Location } from '../../src/locations/interface.js';
import type { EntryIndex, IndexedEntry } from '../../src/cache/entry-index.js';
import { smartCache } from '../../src/cache/index.js';

export interface IndexSetup {
  name: string;
  /** A location of the backend, with a prefix no other test uses. */
  location: () => Location;
  index: (location: Location) => EntryIndex;
  /** Flips a byte of the stored entry of `key`, behind the index's back. */
  corrupt: (location: Location, key: string) => Promise<void>;
  /** Puts a value that is no index entry (another program's) under the entry's name. */
  foreign: (location: Location, key: string) => Promise<void>;
  /** The finest difference `used` can show (S3 times have whole seconds). */
  usedResolutionMs: number;
}

const sha = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');
const newKey = () => sha(randomBytes(16));

async function collect(iterable: AsyncIterable<IndexedEntry>): Promise<IndexedEntry[]> {
  const all: IndexedEntry[] = [];
  for await (const entry of iterable) all.push(entry);
  return all.sort((a, b) => a.key.localeCompare(b.key));
}

export function entryIndexConformance(setup: IndexSetup): void {
  describe(`${setup.name} conformance`, () => {
    it('get of a missing key is null; put then get gives the bytes back; a second put replaces them', async () => {
      const location = setup.location();
      const index = setup.index(location);
      const key = newKey();
      expect(await index.get(key)).toBeNull();
      const first = randomBytes(300);
      await index.put(key, first, { fn: 'f', digest: sha('d1'), args: sha('a1'), size: 300 }, []);
      expect((await index.get(key))!.equals(first)).toBe(true);
      const second = randomBytes(40_000);
      await index.put(key, second, { fn: 'f', digest: sha('d1'), args: sha('a1'), size: 40_000 }, []);
      expect((await index.get(key))!.equals(second)).toBe(true);
      await index.close();
      await location.close?.();
    });

    it('entries() lists every entry with its metadata, entries(fn) only that function, and digestsFor() the digests per arguments', async () => {
      const location = setup.location();
      const index = setup.index(location);
      const [k1, k2, k3, part1, part2] = [newKey(), newKey(), newKey(), newKey(), newKey()];
      const [argsA, argsB, d1, d2] = [sha('a'), sha('b'), sha('digest 1'), sha('digest 2')];
      const before = Date.now();
      await index.put(k1, Buffer.from('one'), { fn: 'features', digest: d1, args: argsA, size: 1003 }, [part1, part2]);
      await index.put(k2, Buffer.from('two'), { fn: 'features', digest: d2, args: argsA, size: 3 }, []);
      await index.put(k3, Buffer.from('three'), { fn: 'labels', digest: d1, args: argsB, size: 5 }, [part2]);
      const all = await collect(index.entries());
      const expected = [
        { key: k1, fn: 'features', digest: d1, args: argsA, size: 1003, parts: [part1, part2] },
        { key: k2, fn: 'features', digest: d2, args: argsA, size: 3, parts: [] },
        { key: k3, fn: 'labels', digest: d1, args: argsB, size: 5, parts: [part2] },
      ].sort((a, b) => a.key.localeCompare(b.key));
      expect(all.map(({ used: _used, ...rest }) => rest)).toEqual(expected);
      for (const entry of all) expect(entry.used).toBeGreaterThanOrEqual(before - setup.usedResolutionMs);
      expect((await collect(index.entries('features'))).map((entry) => entry.key)).toEqual([k1, k2].sort());
      expect((await collect(index.entries('labels'))).map((entry) => entry.key)).toEqual([k3]);
      expect(await collect(index.entries('nobody'))).toEqual([]);
      expect(await index.digestsFor('features', argsA)).toEqual([d1, d2].sort());
      expect(await index.digestsFor('labels', argsB)).toEqual([d1]);
      expect(await index.digestsFor('features', argsB)).toEqual([]);

      expect(await index.delete(k1)).toBe(true);
      expect(await index.delete(k1)).toBe(false);
      expect(await index.get(k1)).toBeNull();
      expect((await collect(index.entries())).map((entry) => entry.key)).toEqual([k2, k3].sort());
      expect(await index.digestsFor('features', argsA)).toEqual([d2]);
      await index.close();
      await location.close?.();
    });

    it('a touched entry reports a later use once the marks are flushed (close)', async () => {
      const location = setup.location();
      const index = setup.index(location);
      const key = newKey();
      await index.put(key, Buffer.from('x'), { fn: 'f', digest: sha('d'), args: sha('a'), size: 1 }, []);
      const [stored] = await collect(index.entries());
      await new Promise((resolve) => setTimeout(resolve, setup.usedResolutionMs + 50));
      index.touch(key);
      // a touch of a key that is not there creates nothing
      const absent = newKey();
      index.touch(absent);
      await index.close();
      const [touched] = await collect(index.entries());
      expect(touched!.key).toBe(key);
      expect(touched!.used).toBeGreaterThan(stored!.used);
      expect(await index.get(absent)).toBeNull();
      await location.close?.();
    });

    it('a foreign value under an entry name is a StorageCorruption from get(), and delete() removes it', async () => {
      const location = setup.location();
      const index = setup.index(location);
      const key = newKey();
      await index.put(key, Buffer.from('entry'), { fn: 'f', digest: sha('d'), args: sha('a'), size: 5 }, []);
      await setup.foreign(location, key);
      await expect(index.get(key)).rejects.toBeInstanceOf(StorageCorruption);
      expect(await index.delete(key)).toBe(true);
      expect(await index.get(key)).toBeNull();
      await index.close();
      await location.close?.();
    });

    it('smartCache({ index, storage }) on it hits, and recomputes a corrupted or a foreign entry (repaired), never returning it', async () => {
      const location = setup.location();
      // an object: a primitive the function reads would be part of its key
      const counter = { runs: 0 };
      const make = () =>
        smartCache({ index: location, storage: location })(async function embed(n: number) {
          counter.runs++;
          return { n, vector: new Float32Array(2048).fill(n), label: `item ${n}` };
        });
      const embed = make();
      const first = await embed(7);
      expect(embed.stats).toMatchObject({ hits: 0, misses: 1 });
      const again = make();
      const hit = await again(7);
      expect(again.stats).toMatchObject({ hits: 1, misses: 0 });
      expect(hit).toEqual(first);
      expect(counter.runs).toBe(1);

      const key = again.key(7);
      await setup.corrupt(location, key);
      const afterCorruption = make();
      expect(await afterCorruption(7)).toEqual(first);
      expect(afterCorruption.stats).toMatchObject({ hits: 0, misses: 1, repaired: 1 });
      expect(counter.runs).toBe(2);

      await setup.foreign(location, key);
      const afterForeign = make();
      expect((await afterForeign.explain(7)).hit).toBe(false);
      expect(await afterForeign(7)).toEqual(first);
      expect(afterForeign.stats).toMatchObject({ hits: 0, misses: 1, repaired: 1 });
      const repaired = make();
      expect(await repaired(7)).toEqual(first);
      expect(repaired.stats).toMatchObject({ hits: 1, misses: 0 });
      expect(counter.runs).toBe(3);
      await location.close?.();
    });
  });
}

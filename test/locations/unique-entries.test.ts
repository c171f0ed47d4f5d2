import { afterAll, describe, expect, it } from 'vitest';
import { Disk, type Entry, Fanout, Levels, type Location, Memory } from '../../src/index.js';
import { uniqueEntries } from '../../src/locations/interface.js';
import { SeenKeys } from '../../src/locations/seen-keys.js';
import { bytesSource, sha256 } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const valueOf = (index: number) => Buffer.from(`value ${index}`);
const keyOf = (index: number) => sha256(valueOf(index));

/** Stores values `from` ≤ index < `to` in `location`, each with `labels`. */
async function fill(location: Location, from: number, to: number, labels: string[]): Promise<void> {
  for (let index = from; index < to; index++) await location.write(keyOf(index), bytesSource(valueOf(index)), labels);
}

async function listed(entries: AsyncIterable<Entry>): Promise<{ key: string; labels: string[] | null; location: string }[]> {
  const found = [];
  for await (const entry of entries) found.push({ key: entry.key, labels: entry.meta.labels, location: entry.location.name });
  return found;
}

describe('SeenKeys', () => {
  it('answers as a Set does, past its bound in a temporary database, holding at most the bound in memory', () => {
    const seen = new SeenKeys(100);
    const reference = new Set<string>();
    let fresh = 0;
    // batches of 64 keys out of 600, so that keys come back in later batches and twice in one
    for (let batch = 0; batch < 40; batch++) {
      const keys = Array.from({ length: 64 }, (_, index) => keyOf((batch * 37 + index * 11) % 600));
      const expected = keys.map((key) => (reference.has(key) ? false : (reference.add(key), true)));
      const answered = seen.firstSeen(keys);
      expect(answered).toEqual(expected);
      fresh += answered.filter(Boolean).length;
    }
    expect(fresh).toBe(reference.size);
    expect(reference.size).toBeGreaterThan(500); // most of the 600 keys came by
    expect(seen.spilled).toBe(true);
    expect(seen.peakInMemory).toBeLessThanOrEqual(100);
    seen.close();
  });

  it('stays in memory below its bound', () => {
    const seen = new SeenKeys(100);
    expect(seen.firstSeen([keyOf(1), keyOf(2), keyOf(1)])).toEqual([true, true, false]);
    expect(seen.firstSeen([keyOf(2), keyOf(3)])).toEqual([false, true]);
    expect(seen.spilled).toBe(false);
    seen.close();
  });
});

describe('uniqueEntries', () => {
  // three locations that overlap: 0-299 in the first, 200-699 in the second, 0-999 in the third
  const layout = async (): Promise<Location[]> => {
    const first = new Memory();
    const second = new Disk(tempDir());
    const third = new Memory();
    await fill(first, 0, 300, ['first']);
    await fill(second, 200, 700, ['second']);
    await fill(third, 0, 1000, ['third']);
    return [first, second, third];
  };

  it('lists each key once, with the meta of the first location that holds it, the same past the bound as within it', async () => {
    const locations = await layout();
    const seen = new SeenKeys(50);
    const spilled = await listed(uniqueEntries(locations, { seen }));
    expect(seen.spilled).toBe(true);
    expect(seen.peakInMemory).toBeLessThanOrEqual(50);
    const inMemory = await listed(uniqueEntries(locations, { inMemory: 1_000_000 }));
    expect(spilled).toEqual(inMemory);

    expect(spilled).toHaveLength(1000);
    expect(new Set(spilled.map((entry) => entry.key)).size).toBe(1000);
    const byKey = new Map(spilled.map((entry) => [entry.key, entry]));
    for (let index = 0; index < 1000; index++) {
      const owner = index < 300 ? 0 : index < 700 ? 1 : 2;
      expect(byKey.get(keyOf(index))).toEqual({ key: keyOf(index), labels: [['first'], ['second'], ['third']][owner], location: locations[owner]!.name });
    }
  });

  it('gives Levels and Fanout listings of more keys than the default bound, each key once with the upper level’s labels', async () => {
    const count = 60_000; // past the 50,000 keys kept in memory
    const upper = new Memory();
    const lower = new Memory();
    await fill(upper, 0, count / 2, ['upper']);
    await fill(lower, count / 4, count, ['lower']);
    for (const composed of [new Levels(upper, lower), new Fanout(upper, lower)]) {
      const entries = await listed(composed.contents());
      expect(entries).toHaveLength(count);
      expect(new Set(entries.map((entry) => entry.key)).size).toBe(count);
      const labelsOf = new Map(entries.map((entry) => [entry.key, entry.labels]));
      for (const index of [0, count / 4, count / 2 - 1, count / 2, count - 1]) {
        expect(labelsOf.get(keyOf(index))).toEqual(index < count / 2 ? ['upper'] : ['lower']);
      }
    }
  }, 120_000);
});

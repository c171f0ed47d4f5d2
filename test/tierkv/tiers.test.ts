import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { OutOfResourcesError } from '../../src/errors.js';
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-tiers-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

it('spills into the next filesystem tier with room and loses nothing; cache: true promotes what is read', async () => {
  const fast = folder();
  const slow = folder();
  const values = Array.from({ length: 10 }, () => randomBytes(1024));
  const ids: string[] = [];
  await TierKV.with(
    {
      name: 'spill',
      resources: [new ResourceMemory({ limit: '2KB' }), new ResourceFilesystem({ path: fast, limit: '4KB' }), new ResourceFilesystem({ path: slow, limit: '1MB' })],
    },
    async (store) => {
      for (let i = 0; i < values.length; i++) ids.push(await store.set(['V', String(i)], values[i]!));
      const where = ids.map((id) => (store.locationOf(id) === store.tiers[0] ? 'fast' : 'slow'));
      expect(where).toEqual(['fast', 'fast', 'fast', 'slow', 'slow', 'slow', 'slow', 'slow', 'slow', 'slow']);
      expect(store.tiers[0]!.storedBytes).toBeLessThanOrEqual(4000);
      const got = await store.get('V');
      expect(got).toHaveLength(10);
      for (const value of values) expect(got.some((bytes) => bytes.equals(value))).toBe(true);
    },
  );
  // more room in the fast tier, and cache: true: reading an entry of the slow tier moves it up
  await TierKV.with(
    {
      name: 'spill',
      cache: true,
      resources: [new ResourceMemory({ limit: '1MB' }), new ResourceFilesystem({ path: fast, limit: '1MB' }), new ResourceFilesystem({ path: slow, limit: '1MB' })],
    },
    async (store) => {
      expect(store.locationOf(ids[9]!)).toBe(store.tiers[1]);
      expect((await store.getByKey(ids[9]!))[0]!.equals(values[9]!)).toBe(true);
      expect(store.locationOf(ids[9]!)).toBe(store.tiers[0]);
      // and a copy is in memory (tier 0 of the Levels)
      expect(await store.levels.levels[0]!.location.readBytes!(store.keyOf(ids[9]!)!)).not.toBeNull();
    },
  );
  await TierKV.with({ name: 'spill', resources: [new ResourceFilesystem({ path: fast }), new ResourceFilesystem({ path: slow })] }, async (store) => {
    expect(store.locationOf(ids[9]!)).toBe(store.tiers[0]);
    expect(await store.keys()).toHaveLength(10);
    for (let i = 0; i < values.length; i++) expect((await store.getByKey(ids[i]!))[0]!.equals(values[i]!)).toBe(true);
  });
});

it('keeps every value in memory-only mode up to its byte limit, then fails with OutOfResourcesError', async () => {
  await TierKV.with({ name: 'mem', resources: [new ResourceMemory({ limit: '3KB' })] }, async (store) => {
    await store.set('a', randomBytes(1000));
    await store.set('b', randomBytes(1000));
    await store.set('c', randomBytes(1000));
    await expect(store.set('d', randomBytes(1000))).rejects.toBeInstanceOf(OutOfResourcesError);
    expect(await store.get(['a', 'b', 'c', 'd'])).toHaveLength(3);
  });
});

it('fails with OutOfResourcesError when every tier is full and leaves the store as it was', async () => {
  const path = folder();
  const resources = () => [new ResourceFilesystem({ path, limit: '3KB' })];
  const kept = new Map<string, Buffer>();
  await TierKV.with({ name: 'full', resources: resources() }, async (store) => {
    let error: unknown = null;
    for (let i = 0; i < 10 && error === null; i++) {
      const value = randomBytes(1000);
      try {
        kept.set(await store.set(['F', String(i)], value), value);
      } catch (caught) {
        error = caught;
      }
    }
    expect(error).toBeInstanceOf(OutOfResourcesError);
    expect((error as OutOfResourcesError).code).toBe('ERR_OUT_OF_RESOURCES');
    expect(kept.size).toBe(3);
    // replacing an entry when full fails too, and the old value stays
    const [firstId] = [...kept.keys()];
    await expect(store.set(JSON.parse(firstId!) as string[], randomBytes(2000))).rejects.toBeInstanceOf(OutOfResourcesError);
    expect((await store.getByKey(firstId!))[0]!.equals(kept.get(firstId!)!)).toBe(true);
    expect(await store.get('F')).toHaveLength(3);
  });
  await TierKV.with({ name: 'full', resources: resources() }, async (store) => {
    expect((await store.keys()).sort()).toEqual([...kept.keys()].sort());
    for (const [id, value] of kept) expect((await store.getByKey(id))[0]!.equals(value)).toBe(true);
  });
});

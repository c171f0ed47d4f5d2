import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { gc } from '../../src/storage/maintenance/gc.js';
import { migrate } from '../../src/storage/maintenance/migrate.js';
import { verify } from '../../src/storage/maintenance/verify.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

async function lakeWith(count: number): Promise<{ root: string; values: Map<string, Buffer> }> {
  const root = tempDir();
  const storage = new HashKeyStorage(new Disk(root, { fsync: false }));
  const values = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(2000 + i);
    values.set((await storage.write(bytes))!, bytes);
  }
  await storage.close();
  return { root, values };
}

const keysOf = async (root: string) => {
  const keys: string[] = [];
  for await (const key of new Disk(root).keys()) keys.push(key);
  return keys;
};

describe('AbortSignal on long operations', () => {
  it('verify: stops checking once aborted and rejects with the signal\'s reason', async () => {
    const { root } = await lakeWith(60);
    const stop = new AbortController();
    let seen = 0;
    const run = verify(new Disk(root), {
      jobs: 2,
      signal: stop.signal,
      onProgress: (progress) => {
        seen = progress.files;
        if (progress.files >= 5) stop.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toBeGreaterThanOrEqual(5);
    expect(seen).toBeLessThan(60);
    await expect(verify(new Disk(root), { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  for (const threads of [1, 2]) {
    it(`migrate (${threads} thread${threads > 1 ? 's' : ''}): aborted halfway, whole copies only, no temp files; run again copies the rest`, async () => {
      const { root, values } = await lakeWith(300);
      const to = tempDir();
      const stop = new AbortController();
      // each copy fsynced, one at a time per thread: slow enough to be stopped in the middle
      const run = migrate(new Disk(root), new Disk(to, { fsync: true }), {
        threads,
        jobs: threads,
        signal: stop.signal,
        onProgress: (progress) => {
          if (progress.files >= 20) stop.abort();
        },
      });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      const copied = await keysOf(to);
      expect(copied.length).toBeGreaterThanOrEqual(20);
      expect(copied.length).toBeLessThan(300);
      expect(readdirSync(join(to, '.tmp'))).toEqual([]);
      const target = new HashKeyStorage(to);
      for (const key of copied) expect((await target.readBytes(key))!.equals(values.get(key)!)).toBe(true);
      const again = await migrate(new Disk(root), new Disk(to), { threads });
      expect(again.failed).toEqual([]);
      expect(again.skipped).toBe(copied.length);
      expect(again.copied + again.skipped).toBe(300);
    });
  }

  it('gc: aborted while listing, nothing is evicted and nothing is left in .trash', async () => {
    const { root, values } = await lakeWith(40);
    const stop = new AbortController();
    const run = gc(new Disk(root), {
      maxCount: 0,
      keepRecent: 0,
      graceMs: 0,
      signal: stop.signal,
      onProgress: (progress) => {
        if (progress.totalFiles === null && progress.files >= 10) stop.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect((await keysOf(root)).sort()).toEqual([...values.keys()].sort());
    expect(existsSync(join(root, '.trash')) ? readdirSync(join(root, '.trash')) : []).toEqual([]);
  });
});

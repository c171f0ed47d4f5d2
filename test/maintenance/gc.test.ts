import { spawn } from 'node:child_process';
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { gc, parseDuration } from '../../src/storage/maintenance/gc.js';
import type { Progress } from '../../src/storage/maintenance/progress.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const DAY = 86_400_000;

/** A lake of `count` values of `size` bytes, value i last used `count - i` days ago. */
async function agedLake(count: number, size = 1000): Promise<{ root: string; storage: HashKeyStorage; keys: string[] }> {
  const root = tempDir();
  const storage = new HashKeyStorage(root);
  const keys: string[] = [];
  for (let i = 0; i < count; i++) keys.push((await storage.write(Buffer.alloc(size, i + 1)))!);
  keys.forEach((key, i) => {
    const when = new Date(Date.now() - (count - i) * DAY);
    utimesSync(join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2)), when, when);
  });
  return { root, storage, keys };
}

describe('gc', () => {
  it('evicts least recently used blobs until under maxSize, and reports progress', async () => {
    const { storage, keys } = await agedLake(10);
    const seen: Progress[] = [];
    const report = await gc(storage, { maxSize: 4500, onProgress: (p) => seen.push({ ...p }) });
    expect(report.removed.map((entry) => entry.key)).toEqual(keys.slice(0, 6));
    expect(report).toMatchObject({ removedBytes: 6000, keptCount: 4, keptBytes: 4000, restored: 0 });
    for (const key of keys.slice(0, 6)) expect(await storage.has(key)).toBe(false);
    for (const key of keys.slice(6)) expect(await storage.has(key)).toBe(true);
    expect(seen.at(-1)).toMatchObject({ operation: 'gc', files: 6, totalFiles: 6, bytes: 6000, totalBytes: 6000 });
  });

  it('honours maxCount and olderThan together; dryRun removes nothing', async () => {
    const { storage, keys } = await agedLake(6);
    const dry = await gc(storage, { maxCount: 4, olderThan: '5d12h', dryRun: true });
    expect(dry.removed.map((entry) => entry.key)).toEqual(keys.slice(0, 2));
    for (const key of keys) expect(await storage.has(key)).toBe(true);
    const byAge = await gc(storage, { olderThan: '3d12h' });
    expect(byAge.removed.map((entry) => entry.key)).toEqual(keys.slice(0, 3));
  });

  it('never evicts a recently used blob, whatever the limits', async () => {
    const { storage, keys } = await agedLake(3);
    const fresh = (await storage.write(Buffer.from('just written')))!;
    const report = await gc(storage, { maxCount: 0 });
    expect(report.removed.map((entry) => entry.key)).toEqual(keys);
    expect(await storage.has(fresh)).toBe(true);
  });

  it('removes temp files not modified for a long while, and keeps fresh ones (a live writer)', async () => {
    const root = tempDir();
    const disk = new Disk(root);
    const stale = join(disk.tmpDir, 'crashed.0001');
    const live = join(disk.tmpDir, 'writing.0002');
    writeFileSync(stale, 'left by a crash');
    writeFileSync(live, 'being written');
    utimesSync(stale, new Date(Date.now() - 2 * DAY), new Date(Date.now() - 2 * DAY));
    const report = await gc(disk, {});
    expect(report.tempFiles.map((file) => file.path)).toEqual([stale]);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('rejects a bad duration with a ConfigError', () => {
    expect(() => parseDuration('soon')).toThrow(/Invalid duration/);
    expect(parseDuration('1h')).toBe(3_600_000);
  });

  it('racing a writer process: every write it acknowledged is still readable afterwards', async () => {
    const { root, storage } = await agedLake(0);
    // 150 old values, last used long ago: gc wants them all gone
    const old: string[] = [];
    for (let n = 0; n < 150; n++) old.push((await storage.write(Buffer.from(`old-${n}`.padEnd(2000, '.'))))!);
    for (const key of old) utimesSync(join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2)), new Date(0), new Date(0));
    for (const key of old) utimesSync(new Disk(root).pathOf(key), new Date(0), new Date(0));

    const writer = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../fixtures/gc-writer.ts', import.meta.url)), root, '150'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    writer.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const ended = new Promise<number | null>((resolve) => writer.on('close', resolve));
    // wait until the writer runs, then collect as hard as possible, several times, while it writes
    while (!output.includes('\n')) await new Promise((resolve) => setTimeout(resolve, 20));
    let removed = 0;
    let restored = 0;
    let running = true;
    void ended.then(() => (running = false));
    while (running) {
      // maxCount 0: every blob not used in the last minute goes; the writer keeps rewriting old ones
      const report = await gc(root, { maxCount: 0, graceMs: 200 });
      removed += report.removed.length;
      restored += report.restored;
    }
    expect(await ended).toBe(0);
    const acknowledged = new Set(output.trim().split('\n'));
    expect(acknowledged.size).toBe(300);
    const check = new HashKeyStorage(root);
    for (const key of acknowledged) expect(await check.has(key), key).toBe(true);
    // gc did evict old values while the writer ran
    expect(removed).toBeGreaterThan(0);
    expect(removed + restored).toBeLessThanOrEqual(150);
  });
});

import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, Fanout, HashKeyStorage, Level, Levels, Memory } from '../../src/index.js';
import { du } from '../../src/storage/maintenance/du.js';
import { migrate } from '../../src/storage/maintenance/migrate.js';
import type { Progress } from '../../src/storage/maintenance/progress.js';
import { verify } from '../../src/storage/maintenance/verify.js';
import { bytesSource } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

function corrupt(disk: Disk, key: string): Buffer {
  const file = disk.pathOf(key);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] ^= 0x55;
  writeFileSync(file, bytes);
  return bytes;
}

describe('verify', () => {
  it('checks every level of a composition, quarantines the bad Disk blob, and a Levels read then heals it', async () => {
    const lower = new Disk(tempDir());
    const upper = new Disk(tempDir());
    const storage = new HashKeyStorage(new Levels(new Level(upper), lower));
    const big = randomBytes(3 * 1024 * 1024);
    const key = (await storage.write(big))!;
    await lower.write(key, bytesSource(big));
    const broken = corrupt(upper, key);

    const seen: Progress[] = [];
    const report = await verify(storage, { onProgress: (p) => seen.push({ ...p }) });
    expect(report.checked).toBe(2);
    expect(report.bad).toHaveLength(1);
    expect(report.bad[0]).toMatchObject({ key, location: upper.name });
    expect(readFileSync(report.bad[0]!.movedTo!).equals(broken)).toBe(true); // moved, never deleted
    expect(readdirSync(join(upper.root, 'tools', 'quarantine'))).toHaveLength(1);
    expect(seen.at(-1)).toMatchObject({ operation: 'verify', files: 2, totalFiles: 2, bytes: 2 * big.length, totalBytes: 2 * big.length });

    // the good lower copy is promoted again on the next read
    expect((await storage.readBytes(key))!.equals(big)).toBe(true);
    expect((await verify(storage)).bad).toEqual([]);
  });

  it('reports a mismatch in a Memory level without moving anything', async () => {
    const memory = new Memory();
    const key = (await new HashKeyStorage(memory).write(Buffer.from('abc')))!;
    memory.peek(key)![0] = 0x7a; // bit rot in memory
    const report = await verify(memory);
    expect(report.bad).toEqual([{ key, location: 'Memory', actual: expect.stringMatching(/^[0-9a-f]{64}$/), movedTo: null }]);
  });
});

describe('migrate and du', () => {
  it('copies with bounded concurrency, keeps labels, skips what the target has, reports bytes', async () => {
    const from = new HashKeyStorage(tempDir());
    const keys: string[] = [];
    for (let i = 0; i < 30; i++) keys.push((await from.write(randomBytes(i === 0 ? 2_000_000 : 1000 + i), { labels: ['x'] }))!);
    const to = new Disk(tempDir());
    await to.write(keys[1]!, bytesSource((await from.readBytes(keys[1]!))!));

    const seen: Progress[] = [];
    const report = await migrate(from, to, { jobs: 3, onProgress: (p) => seen.push({ ...p }) });
    expect(report.failed).toEqual([]);
    expect(report.copied).toBe(29);
    expect(report.skipped).toBe(1);
    expect(report.skippedBytes).toBe(1001);
    const total = 2_000_000 + Array.from({ length: 29 }, (_, i) => 1001 + i).reduce((a, b) => a + b, 0);
    expect(report.copiedBytes + report.skippedBytes).toBe(total);
    expect(seen.at(-1)).toMatchObject({ files: 30, totalFiles: 30, bytes: total, totalBytes: total });
    for await (const entry of to.contents()) if (entry.key !== keys[1]) expect(entry.meta.labels).toEqual(['x']);

    const usage = await du(new Fanout(from.local, to));
    expect(usage.map((u) => [u.count, u.bytes])).toEqual([[30, total], [30, total]]);
    expect(usage[0]!.temp).toEqual({ count: 0, bytes: 0 });
  });
});

describe('Levels counters', () => {
  it('counts hits, misses, bytes per level, and errors', async () => {
    const failing = new Disk(tempDir());
    const levels = new Levels(new Level(new Memory(), { name: 'mem' }), new Level(failing, { name: 'disk' }), { skipFailing: true });
    const storage = new HashKeyStorage(levels, { error: false });
    const key = (await new HashKeyStorage(failing).write(Buffer.from('twelve bytes')))!;
    expect((await storage.readBytes(key))!.toString()).toBe('twelve bytes'); // mem miss, disk hit, promoted
    await storage.readBytes(key); // mem hit
    expect(levels.stats()).toEqual([
      { name: 'mem', hits: 1, misses: 1, bytes: 12, errors: 0 },
      { name: 'disk', hits: 1, misses: 0, bytes: 12, errors: 0 },
    ]);
    const other = (await new HashKeyStorage(failing).write(Buffer.from('other')))!;
    corrupt(failing, other);
    expect(await storage.readBytes(other)).toBeNull(); // corrupted: skipped and counted
    expect(levels.stats()[1]).toMatchObject({ errors: 1 });
    levels.resetStats();
    expect(levels.stats()[0]).toMatchObject({ hits: 0, misses: 0, bytes: 0, errors: 0 });
  });
});

/**
 * gc over a real Redis: on Levels(Disk, Redis) the Disk gives up only what Redis also holds; on a
 * Redis-only lake gc says it does not evict there and counts what is there (as `du` does), by API
 * and through `cairn gc` with a config file.
 */
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage, Levels } from '../../src/index.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { du } from '../../src/storage/maintenance/du.js';
import { gc } from '../../src/storage/maintenance/gc.js';
import { cairn } from '../cli/run.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { type RedisServer, startRedis } from '../servers/redis.js';

let redis: RedisServer;
const opened: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(opened.splice(0).map((item) => item.close()));
  await redis.destroy();
  cleanup();
});

const DAY = 86_400_000;
let prefixes = 0;
function openRedis(): RedisLocation {
  const location = new RedisLocation(redis.url, { prefix: `gc${++prefixes}:` });
  opened.push(location);
  return location;
}

describe('gc with Redis', () => {
  it('Levels(Disk, Redis): a value written on this machine that Redis does not hold is never evicted from the Disk', async () => {
    const root = tempDir();
    const disk = new Disk(root);
    opened.push(disk);
    const remote = openRedis();
    const storage = new HashKeyStorage(new Levels(disk, remote));
    const shared: string[] = [];
    const local: string[] = [];
    for (let i = 0; i < 5; i++) {
      const bytes = Buffer.from(`shared ${i}`);
      shared.push((await new HashKeyStorage(remote).write(bytes))!);
      await new HashKeyStorage(disk).write(bytes);
      local.push((await storage.write(Buffer.from(`only on this machine ${i}`)))!); // Levels writes to its first level
    }
    for (const key of [...shared, ...local]) {
      const when = new Date(Date.now() - 2 * DAY);
      utimesSync(join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2)), when, when);
    }
    const report = await gc(storage, { maxCount: 0 });
    expect(report.removed.map((entry) => entry.key).sort()).toEqual([...shared].sort());
    expect(report.onlyCopies).toBe(5);
    for (const key of local) expect(await disk.readBytes(key)).not.toBeNull();
    for (const key of shared) expect((await storage.readBytes(key))!.toString()).toMatch(/^shared/);
    expect(report.locations.find((part) => part.location === remote.name)).toMatchObject({ collected: false, keptCount: 5 });
  });

  it('a Redis-only lake: gc evicts nothing there, says so, and counts what du counts', async () => {
    const remote = openRedis();
    const storage = new HashKeyStorage(remote);
    for (let i = 0; i < 25; i++) await storage.write(Buffer.from(`remote value ${i}`));
    const usage = await du(storage);
    const report = await gc(storage, { maxCount: 0 });
    expect(report).toMatchObject({ removedCount: 0, keptCount: usage[0]!.count, keptBytes: usage[0]!.bytes });
    expect(usage[0]!.count).toBe(25);
    expect(report.locations[0]).toMatchObject({ collected: false, note: expect.stringContaining('not evicted from') });
    for await (const entry of storage.contents()) expect(await remote.has(entry.key)).toBe(true);
  });

  it('`cairn gc` on a Redis lake prints what it kept and why', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'cairn.config.yaml'), `storage:\n  redis: { url: '${redis.url}', prefix: 'cli${++prefixes}:' }\n`);
    writeFileSync(join(dir, 'a'), 'first');
    writeFileSync(join(dir, 'b'), 'second');
    expect((await cairn(['write', 'a', 'b', '-q'], { cwd: dir })).code).toBe(0);
    const run = await cairn(['gc', '--max-count', '0'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Redis.*kept 2 .*not evicted from/);
    expect(run.stdout).toContain('kept 2 blobs');
  });
});

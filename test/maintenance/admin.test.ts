/**
 * Maintenance through the administration interface: a Packed store is listed, measured, verified,
 * collected and migrated like a Disk lake (API and `cairn`), gc keeps the only copy of a value in
 * a composition, and the LRU order of gc holds past what it keeps in memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage, Levels, Memory, Packed } from '../../src/index.js';
import { adminOf } from '../../src/locations/admin.js';
import { du } from '../../src/storage/maintenance/du.js';
import { gc } from '../../src/storage/maintenance/gc.js';
import { migrate } from '../../src/storage/maintenance/migrate.js';
import { UsageOrder } from '../../src/storage/maintenance/usage-order.js';
import { verify } from '../../src/storage/maintenance/verify.js';
import { openSqlite } from '../../src/sqlite.js';
import { cairn } from '../cli/run.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

const opened: { close(): Promise<void> }[] = [];
function track<T extends { close(): Promise<void> }>(item: T): T {
  opened.push(item);
  return item;
}
afterAll(async () => {
  await Promise.all(opened.splice(0).map((item) => item.close()));
  cleanup();
});

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const DAY = 86_400_000;

/** Sets the last use of Packed rows from outside (another connection, as another process would). */
function setPackedUse(dir: string, uses: [key: string, at: number][]): void {
  const db = openSqlite(join(dir, 'packed.db'));
  try {
    const update = db.prepare('UPDATE packed_values SET used = ? WHERE key = ?');
    for (const [key, at] of uses) update.run(at, Buffer.from(key, 'hex'));
  } finally {
    db.close();
  }
}

/** Sets a Disk key's last-used mark. */
function setDiskUse(root: string, key: string, at: number): void {
  const when = new Date(at);
  utimesSync(join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2)), when, when);
}

describe('Packed through the administration interface', () => {
  it('du counts its values and its file; verify finds a damaged row, sets it aside and the store no longer serves it', async () => {
    const dir = tempDir();
    const packed = track(new Packed(dir));
    const storage = new HashKeyStorage(packed);
    const values = Array.from({ length: 20 }, (_, i) => Buffer.from(`value ${i} `.repeat(i + 1)));
    const keys = await Promise.all(values.map((value) => storage.write(value)));
    const [usage] = await du(storage);
    expect(usage).toMatchObject({ location: packed.name, count: 20, bytes: values.reduce((sum, value) => sum + value.length, 0) });
    expect(usage!.fileBytes).toBeGreaterThan(0);

    // damage one row's bytes behind the store's back
    const bad = keys[3]!;
    const db = openSqlite(join(dir, 'packed.db'));
    db.prepare('UPDATE packed_values SET data = ? WHERE key = ?').run(Buffer.from('not the value'), Buffer.from(bad, 'hex'));
    db.close();

    const report = await verify(storage);
    expect(report).toMatchObject({ checked: 20, errors: [] });
    expect(report.bad).toEqual([{ key: bad, location: packed.name, actual: sha('not the value'), movedTo: expect.stringContaining(join(dir, 'quarantine')) }]);
    expect(readFileSync(report.bad[0]!.movedTo!).toString()).toBe('not the value');
    expect(await packed.readBytes(bad)).toBeNull();
    expect((await du(storage))[0]).toMatchObject({ count: 19, quarantine: { count: 1 } });
    // the good ones are untouched
    for (const [i, key] of keys.entries()) if (key !== bad) expect((await storage.readBytes(key!))!.equals(values[i]!)).toBe(true);
  });

  it('gc evicts least recently used rows by count, bytes and age, and gives the space back to the filesystem', async () => {
    const dir = tempDir();
    const packed = track(new Packed(dir));
    const storage = new HashKeyStorage(packed);
    const keys: string[] = [];
    for (let i = 0; i < 200; i++) keys.push((await storage.write(randomBytes(4000)))!);
    const now = Date.now();
    setPackedUse(dir, keys.map((key, i) => [key, now - (200 - i) * DAY]));

    const byCount = await gc(packed, { maxCount: 150 });
    expect(byCount.removed.map((entry) => entry.key)).toEqual(keys.slice(0, 50));
    expect(byCount).toMatchObject({ removedCount: 50, removedBytes: 50 * 4000, keptCount: 150, keptBytes: 150 * 4000 });

    const byAge = await gc(packed, { olderThan: '100d12h', dryRun: true });
    expect(byAge.removed.map((entry) => entry.key)).toEqual(keys.slice(50, 100));
    expect(await adminOf(packed)!.holds(keys[60]!, 4000)).toBe(true); // a dry run removes nothing

    const before = await adminOf(packed)!.usage();
    const bySize = await gc(packed, { maxSize: 20 * 4000 });
    expect(bySize.removed.map((entry) => entry.key)).toEqual(keys.slice(50, 180));
    expect(bySize.locations[0]!.reclaimedBytes).toBeGreaterThan(100 * 4000);
    expect((await adminOf(packed)!.usage()).fileBytes!).toBeLessThan(before.fileBytes! - 100 * 4000);
    for (const key of keys.slice(180)) expect((await packed.readBytes(key))?.length).toBe(4000);
    for (const key of keys.slice(0, 180)) expect(await packed.readBytes(key)).toBeNull();
  });

  it('gc keeps a row written or touched after it listed it (its delete is conditional on the last use it saw)', async () => {
    const dir = tempDir();
    const packed = track(new Packed(dir));
    const storage = new HashKeyStorage(packed);
    const keys = [];
    for (let i = 0; i < 10; i++) keys.push((await storage.write(Buffer.from(`row ${i}`)))!);
    setPackedUse(dir, keys.map((key) => [key, Date.now() - 10 * DAY]));
    const admin = packed.admin();
    const collection = await admin.collect({ dryRun: false, graceMs: 0, tmpCutoff: 0, now: Date.now() });
    const listed = [];
    for await (const item of admin.items()) listed.push({ key: item.key, size: item.size, lastUsed: item.lastUsed! });
    await packed.touch(keys[0]!); // used after the listing
    await storage.write(Buffer.from('row 1')); // written again after the listing
    const outcome = await collection.evict(listed);
    await collection.finish();
    expect(outcome.restored.map((entry) => entry.key).sort()).toEqual([keys[0], keys[1]].sort());
    expect(outcome.removed).toHaveLength(8);
    expect((await storage.readBytes(keys[0]!))!.toString()).toBe('row 0');
    expect((await storage.readBytes(keys[1]!))!.toString()).toBe('row 1');
  });

  it('migrate copies a Disk lake into a Packed store and back, labels included; a second run skips everything', async () => {
    const root = tempDir();
    const disk = track(new Disk(root));
    const values = Array.from({ length: 40 }, (_, i) => Buffer.from(`migrated ${i}`));
    const keys = [];
    for (const [i, value] of values.entries()) keys.push((await new HashKeyStorage(disk).write(value, { labels: i % 2 ? ['odd'] : [] }))!);
    const packed = track(new Packed(tempDir()));
    const there = await migrate(disk, packed);
    expect(there).toMatchObject({ copied: 40, skipped: 0, failed: [] });
    expect(await migrate(disk, packed)).toMatchObject({ copied: 0, skipped: 40, failed: [] });
    expect(await packed.admin().labelsOf(keys[1]!)).toEqual(['odd']);

    const back = track(new Disk(tempDir()));
    expect(await migrate(packed, back, { threads: 2 })).toMatchObject({ copied: 40, failed: [] });
    for (const [i, key] of keys.entries()) {
      expect((await back.readBytes(key))!.equals(values[i]!)).toBe(true);
      expect(back.labelsOf(key)).toEqual(i % 2 ? ['odd'] : null);
    }
  });
});

describe('cairn on a Packed store', () => {
  it('init --packed, write, ls, du, verify, gc and migrate both ways', async () => {
    const dir = tempDir();
    const store = join(dir, 'small');
    expect((await cairn(['init', '--packed', store, '-q'])).code).toBe(0);
    expect(existsSync(join(store, 'packed.db'))).toBe(true);
    const files = Array.from({ length: 5 }, (_, i) => {
      writeFileSync(join(dir, `f${i}`), `file number ${i}\n`);
      return `f${i}`;
    });
    const written = await cairn(['write', ...files, '--labels', 'small', '--lake', store], { cwd: dir });
    expect(written.code).toBe(0);
    const keys = written.stdout.trim().split('\n');
    expect(keys).toEqual(files.map((_, i) => sha(`file number ${i}\n`)));

    const ls = await cairn(['ls', '--json', '--lake', store]);
    const rows = JSON.parse(ls.stdout) as { key: string; labels: string[]; size: number }[];
    expect(rows.map((row) => row.key).sort()).toEqual([...keys].sort());
    expect(rows.every((row) => row.labels.includes('small') && row.size === 14)).toBe(true);
    expect(ls.stdout.trim().split('\n')).toHaveLength(5 + 2); // one row per line

    const usage = JSON.parse((await cairn(['du', '--json', '--lake', store])).stdout) as { count: number; fileBytes: number }[];
    expect(usage[0]).toMatchObject({ count: 5 });
    expect(usage[0]!.fileBytes).toBeGreaterThan(0);
    const verified = await cairn(['verify', '--lake', store]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('5 blobs checked');

    const disk = join(dir, 'disk');
    const out = await cairn(['migrate', '--from', store, '--to', disk, '--json']);
    expect(JSON.parse(out.stdout)).toMatchObject({ copied: 5, failed: [] });
    expect((await cairn(['read', keys[2]!, '--lake', disk])).stdout).toBe('file number 2\n');
    const store2 = join(dir, 'small2');
    await cairn(['init', '--packed', store2, '-q']);
    expect(JSON.parse((await cairn(['migrate', '--from', disk, '--to', store2, '--json'])).stdout)).toMatchObject({ copied: 5 });
    expect(JSON.parse((await cairn(['ls', '--json', '--labels', 'small', '--lake', store2])).stdout)).toHaveLength(5);

    const dry = await cairn(['gc', '--max-count', '2', '--keep-recent', '0', '--dry-run', '--json', '--lake', store2]);
    const report = JSON.parse(dry.stdout) as { removed: unknown[]; removedCount: number; keptCount: number };
    expect(report).toMatchObject({ removedCount: 3, keptCount: 2 });
    expect(report.removed).toHaveLength(3);
    const done = await cairn(['gc', '--max-count', '2', '--keep-recent', '0', '--lake', store2]);
    expect(done.stdout).toContain('Removed 3 blobs');
    expect(JSON.parse((await cairn(['ls', '--json', '--lake', store2])).stdout)).toHaveLength(2);
  });

  it('a config file names a Packed store with `packed:`', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'cairn.config.yaml'), 'storage:\n  packed: { path: store, fsync: false }\n');
    writeFileSync(join(dir, 'v'), 'configured');
    const written = await cairn(['write', 'v'], { cwd: dir });
    expect(written.code).toBe(0);
    expect(existsSync(join(dir, 'store', 'packed.db'))).toBe(true);
    expect((await cairn(['read', sha('configured')], { cwd: dir })).stdout).toBe('configured');
    expect(JSON.parse((await cairn(['du', '--json'], { cwd: dir })).stdout)[0]).toMatchObject({ count: 1 });
  });
});

describe('gc in a composition keeps the only copy', () => {
  it('Levels(Disk, Disk): the upper level gives up only what the lower one holds, unless it is a plain cache', async () => {
    const upperRoot = tempDir();
    const lowerRoot = tempDir();
    const upper = track(new Disk(upperRoot));
    const lower = track(new Disk(lowerRoot));
    const levels = new Levels(upper, lower);
    const storage = new HashKeyStorage(levels);
    const both: string[] = [];
    const only: string[] = [];
    for (let i = 0; i < 6; i++) {
      const bytes = Buffer.from(`in both ${i}`);
      both.push((await new HashKeyStorage(lower).write(bytes))!);
      await new HashKeyStorage(upper).write(bytes);
      only.push((await new HashKeyStorage(upper).write(Buffer.from(`only upper ${i}`)))!);
    }
    for (const key of [...both, ...only]) setDiskUse(upperRoot, key, Date.now() - 5 * DAY);

    const report = await gc(storage, { olderThan: '1d' });
    const upperPart = report.locations.find((part) => part.location === upper.name)!;
    expect(report.removed.map((entry) => entry.key).sort()).toEqual([...both].sort());
    expect(upperPart).toMatchObject({ collected: true, removedCount: 6, onlyCopies: 6, keptCount: 6 });
    expect(upperPart.note).toContain('no lower level holds them');
    for (const key of only) expect((await upper.readBytes(key))).not.toBeNull();
    for (const key of both) {
      expect(existsSync(upper.pathOf(key))).toBe(false);
      expect(await storage.readBytes(key)).not.toBeNull(); // from the lower level
    }
    // the lower level has nothing below it: the limits alone decide there (nothing is old there)
    expect(report.locations.find((part) => part.location === lower.name)).toMatchObject({ removedCount: 0, keptCount: 6 });

    for (const key of only) setDiskUse(upperRoot, key, Date.now() - 5 * DAY);
    const plain = await gc(storage, { olderThan: '1d', plainCache: [upperRoot] });
    expect(plain.removed.map((entry) => entry.key).sort()).toEqual([...only].sort());
    expect(plain.onlyCopies).toBe(0);
  });

  it('a HashKeyStorage with a Memory remote: a local value the remote lacks stays', async () => {
    const root = tempDir();
    const local = track(new Disk(root));
    const remote = new Memory();
    const storage = new HashKeyStorage(local, { remote });
    const kept = (await storage.write(Buffer.from('written here only')))!;
    const mirrored = (await storage.write(Buffer.from('also remote')))!;
    await new HashKeyStorage(remote).write(Buffer.from('also remote'));
    for (const key of [kept, mirrored]) setDiskUse(root, key, Date.now() - 3 * DAY);
    const report = await gc(storage, { maxCount: 0 });
    expect(report.removed.map((entry) => entry.key)).toEqual([mirrored]);
    expect(report.onlyCopies).toBe(1);
    expect(await local.readBytes(kept)).not.toBeNull();
    expect(report.locations.find((part) => part.location === remote.name)).toMatchObject({ collected: false, keptCount: 1 });
  });
});

describe('the LRU order of gc past what it holds in memory', () => {
  it('spills to a temporary database and reads back oldest first, ties by key', async () => {
    const order = new UsageOrder(100);
    const entries = Array.from({ length: 1000 }, (_, i) => ({ key: sha(`k${i}`), size: i, lastUsed: new Date(1_000_000 + ((i * 7919) % 300) * 1000) }));
    for (const entry of entries) order.add(entry);
    const read = [];
    for await (const entry of order.oldestFirst()) read.push(entry);
    order.close();
    const expected = [...entries].sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime() || (a.key < b.key ? -1 : 1));
    expect(read).toEqual(expected);
    expect(order.count).toBe(1000);
    expect(order.bytes).toBe((999 * 1000) / 2);
  });

  it('gc of a shuffled lake evicts exactly the oldest, reporting each through onRemove', async () => {
    const root = tempDir();
    const disk = track(new Disk(root));
    const storage = new HashKeyStorage(disk);
    const keys: string[] = [];
    for (let i = 0; i < 300; i++) keys.push((await storage.write(Buffer.from(`value ${i}`)))!);
    // shuffled ages: key i is (300 - rank) days old
    const ranks = keys.map((_, i) => (i * 101) % 300);
    keys.forEach((key, i) => setDiskUse(root, key, Date.now() - (300 - ranks[i]!) * DAY));
    const removed: string[] = [];
    const report = await gc(storage, { maxCount: 100, onRemove: (entry) => { removed.push(entry.key); } });
    expect(report.removed).toEqual([]); // given to onRemove instead
    const oldest = keys.filter((_, i) => ranks[i]! < 200);
    expect(removed.sort()).toEqual(oldest.sort());
    expect(report).toMatchObject({ removedCount: 200, keptCount: 100 });
    expect(readdirSync(join(root, 'tools', 'gc')).every((name) => name.endsWith('.done'))).toBe(true);
  });
});

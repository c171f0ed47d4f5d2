import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { HOST_TAG } from '../../src/locations/disk/disk-liveness.js';
import { gc, parseDuration } from '../../src/storage/maintenance/gc.js';
import { GcRun } from '../../src/locations/disk/disk-gc-run.js';
import type { Progress } from '../../src/storage/maintenance/progress.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

/** Every Disk and storage a test opens, closed before the folders go (their marks are written in the background). */
const opened: { close(): Promise<void> }[] = [];
function openDisk(root: string): Disk {
  const disk = new Disk(root);
  opened.push(disk);
  return disk;
}
function openStorage(root: string): HashKeyStorage {
  const storage = new HashKeyStorage(root);
  opened.push(storage);
  return storage;
}
afterAll(async () => {
  await Promise.all(opened.splice(0).map((item) => item.close()));
  cleanup();
});

const DAY = 86_400_000;

/** A lake of `count` values of `size` bytes, value i last used `count - i` days ago. */
async function agedLake(count: number, size = 1000): Promise<{ root: string; storage: HashKeyStorage; keys: string[] }> {
  const root = tempDir();
  const storage = openStorage(root);
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
    const disk = openDisk(root);
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
    for (const key of old) utimesSync(openDisk(root).pathOf(key), new Date(0), new Date(0));

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
    const check = openStorage(root);
    for (const key of acknowledged) expect(await check.has(key), key).toBe(true);
    // gc did evict old values while the writer ran
    expect(removed).toBeGreaterThan(0);
    expect(removed + restored).toBeLessThanOrEqual(150);
  });
});

describe('gc and writers: the pin protocol', () => {
  it('a large value rewritten (checked in place) while gc evicts it is still there once the write resolves', async () => {
    const root = tempDir();
    const storage = openStorage(root);
    const disk = openDisk(root);
    const value = Buffer.alloc(48 * 1024 * 1024, 7);
    const key = (await storage.write(value, { labels: ['first'] }))!;
    utimesSync(join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2)), new Date(0), new Date(0));
    // the writer finds the blob and hashes it in place (tens of ms); gc starts meanwhile and moves it
    const writing = storage.write(value, { labels: ['second'] });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const report = await gc(root, { olderThan: '1h', keepRecent: 0, graceMs: 0 });
    await writing;
    expect((await disk.readBytes(key))?.equals(value)).toBe(true);
    // gc may evict the old write (acknowledged before it started): then the writer wrote it again,
    // with the labels of the write gc raced
    const evicted = report.removed.some((entry) => entry.key === key);
    expect(disk.labelsOf(key)?.sort()).toEqual(evicted ? ['second'] : ['first', 'second']);
  });

  it('a key pinned by a writer is put back, with its mark and labels; unpinned ones go with theirs', async () => {
    const { root, storage, keys } = await agedLake(2);
    const disk = openDisk(root);
    await disk.addLabels(keys[0]!, ['kept']);
    await disk.addLabels(keys[1]!, ['dropped']);
    const run = await GcRun.start(disk);
    const [active] = readdirSync(join(root, 'tools', 'gc'));
    expect(await run.takeBlob(keys[0]!)).toBe(true);
    expect(await run.takeBlob(keys[1]!)).toBe(true);
    expect(await storage.has(keys[0]!)).toBe(false);
    // what a writer does once it sees the run: pin (its later check then finds the blob gone or back)
    writeFileSync(join(root, 'tools', 'gc', active!, `${keys[0]}.pin`), '');
    expect(await run.discard(keys[0]!)).toBe(false);
    expect(await run.discard(keys[1]!)).toBe(true);
    await run.finish();
    expect(await storage.has(keys[0]!)).toBe(true);
    expect(disk.labelsOf(keys[0]!)).toEqual(['kept']);
    expect(existsSync(disk.sidecars(keys[0]!).mark)).toBe(true);
    expect(await storage.has(keys[1]!)).toBe(false);
    expect(existsSync(disk.sidecars(keys[1]!).mark)).toBe(false);
    expect(existsSync(disk.sidecars(keys[1]!).labels)).toBe(false);
    // only the finished run's empty name is left
    expect(readdirSync(join(root, 'tools', 'gc'))).toEqual([`${active}.done`]);
    expect(readdirSync(join(root, 'tools', 'gc', `${active}.done`))).toEqual([]);
  });

  it('the next open puts back what a killed gc had moved aside; the next gc removes marks and labels without a blob', async () => {
    const { root, storage, keys } = await agedLake(3);
    const disk = openDisk(root);
    await disk.addLabels(keys[0]!, ['a']);
    // a gc process killed after moving keys[0] aside (its pid no longer exists)
    const dead = spawn(process.execPath, ['-e', '']);
    const pid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
    const run = join(root, 'tools', 'gc', `x1.${pid.toString(36)}-${HOST_TAG}-abcdef`);
    mkdirSync(run, { recursive: true });
    renameSync(disk.pathOf(keys[0]!), join(run, keys[0]!));
    renameSync(disk.sidecars(keys[0]!).labels, join(run, `${keys[0]}.json`));
    // a delete killed between the blob and its mark
    unlinkSync(disk.pathOf(keys[1]!));
    await disk.addLabels(keys[1]!, ['orphan']);
    expect(await storage.has(keys[0]!)).toBe(false);
    // the next open puts it back (a read that misses meanwhile waits for that)
    const reopened = openDisk(root);
    expect((await reopened.readBytes(keys[0]!))?.length).toBe(1000);
    await reopened.close();
    await gc(root, {});
    expect((await disk.readBytes(keys[0]!))?.length).toBe(1000);
    expect(disk.labelsOf(keys[0]!)).toEqual(['a']);
    expect(existsSync(disk.sidecars(keys[1]!).mark)).toBe(false);
    expect(existsSync(disk.sidecars(keys[1]!).labels)).toBe(false);
    expect(readdirSync(join(root, 'tools', 'gc')).filter((name) => !name.endsWith('.done'))).toEqual([]);
    expect(await storage.has(keys[2]!)).toBe(true);
  });

  it('temp files of a killed process are removed by the next open, a live writer\'s are kept', async () => {
    const root = tempDir();
    const disk = openDisk(root);
    const dead = spawn(process.execPath, ['-e', '']);
    const pid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
    const left = join(disk.tmpDir, `0123456789abcdef.${pid.toString(36)}-${HOST_TAG}-abcdef.7`);
    const live = join(disk.tmpDir, `0123456789abcdef.${process.pid.toString(36)}-${HOST_TAG}-abcdef.8`);
    writeFileSync(left, 'partial');
    writeFileSync(live, 'being written');
    openDisk(root);
    expect(existsSync(left)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });
});

describe('gc and tarn 0.14', () => {
  it('after gc evicts (and with a killed writer\'s label lock), tarn\'s listing of the lake still finds only blobs', async () => {
    const { root, storage, keys } = await agedLake(4);
    const labelled = (await storage.write(Buffer.from('labelled'), { labels: ['x'] }))!;
    const disk = openDisk(root);
    writeFileSync(`${disk.sidecars(labelled).labels}.lock`, 'left by a killed writer');
    await gc(root, { maxCount: 2 });
    // tarn's DiskDict.contents: glob '*/*' from the root (dot-names included), skipping config.yml,
    // tools/ and .tmp/, and reads each relative path as hex
    const listed: string[] = [];
    for (const top of readdirSync(root)) {
      if (top === 'tools' || top === '.tmp' || top === 'config.yml') continue;
      for (const name of readdirSync(join(root, top))) listed.push(top + name);
    }
    expect(listed.every((name) => /^[0-9a-f]{64}$/.test(name))).toBe(true);
    expect(listed.sort()).toEqual([keys[3]!, labelled].sort());
    expect(disk.labelsOf(labelled)).toEqual(['x']);
  });
});

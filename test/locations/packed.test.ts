import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, Disk, HashKeyStorage, Levels, LocationError, type Location, Packed, Small, StorageCorruption, type Value } from '../../src/index.js';
import { networkFilesystemName } from '../../src/locations/packed/packed-filesystem.js';
import { PACKED_CHECKPOINT_BYTES } from '../../src/locations/packed/packed-db.js';
import { packedRecordMeta } from '../../src/locations/packed/packed-journal.js';
import { ProcessJournal } from '../../src/storage/embedded/journal.js';
import { openSqlite } from '../../src/sqlite.js';
import { bytesSource, locationConformance, sha256, expectStored } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

const opened: Packed[] = [];
afterAll(async () => {
  for (const packed of opened) await packed.close();
  cleanup();
});
const open = (dir = tempDir(), options: ConstructorParameters<typeof Packed>[1] = {}) => {
  const packed = new Packed(dir, options);
  opened.push(packed);
  return packed;
};

/** Flips one byte of a stored value through a second connection, behind the location's back. */
async function corruptRow(location: Location, key: string): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve)); // a journaled write is committed by then
  const db = openSqlite(join((location as Packed).dir, 'packed.db'));
  try {
    const keyBytes = Buffer.from(key, 'hex');
    const data = db.prepare('SELECT data FROM packed_values WHERE key = ?').pluck().get(keyBytes) as Buffer;
    const damaged = Buffer.from(data);
    damaged[damaged.length >> 1] ^= 0x01;
    db.prepare('UPDATE packed_values SET data = ? WHERE key = ?').run(damaged, keyBytes);
  } finally {
    db.close();
  }
}

locationConformance({ name: 'Packed', create: () => open(), corrupt: corruptRow });
locationConformance({ name: 'Packed (fsync: false, maxSize 1 MiB)', create: () => open(tempDir(), { fsync: false, maxSize: '1MiB' }), corrupt: corruptRow, maxValueSize: 1024 * 1024 });
locationConformance({
  name: 'Levels(Small(Packed), Disk)',
  create: () => new Levels(new Small(open(), { maxSize: 64 * 1024 }), new Disk(tempDir())),
});

/** Runs the child script; resolves with every line it printed once it has exited. */
function child(args: string[], onLine?: (line: string, kill: () => void) => void): Promise<{ code: number | null; signal: string | null; lines: string[] }> {
  const process_ = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'packed-child.ts'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  process_.stdout!.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      onLine?.(line, () => process_.kill('SIGKILL'));
    }
  });
  return new Promise((resolve) => process_.on('close', (code, signal) => resolve({ code, signal, lines })));
}

describe('Packed durability and sharing', () => {
  for (const fsync of [false, true]) {
    it(`keeps every acknowledged write when the writer is killed with SIGKILL (fsync: ${fsync})`, async () => {
      const dir = tempDir();
      const acknowledged = new Map<string, number>();
      for (let attempt = 0; attempt < 2; attempt++) {
        const stopAfter = 30 + Math.floor(Math.random() * 300);
        let killed = false;
        const result = await child(['write', dir, `k${attempt}`, '1000000', String(fsync), '16'], (line, kill) => {
          const [i, key] = line.split(' ');
          acknowledged.set(key!, Number(i));
          if (acknowledged.size >= stopAfter * (attempt + 1) && !killed) {
            killed = true;
            kill();
          }
        });
        expect(result.signal).toBe('SIGKILL');
      }
      const packed = open(dir);
      for (const [key, i] of acknowledged) {
        const bytes = await packed.readBytes(key);
        expect(bytes, `write ${i} was acknowledged`).not.toBeNull();
        expect(sha256(bytes!)).toBe(key);
      }
      const listed = new Set<string>();
      for await (const entry of packed.contents()) listed.add(entry.key);
      for (const key of acknowledged.keys()) expect(listed.has(key)).toBe(true);
      // the killed writers' journals were replayed and removed; no temp file is left
      expect(readdirSync(dir).filter((name) => !name.startsWith('packed.db')).sort()).toEqual(fsync ? [] : ['journal']);
      if (!fsync) expect(readdirSync(join(dir, 'journal'))).toEqual([]);
      // two writer processes and a reopen: minutes, not seconds, when two suites share the machine
    }, 180_000);
  }

  it('lets several processes write into one store at once, and each sees the others', async () => {
    const dir = tempDir();
    const runs = await Promise.all(['a', 'b', 'c'].map((prefix) => child(['write', dir, prefix, '300', 'false', '8'])));
    const keys = runs.flatMap((run) => run.lines.map((line) => line.split(' ')[1]!));
    for (const run of runs) expect(run.code).toBe(0);
    expect(new Set(keys).size).toBe(900);
    const reader = await child(['read', dir, ...keys.slice(0, 50), ...keys.slice(-50)]);
    expect(reader.lines.filter((line) => line.endsWith(' ok'))).toHaveLength(100);
    const packed = open(dir);
    let count = 0;
    for await (const entry of packed.contents()) {
      count++;
      expect(entry.meta.labels).toHaveLength(1);
    }
    expect(count).toBe(900);
  });

  it('commits concurrent writes in one transaction, each acknowledged after it (fsync)', async () => {
    const dir = tempDir();
    const packed = open(dir, { fsync: true });
    const values = Array.from({ length: 64 }, () => randomBytes(4096));
    const db = openSqlite(join(dir, 'packed.db'));
    const commits = () => db.pragma('data_version', { simple: true }) as number;
    try {
      const before = commits();
      const results = await Promise.all(values.map((bytes) => packed.write(sha256(bytes), bytesSource(bytes))));
      expect(results.every(Boolean)).toBe(true);
      // data_version moves once per commit by another connection: one group, one commit
      expect(commits() - before).toBe(1);
      for (const bytes of values) expect((await packed.readBytes(sha256(bytes)))!.equals(bytes)).toBe(true);
    } finally {
      db.close();
    }
  });
});

describe('Packed journal (fsync: false)', () => {
  it('replays the journal of a process that died: whole records in, a torn last record out', async () => {
    const dir = tempDir();
    const journalDir = join(dir, 'journal');
    const kept = randomBytes(4096);
    const torn = randomBytes(4096);
    const journal = new ProcessJournal(journalDir);
    journal.append(packedRecordMeta({ key: sha256(kept), labels: ['replayed'], bytes: kept }), kept);
    journal.append(packedRecordMeta({ key: sha256(torn), labels: null, bytes: torn }), torn);
    journal.abandon(); // as a kill leaves it
    const file = readFileSync(journal.path);
    writeFileSync(journal.path, file.subarray(0, file.length - 100)); // the kill cut the last write short
    const packed = open(dir, { fsync: false });
    expect((await packed.readBytes(sha256(kept)))!.equals(kept)).toBe(true);
    expect(await (await packed.read(sha256(kept)))!.labels()).toEqual(['replayed']);
    expect(await packed.readBytes(sha256(torn))).toBeNull();
    expect(readdirSync(journalDir)).toEqual([]);
  });

  it('reads its own acknowledged writes before they are committed, and commits them with their labels', async () => {
    const dir = tempDir();
    const packed = open(dir, { fsync: false });
    const bytes = randomBytes(1000);
    const key = sha256(bytes);
    const original = Buffer.from(bytes);
    await expectStored(packed.write(key, bytesSource(bytes), ['a']), key);
    await expectStored(packed.write(key, bytesSource(bytes), ['b']), key);
    bytes.fill(0); // the caller reuses its buffer: nothing stored changes
    const other = openSqlite(join(dir, 'packed.db'));
    try {
      const row = () => other.prepare('SELECT data, labels FROM packed_values WHERE key = ?').get(Buffer.from(key, 'hex')) as { data: Buffer; labels: string } | undefined;
      expect(row()).toBeUndefined(); // not committed yet: the journal has it
      expect((await packed.readBytes(key))!.equals(original)).toBe(true);
      expect([...(await (await packed.read(key))!.labels())!].sort()).toEqual(['a', 'b']);
      await new Promise((resolve) => setImmediate(resolve));
      expect(row()!.data.equals(original)).toBe(true);
      expect(JSON.parse(row()!.labels).sort()).toEqual(['a', 'b']);
    } finally {
      other.close();
    }
  });

  it('acknowledges concurrent writes once the one write() of their records is done: each is in the journal when its promise resolves', async () => {
    const dir = tempDir();
    const packed = open(dir, { fsync: false });
    const values = Array.from({ length: 16 }, (_, i) => randomBytes(2000 + i));
    const journalKeys = () => {
      const [name] = readdirSync(join(dir, 'journal'));
      const keys: string[] = [];
      const bytes = readFileSync(join(dir, 'journal', name!));
      for (let at = 0; at < bytes.length; ) {
        const metaLength = bytes.readUInt32LE(at);
        keys.push(bytes.toString('hex', at + 8, at + 8 + 32));
        at += 8 + metaLength + bytes.readUInt32LE(at + 4);
      }
      return keys;
    };
    const seen = await Promise.all(values.map(async (bytes) => {
      await expectStored(packed.write(sha256(bytes), bytesSource(bytes)), sha256(bytes));
      return journalKeys(); // before the commit (the next turn of the event loop) empties the journal
    }));
    for (const [i, keys] of seen.entries()) expect(keys).toContain(sha256(values[i]!));
    await packed.close();
    const again = open(dir);
    for (const bytes of values) expect((await again.readBytes(sha256(bytes)))!.equals(bytes)).toBe(true);
  });

  it('fails every write of a group whose journal write fails with a LocationError, and stores none of them', async () => {
    const dir = tempDir();
    const packed = open(dir, { fsync: false });
    writeFileSync(join(dir, 'journal'), 'not a folder'); // the journal cannot be created
    const values = Array.from({ length: 4 }, () => randomBytes(500));
    const results = await Promise.allSettled(values.map((bytes) => packed.write(sha256(bytes), bytesSource(bytes))));
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(LocationError);
    }
    await new Promise((resolve) => setImmediate(resolve));
    for (const bytes of values) expect(await packed.readBytes(sha256(bytes))).toBeNull();
    await packed.close();
  });
});

describe('Packed checkpoints and batch reads', () => {
  it('copies its WAL into the database file from a worker thread once enough is committed, and keeps every value', async () => {
    const dir = tempDir();
    const packed = new Packed(dir, { fsync: false });
    const values = Array.from({ length: Math.ceil((PACKED_CHECKPOINT_BYTES * 1.5) / 4096) }, () => randomBytes(4096));
    for (const bytes of values) await packed.write(sha256(bytes), bytesSource(bytes));
    await new Promise((resolve) => setImmediate(resolve));
    // the connection's own checkpoint waits for 128 MiB of WAL: pages in the file are the worker's copy
    const fileSize = () => statSync(join(dir, 'packed.db')).size;
    const deadline = Date.now() + 60_000;
    while (fileSize() < PACKED_CHECKPOINT_BYTES && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fileSize()).toBeGreaterThanOrEqual(PACKED_CHECKPOINT_BYTES);
    for (const bytes of values.slice(0, 200)) expect((await packed.readBytes(sha256(bytes)))!.equals(bytes)).toBe(true);
    await packed.close();
    const again = open(dir);
    for (const bytes of values) expect((await again.readBytes(sha256(bytes)))!.equals(bytes)).toBe(true);
  }, 120_000);

  it('readBatch: the values of many keys in the order given, journaled ones included, misses as null, damage as StorageCorruption', async () => {
    const dir = tempDir();
    const packed = open(dir, { fsync: false });
    const values = Array.from({ length: 150 }, (_, i) => randomBytes(100 + i));
    await Promise.all(values.slice(0, 100).map((bytes, i) => packed.write(sha256(bytes), bytesSource(bytes), [`v${i}`])));
    await new Promise((resolve) => setImmediate(resolve)); // committed
    await corruptRow(packed, sha256(values[5]!));
    // written after the commit: still only in the journal when read
    for (const bytes of values.slice(100, 140)) await packed.write(sha256(bytes), bytesSource(bytes));
    const keys = [...values.map(sha256).reverse(), sha256(values[0]!)]; // 10 misses first, a key twice
    const answers: [string, Buffer | null | 'corrupt'][] = [];
    for await (const [key, value] of packed.readBatch(keys)) {
      answers.push([key, value === null ? null : await value.bytes().catch((error: unknown) => (error instanceof StorageCorruption ? 'corrupt' : Promise.reject(error)))]);
    }
    expect(answers.map(([key]) => key)).toEqual(keys);
    const byKey = new Map(values.map((bytes, i) => [sha256(bytes), i]));
    for (const [key, got] of answers) {
      const i = byKey.get(key)!;
      if (i >= 140) expect(got).toBeNull();
      else if (i === 5) expect(got).toBe('corrupt');
      else expect((got as Buffer).equals(values[i]!)).toBe(true);
    }
    const labels: (string[] | null)[] = [];
    for await (const [, labelled] of packed.readBatch([sha256(values[7]!)])) labels.push(await labelled!.labels());
    expect(labels).toEqual([['v7']]);
  });

  it('readBatch: a value read in a batch gives the labels stored when they are asked for, as a written value does', async () => {
    for (const fsync of [false, true]) {
      const packed = open(tempDir(), { fsync });
      const bytes = randomBytes(300);
      const key = sha256(bytes);
      await packed.write(key, bytesSource(bytes), ['first']);
      await new Promise((resolve) => setImmediate(resolve)); // committed
      const batch: (Value | null)[] = [];
      for await (const [, value] of packed.readBatch([key, sha256(randomBytes(10))])) batch.push(value);
      await packed.write(key, bytesSource(bytes), ['second']);
      expect(batch[1]).toBeNull();
      expect((await batch[0]!.bytes()).equals(bytes)).toBe(true);
      expect((await batch[0]!.labels())?.sort()).toEqual(['first', 'second']);
      await packed.close();
    }
  });
});

describe('Packed operations in order', () => {
  for (const fsync of [false, true]) {
    it(`applies deletes and touches of one key in the order they were made, after an acknowledged write (fsync: ${fsync})`, async () => {
      const packed = open(tempDir(), { fsync });
      const bytes = randomBytes(700);
      const key = sha256(bytes);
      // (the order of calls that wait for nothing: a write first reads its source)
      await expectStored(packed.write(key, bytesSource(bytes)), key);
      const [touchedBefore, deleted, touchedAfter, deletedAgain] = await Promise.all([packed.touch(key), packed.delete(key), packed.touch(key), packed.delete(key)]);
      expect([touchedBefore, deleted, touchedAfter, deletedAgain]).toEqual([true, true, false, false]);
      expect(await packed.readBytes(key)).toBeNull();
      await expectStored(packed.write(key, bytesSource(bytes), ['back']), key);
      expect(await packed.touch(key)).toBe(true);
      expect((await packed.readBytes(key))!.equals(bytes)).toBe(true);
      expect(await (await packed.read(key))!.labels()).toEqual(['back']);
    });
  }
});

describe('Packed reads are verified', () => {
  it('fails a read with StorageCorruption after a byte of the database file is flipped on disk', async () => {
    const dir = tempDir();
    let packed = new Packed(dir);
    const bytes = randomBytes(3000);
    const key = sha256(bytes);
    await expectStored(packed.write(key, bytesSource(bytes)), key);
    await packed.close(); // the last connection folds the WAL into the file
    const file = join(dir, 'packed.db');
    const raw = readFileSync(file);
    const at = raw.indexOf(bytes);
    expect(at).toBeGreaterThan(0);
    raw[at + 1500] ^= 0x40;
    writeFileSync(file, raw);
    packed = open(dir);
    await expect(packed.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    await expect((await packed.read(key))!.bytes()).rejects.toBeInstanceOf(StorageCorruption);
  });

  it('heals a damaged value when the right bytes are written again', async () => {
    const packed = open();
    const bytes = randomBytes(2000);
    const key = sha256(bytes);
    await packed.write(key, bytesSource(bytes), ['kept']);
    await corruptRow(packed, key);
    await expect(packed.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    await expectStored(packed.write(key, bytesSource(bytes)), key);
    expect((await packed.readBytes(key))!.equals(bytes)).toBe(true);
    expect(await (await packed.read(key))!.labels()).toEqual(['kept']);
  });
});

describe('Packed in Levels', () => {
  it('keeps small values in the packed store and the rest on Disk', async () => {
    const packed = open();
    const diskDir = tempDir();
    const storage = new HashKeyStorage(new Levels(new Small(packed, { maxSize: 64 * 1024 }), diskDir));
    const small = randomBytes(4096);
    const large = randomBytes(200_000);
    const smallKey = (await storage.write(small))!;
    const largeKey = (await storage.write(large))!;
    expect((await packed.readBytes(smallKey))!.equals(small)).toBe(true);
    expect(await packed.readBytes(largeKey)).toBeNull();
    expect((await new Disk(diskDir).readBytes!(largeKey))!.equals(large)).toBe(true);
    expect((await storage.readBytes(largeKey))!.equals(large)).toBe(true);
  });
});

describe('Packed options and filesystems', () => {
  it('rejects bad options with ConfigError', () => {
    expect(() => new Packed('')).toThrow(ConfigError);
    expect(() => new Packed(tempDir(), { maxSize: 'lots' })).toThrow(ConfigError);
    expect(() => new Packed(tempDir(), { lockTimeout: -1 })).toThrow(ConfigError);
  });

  it('knows the statfs types of network filesystems, and opens on a local one', () => {
    expect(networkFilesystemName(0x6969)).toBe('NFS');
    expect(networkFilesystemName(0xff534d42)).toBe('CIFS');
    expect(networkFilesystemName(0xef53)).toBeNull(); // ext4
    expect(networkFilesystemName(0x01021994)).toBeNull(); // tmpfs
    expect(open().name).toMatch(/^Packed\(/);
  });

  it('refuses work after close with a LocationError', async () => {
    const packed = new Packed(tempDir());
    await packed.close();
    const bytes = randomBytes(10);
    await expect(packed.write(sha256(bytes), bytesSource(bytes))).rejects.toBeInstanceOf(LocationError);
    await expect(packed.readBytes(sha256(bytes))).rejects.toBeInstanceOf(LocationError);
  });
});

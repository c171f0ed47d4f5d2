import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { OutOfResourcesError } from '../../src/errors.js';
import { Memory } from '../../src/locations/memory.js';
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';
import { entryId } from '../../src/storage/tierkv/tags.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const folders: string[] = [];
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('memory-only store (values hashed only when content keys are asked for)', () => {
  it('writes every value into the Memory location under its sha256 once storage, levels or keyOf is used', async () => {
    await TierKV.with({ name: 'lazy' }, async (store) => {
      const values = Array.from({ length: 50 }, () => randomBytes(300));
      for (let i = 0; i < values.length; i++) await store.set(['L', String(i)], values[i]!);
      const id = JSON.stringify(['0', 'L']);
      const key = store.keyOf(id)!;
      expect(key).toBe(sha256(values[0]!));
      const memory = store.levels.levels[0]!.location;
      for (const value of values) expect((await memory.readBytes!(sha256(value)))!.equals(value)).toBe(true);
      expect((await store.storage.readBytes(key))!.equals(values[0]!)).toBe(true);
      // later sets go to the Memory location directly, and replacing frees the old copy
      const next = randomBytes(300);
      await store.set(['L', '0'], next);
      expect(store.keyOf(id)).toBe(sha256(next));
      expect(await memory.readBytes!(sha256(values[0]!))).toBeNull();
      expect((await store.get('L')).length).toBe(50);
      expect((await store.getByKey(id))[0]!.equals(next)).toBe(true);
    });
  });

  it('replaces and deletes many values without losing or keeping any (removed values are compacted away)', async () => {
    await TierKV.with({ name: 'churn' }, async (store) => {
      const current = new Map<string, Buffer>();
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 400; i++) {
          const value = randomBytes(100 + ((i * 37 + round * 11) % 3000));
          current.set(await store.set(['C', String(i)], value), value);
        }
        for (let i = round; i < 400; i += 7) {
          expect(await store.delete(['C', String(i)])).toBe(true);
          current.delete(JSON.stringify([String(i), 'C'].sort()));
        }
        expect(store.size).toBe(current.size);
        // the bytes held for values not yet hashed are exactly those of the live entries
        const held = [...current.values()].reduce((sum, value) => sum + value.length, 0);
        expect((store as unknown as { pendingBytes: number }).pendingBytes).toBe(held);
        for (const [id, value] of current) expect((await store.getByKey(id))[0]!.equals(value)).toBe(true);
      }
      // a value larger than a slab has room for
      const big = randomBytes(3 * 1024 * 1024);
      await store.set('big', big);
      expect((await store.get('big'))[0]!.equals(big)).toBe(true);
      // and after hashing, everything is still there, by content key too
      for (const [id, value] of current) expect((await store.storage.readBytes(store.keyOf(id)!))!.equals(value)).toBe(true);
    });
  });

  it('counts values not yet hashed against the byte limit, and changes nothing when it refuses a set', async () => {
    await TierKV.with({ name: 'limit', resources: [new ResourceMemory({ limit: '3KB' })] }, async (store) => {
      const a = randomBytes(1000);
      await store.set('a', a);
      await store.set('b', randomBytes(1000));
      await store.set('a', randomBytes(1000)); // a replacement frees the old value
      await store.set('c', randomBytes(1000));
      await expect(store.set('d', randomBytes(1000))).rejects.toBeInstanceOf(OutOfResourcesError);
      await expect(store.set('a', randomBytes(2000))).rejects.toBeInstanceOf(OutOfResourcesError);
      expect(await store.get(['a', 'b', 'c', 'd'])).toHaveLength(3);
      expect((await store.get('a'))[0]!.length).toBe(1000);
    });
  });
});

it('fails with OutOfResourcesError when the machine uses more memory than a fraction limit', async () => {
  // surely more than 1 % of this machine's memory is in use
  await TierKV.with({ name: 'fraction', resources: [new ResourceMemory({ limit: 0.01 })] }, async (store) => {
    await expect(store.set('a', 'x')).rejects.toBeInstanceOf(OutOfResourcesError);
    expect(store.size).toBe(0);
  });
});

describe('entry ids', () => {
  it('are the JSON array of the sorted, distinct tags, also for tags JSON must escape', () => {
    const odd = ['plain', 'qu"ote', 'back\\slash', 'new\nline', '\u0001', '\ud83d\ude00', '\ud83d', '\ude00x', 'é', '', 'AB', 'A', 'BC', 'C'];
    for (const a of odd) {
      expect(entryId(a).id).toBe(JSON.stringify([a]));
      for (const b of odd) expect(entryId([a, b]).id).toBe(JSON.stringify([...new Set([a, b])].sort()));
    }
    expect(entryId(['AB', 'C']).id).not.toBe(entryId(['A', 'BC']).id);
  });
});

describe('Memory.putSync', () => {
  it('stores a copy under the given key, as write does, and respects maxSize', async () => {
    const memory = new Memory({ maxSize: 2000 });
    const bytes = randomBytes(1500);
    const key = sha256(bytes);
    expect(memory.accepts(1500)).toBe(true);
    expect(memory.putSync(key, bytes)).toBe(true);
    bytes.fill(0);
    expect((await memory.readBytes(key))!.equals(bytes)).toBe(false);
    expect(memory.accepts(2001)).toBe(false);
    expect(memory.putSync(sha256(randomBytes(3000)), randomBytes(3000))).toBe(false);
    const other = randomBytes(1000);
    expect(memory.putSync(sha256(other), other)).toBe(true); // evicts the first
    expect(await memory.readBytes(key)).toBeNull();
    expect(memory.size).toBe(1000);
  });
});

describe('filesystem tier layout', () => {
  it('converts a file written with the first layout (tags column, seq index) and keeps its entries', async () => {
    const path = mkdtempSync(join(tmpdir(), 'tierkv-layout-'));
    folders.push(path);
    mkdirSync(join(path, 'old'));
    const value = Buffer.from('from the first layout');
    const db = new Database(join(path, 'old', 'tierkv.db'));
    db.exec(`
      CREATE TABLE entries (
        id TEXT PRIMARY KEY, tags TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL,
        size INTEGER NOT NULL, stored INTEGER NOT NULL, codec TEXT NOT NULL, data BLOB, blob TEXT);
      CREATE INDEX entries_seq ON entries(seq);
      CREATE INDEX entries_key ON entries(key);
      CREATE INDEX entries_blob ON entries(blob) WHERE blob IS NOT NULL;
      CREATE TABLE removed (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);`);
    const id = JSON.stringify(['1', 'OLD']);
    db.prepare('INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(id, id, sha256(value), 5, value.length, value.length, 'none', value, null);
    db.close();
    await TierKV.with({ name: 'old', resources: [new ResourceFilesystem({ path })] }, async (store) => {
      expect((await store.get('OLD'))[0]!.equals(value)).toBe(true);
      expect((await store.storage.readBytes(sha256(value)))!.equals(value)).toBe(true);
      await store.set(['OLD', '2'], 'new');
    });
    await TierKV.with({ name: 'old', resources: [new ResourceFilesystem({ path })] }, async (store) => {
      expect((await store.get('OLD')).map(String).sort()).toEqual(['from the first layout', 'new']);
    });
  });
});

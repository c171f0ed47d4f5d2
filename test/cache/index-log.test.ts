/**
 * The append-only index of a smartCache folder (index-log.ts), and how smartCache repairs what
 * goes wrong in it: torn and corrupted records, other processes' appends, the folder index of
 * earlier versions.
 */
import { appendFileSync, chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { smartCache } from '../../src/cache/index.js';
import { IndexFolder } from '../../src/cache/index-folder.js';
import { IndexLog, logRecord } from '../../src/cache/index-log.js';
import { envelope } from '../../src/cache/store.js';
import { asSource, bufferBlob } from '../../src/blob.js';
import { StorageCorruption } from '../../src/errors.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const key = (n: number) => n.toString(16).padStart(64, '0');
const bytes = (text: string) => Buffer.from(text);

function overwrite(path: string, data: Buffer): void {
  chmodSync(path, 0o644);
  writeFileSync(path, data);
}

describe('IndexLog', () => {
  it('reads back the latest record of a key, and removals', async () => {
    const file = join(tempDir(), 'index.log');
    const log = new IndexLog(file);
    log.writeSync(key(1), bytes('one'));
    log.writeSync(key(2), bytes('two'));
    log.writeSync(key(1), bytes('uno'));
    expect(log.readBytesSync(key(1))?.toString()).toBe('uno');
    expect(log.readBytesSync(key(2))?.toString()).toBe('two');
    expect(log.readBytesSync(key(3))).toBeNull();
    expect(await log.delete(key(2))).toBe(true);
    expect(log.readBytesSync(key(2))).toBeNull();
    const listed: string[] = [];
    for await (const entry of log.contents()) listed.push(entry.key);
    expect(listed).toEqual([key(1)]);
    await log.close();
    // a fresh reader (another process) sees the same
    const again = new IndexLog(file);
    expect(again.readBytesSync(key(1))?.toString()).toBe('uno');
    expect(again.readBytesSync(key(2))).toBeNull();
    await again.close();
  });

  it('finds records appended by another writer after its own scan', async () => {
    const file = join(tempDir(), 'index.log');
    const mine = new IndexLog(file);
    const other = new IndexLog(file);
    mine.writeSync(key(1), bytes('a'));
    expect(mine.readBytesSync(key(2))).toBeNull();
    await other.write(key(2), asSource(bufferBlob(bytes('b')), true));
    expect(mine.readBytesSync(key(2))?.toString()).toBe('b');
    expect(other.readBytesSync(key(1))?.toString()).toBe('a');
    await mine.close();
    await other.close();
  });

  it('skips a torn record and garbage, and reads the records after them', async () => {
    const file = join(tempDir(), 'index.log');
    const writer = new IndexLog(file);
    writer.writeSync(key(1), bytes('first'));
    // a crash in the middle of a write, then garbage, then more writes by others
    appendFileSync(file, logRecord(key(2), bytes('never whole')).subarray(0, 50));
    appendFileSync(file, Buffer.from('garbage that is not a record at all, long enough to look like a header'));
    writer.writeSync(key(3), bytes('third'));
    appendFileSync(file, logRecord(key(4), bytes('fourth')).subarray(0, 62));
    await writer.close();
    const reader = new IndexLog(file);
    expect(reader.readBytesSync(key(1))?.toString()).toBe('first');
    expect(reader.readBytesSync(key(3))?.toString()).toBe('third');
    // the torn ones are damaged entries (to recompute), not values
    expect(() => reader.readBytesSync(key(2))).toThrow(StorageCorruption);
    expect(() => reader.readBytesSync(key(4))).toThrow(StorageCorruption);
    // a write after a torn tail is found, and supersedes the torn record
    reader.writeSync(key(4), bytes('fourth again'));
    expect(reader.readBytesSync(key(4))?.toString()).toBe('fourth again');
    expect(new IndexLog(file).readBytesSync(key(4))?.toString()).toBe('fourth again');
    await reader.close();
  });

  it('a record corrupted after it was scanned is a StorageCorruption, then superseded by a new one', async () => {
    const file = join(tempDir(), 'index.log');
    const log = new IndexLog(file);
    log.writeSync(key(1), bytes('value one'));
    expect(log.readBytesSync(key(1))?.toString()).toBe('value one');
    const data = readFileSync(file);
    data[data.length - 2] ^= 0xff;
    overwrite(file, data);
    expect(() => log.readBytesSync(key(1))).toThrow(StorageCorruption);
    log.writeSync(key(1), bytes('value two'));
    expect(log.readBytesSync(key(1))?.toString()).toBe('value two');
    await log.close();
  });

  it('starts over when the file was cut short behind its back', async () => {
    const file = join(tempDir(), 'index.log');
    const log = new IndexLog(file);
    log.writeSync(key(1), bytes('one'));
    log.writeSync(key(2), bytes('two'));
    expect(log.readBytesSync(key(2))?.toString()).toBe('two');
    overwrite(file, Buffer.alloc(0));
    log.writeSync(key(3), bytes('three'));
    expect(log.readBytesSync(key(3))?.toString()).toBe('three');
    expect(log.readBytesSync(key(1))).toBeNull();
    await log.close();
  });
});

describe('smartCache on its log', () => {
  it('a corrupted small (inline) entry is a miss that recomputes and repairs', async () => {
    const dir = tempDir();
    let runs = 0;
    const f = smartCache(dir)(function small(x: number) {
      runs++;
      return { x, label: `x=${x}` };
    });
    expect(await f(5)).toEqual({ x: 5, label: 'x=5' });
    expect(await f(5)).toEqual({ x: 5, label: 'x=5' });
    expect(runs).toBe(1);
    // flip a byte inside the entry's record (its key is in the record header)
    const log = join(dir, 'index.log');
    const data = readFileSync(log);
    const at = data.indexOf(Buffer.from(f.key(5), 'hex'));
    data[at + 32 + 16 + 20] ^= 0x55;
    overwrite(log, data);
    expect((await f.explain(5)).reasons[0]).toMatch(/truncated|checksum/);
    expect(await f(5)).toEqual({ x: 5, label: 'x=5' });
    expect(runs).toBe(2);
    expect(f.stats.repaired).toBe(1);
    expect(await f(5)).toEqual({ x: 5, label: 'x=5' });
    expect(runs).toBe(2);
  });

  it('reads entries of the folder index of earlier versions, and recomputes bad ones', async () => {
    const dir = tempDir();
    let runs = 0;
    const f = smartCache(dir)(function legacy(x: number) {
      runs++;
      return x * 10;
    });
    const { Encoder } = await import('cbor-x');
    const body = (value: unknown) => new Encoder({ useRecords: false }).encode(value);
    const old = new IndexFolder(join(dir, 'index'));
    // a good entry as the earlier version wrote it: a hit, never run
    await old.write(f.key(1), asSource(bufferBlob(envelope({ p: [], b: body(10) })), true));
    // a corrupted one and one of another format: recomputed, never misread
    const bad = envelope({ p: [], b: body(999) });
    bad[bad.length - 1] ^= 0xff;
    await old.write(f.key(2), asSource(bufferBlob(bad), true));
    const other = envelope({ p: [], b: body(999) });
    other[8] = 7;
    await old.write(f.key(3), asSource(bufferBlob(other), true));
    expect(await f(1)).toBe(10);
    expect(runs).toBe(0);
    expect(await f(2)).toBe(20);
    expect(await f(3)).toBe(30);
    expect(runs).toBe(2);
    expect(f.stats.repaired).toBe(2);
    // the repairs went to the log and win from now on
    expect(await f(2)).toBe(20);
    expect(await f(3)).toBe(30);
    expect(runs).toBe(2);
  });

  it('an exception is not cached on the quick path either', async () => {
    let runs = 0;
    const f = smartCache(tempDir())(function flaky(x: number) {
      runs++;
      if (runs === 1) throw new Error('first time fails');
      return x;
    });
    await expect(f(1)).rejects.toThrow('first time fails');
    expect(await f(1)).toBe(1);
    expect(await f(1)).toBe(1);
    expect(runs).toBe(2);
  });

  it('concurrent calls with one key share one run', async () => {
    let runs = 0;
    const f = smartCache(tempDir())(async function slow(x: number) {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { x };
    });
    const results = await Promise.all([f(1), f(1), f(1)]);
    expect(runs).toBe(1);
    expect(results).toEqual([{ x: 1 }, { x: 1 }, { x: 1 }]);
    expect(f.stats).toMatchObject({ hits: 2, misses: 1 });
  });
});

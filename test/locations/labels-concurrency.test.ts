import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { bufferBlob } from '../../src/blob.js';
import { Disk, HashKeyStorage, Memory } from '../../src/index.js';
import { digestBytes } from '../../src/key.js';
import type { Location } from '../../src/locations/interface.js';
import { valueOf } from '../soak/values.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);
const run = promisify(execFile);

/** Labels are the union of every acknowledged write: concurrent writes of one key keep them all. */
describe.each([
  ['Disk', () => new Disk(tempDir())],
  ['Disk (async small I/O)', () => new Disk(tempDir(), { syncSmallIo: false, fsync: false })],
  ['Memory', () => new Memory()],
])('labels of concurrent writes: %s', (_name, make: () => Location) => {
  it.each([100, 300_000])('50 concurrent writes of one %i-byte value, each with its own labels, keep all 100', async (size) => {
    const location = make();
    const bytes = valueOf(`labels-${size}`, size);
    const key = digestBytes(bytes);
    const source = { ...bufferBlob(bytes), verified: true };
    const written = await Promise.all(Array.from({ length: 50 }, (_, n) => location.write(key, source, [`a${n}`, `b${n}`])));
    expect(written.every(Boolean)).toBe(true);
    const value = await location.read(key);
    const expected = Array.from({ length: 50 }, (_, n) => [`a${n}`, `b${n}`]).flat().sort();
    expect((await value!.labels())?.sort()).toEqual(expected);
  });
});

describe('labels written by several processes at once', () => {
  it('4 processes writing the same 3 values 40 times each, a label per write: all 160 labels kept', async () => {
    const root = tempDir();
    new Disk(root);
    const agent = join(import.meta.dirname, '..', 'soak', 'agents', 'labeller.ts');
    const outputs = await Promise.all(
      Array.from({ length: 4 }, (_, id) => run(process.execPath, ['--import', 'tsx', agent, root, `p${id}`, '40'], { maxBuffer: 1 << 20 })),
    );
    const acknowledged = new Map<string, string[]>();
    for (const { stdout } of outputs) {
      for (const line of stdout.trim().split('\n')) {
        const [key, label] = line.split(' ') as [string, string];
        acknowledged.set(key, [...(acknowledged.get(key) ?? []), label]);
      }
    }
    expect([...acknowledged.values()].flat()).toHaveLength(160);
    const storage = new HashKeyStorage(root);
    for (const [key, labels] of acknowledged) {
      const stored = await storage.read(key, (value) => value.labels());
      expect(stored?.sort()).toEqual(labels.sort());
    }
  });
});

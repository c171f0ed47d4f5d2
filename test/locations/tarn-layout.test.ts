/**
 * Interoperability with tarn (Python): a lake laid out the way tarn's DiskDict writes it opens in
 * cairn, and what cairn writes sits where tarn looks for it. The fixture is built here from tarn's
 * documented layout: config.yml, blobs at `ab/cdef…` (read-only), JSON label lists under
 * tools/labels/ab/<rest>.json and empty last-used marks under tools/usage/ab/<rest>.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Writes a lake as tarn would: returns its root and the values in it. */
function tarnLake(config: string): { root: string; values: Map<string, Buffer> } {
  const root = tempDir();
  writeFileSync(join(root, 'config.yml'), config);
  const values = new Map<string, Buffer>();
  for (let i = 0; i < 5; i++) {
    const bytes = randomBytes(100 + i * 1000);
    const key = sha(bytes);
    values.set(key, bytes);
    mkdirSync(join(root, key.slice(0, 2)), { recursive: true });
    writeFileSync(join(root, key.slice(0, 2), key.slice(2)), bytes, { mode: 0o444 });
    mkdirSync(join(root, 'tools', 'labels', key.slice(0, 2)), { recursive: true });
    writeFileSync(join(root, 'tools', 'labels', key.slice(0, 2), key.slice(2) + '.json'), JSON.stringify(['tarn', `n${i}`]));
    mkdirSync(join(root, 'tools', 'usage', key.slice(0, 2)), { recursive: true });
    const mark = join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2));
    writeFileSync(mark, '');
    const when = new Date('2024-03-01T12:00:00Z');
    utimesSync(mark, when, when);
  }
  mkdirSync(join(root, '.tmp'), { recursive: true });
  return { root, values };
}

describe('a lake written by tarn', () => {
  it('opens in cairn: bytes, labels and last-used times read back', async () => {
    const { root, values } = tarnLake('labels: JsonLabels\nlevels:\n- 1\n- -1\nusage: StatUsage\n');
    const storage = new HashKeyStorage(root);
    for (const [key, bytes] of values) expect((await storage.readBytes(key))!.equals(bytes)).toBe(true);
    const listed = new Map<string, { labels: string[] | null; lastUsed: Date | null }>();
    for await (const { key, meta } of storage.contents()) listed.set(key, meta);
    expect([...listed.keys()].sort()).toEqual([...values.keys()].sort());
    for (const meta of listed.values()) expect(meta.labels).toContain('tarn');
    // reading touched the marks; a lake untouched since then keeps tarn's time
    const untouched = new Disk(root, { touchInterval: Infinity });
    for await (const { meta } of untouched.contents()) expect(meta.lastUsed!.getFullYear()).toBeGreaterThanOrEqual(2024);
  });

  it('opens with tarn’s hash config and levels [1, 31] (a layout without -1)', async () => {
    const { root, values } = tarnLake('hash:\n  name: sha256\nlevels:\n- 1\n- 31\n');
    const disk = new Disk(root);
    expect(disk.levels).toEqual([1, 31]);
    for (const [key, bytes] of values) expect((await disk.readBytes(key))!.equals(bytes)).toBe(true);
    // no labels or usage tools configured: tarn keeps none, and neither does cairn
    const value = await disk.read([...values.keys()][0]!);
    expect(await value!.labels()).toBeNull();
  });

  it('receives cairn writes where tarn looks for them', async () => {
    const { root } = tarnLake('labels: JsonLabels\nlevels:\n- 1\n- -1\nusage: StatUsage\n');
    const bytes = randomBytes(5000);
    const key = (await new HashKeyStorage(root).write(bytes, { labels: ['from-cairn'] }))!;
    const blob = join(root, key.slice(0, 2), key.slice(2));
    expect(readFileSync(blob).equals(bytes)).toBe(true);
    expect(statSync(blob).mode & 0o222).toBe(0);
    expect(JSON.parse(readFileSync(join(root, 'tools', 'labels', key.slice(0, 2), key.slice(2) + '.json'), 'utf8'))).toEqual(['from-cairn']);
    expect(existsSync(join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2)))).toBe(true);
  });

  it('writes a config tarn can read: sorted keys, levels as a list, its tool names', () => {
    const root = tempDir();
    new Disk(root);
    expect(readFileSync(join(root, 'config.yml'), 'utf8')).toBe('labels: JsonLabels\nlevels:\n  - 1\n  - -1\nusage: StatUsage\n');
  });
});

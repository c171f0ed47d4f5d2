import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { StorageCorruption } from '../../src/errors.js';
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-corrupt-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Flips one byte of `value` wherever it is stored in the files of a closed tier's folder; returns how many copies were changed. */
function flipStored(dir: string, value: Buffer): number {
  let flipped = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      continue; // a folder
    }
    for (let at = bytes.indexOf(value); at >= 0; at = bytes.indexOf(value, at + 1)) {
      bytes[at + 100] ^= 0x40;
      flipped++;
    }
    if (flipped > 0) writeFileSync(path, bytes);
  }
  return flipped;
}

it('never returns a value whose stored bytes were changed: get and storage.readBytes throw StorageCorruption', async () => {
  const path = folder();
  const options = { name: 'c', resources: [new ResourceFilesystem({ path })] };
  const value = randomBytes(1024);
  const other = randomBytes(1024);
  let key = '';
  await TierKV.with(options, async (store) => {
    await store.set(['A', '1'], value);
    await store.set(['A', '2'], other);
    key = store.keyOf(JSON.stringify(['1', 'A']))!;
  });
  expect(flipStored(join(path, 'c'), value)).toBeGreaterThan(0);
  await TierKV.with(options, async (store) => {
    const error = await store.get('1').then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(StorageCorruption);
    expect((error as StorageCorruption).key).toBe(key);
    await expect(store.get('A')).rejects.toBeInstanceOf(StorageCorruption);
    await expect(store.storage.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    // the intact value is still served
    expect((await store.get('2'))[0]!.equals(other)).toBe(true);
  });
});

it('heals a corrupted value from another copy of the same bytes, and rewrites the damaged one', async () => {
  const fast = folder();
  const slow = folder();
  const value = randomBytes(1024);
  // the first tier takes one value, so the second entry (same bytes) goes to the second tier
  const options = () => ({ name: 'h', resources: [new ResourceMemory({ limit: '2KB' }), new ResourceFilesystem({ path: fast, limit: '1100B' }), new ResourceFilesystem({ path: slow })] });
  await TierKV.with(options(), async (store) => {
    await store.set(['first'], value);
    await store.set(['second'], value);
    const stats = await store.stats();
    expect(stats.map((tier) => tier.entries)).toEqual([1, 1, 1]);
  });
  expect(flipStored(join(fast, 'h'), value)).toBeGreaterThan(0);
  await TierKV.with(options(), async (store) => {
    expect((await store.get('first'))[0]!.equals(value)).toBe(true);
  });
  // the damaged copy was rewritten: with the other copy gone, the first entry still reads right
  await TierKV.with(options(), async (store) => {
    expect(await store.delete('second')).toBe(true);
  });
  await TierKV.with(options(), async (store) => {
    expect((await store.get('first'))[0]!.equals(value)).toBe(true);
  });
});

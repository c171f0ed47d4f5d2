import { cpSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ResourceFilesystem, TierKV } from '../../src/storage/tierkv/index.js';
import { entryId } from '../../src/storage/tierkv/tags.js';
import { committedSets, DELETED, journaledSets, OLD_LAKE_STORE } from './old-lake-contents.js';

const folders: string[] = [];
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A copy of the fixture folder, its killed writer's journal named as a process that no longer runs (this one's pid, not open here). */
function oldLake(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-old-'));
  folders.push(dir);
  cpSync(join(import.meta.dirname, 'fixtures', 'tierkv-0.1'), dir, { recursive: true });
  const journals = join(dir, OLD_LAKE_STORE, 'journal');
  for (const name of readdirSync(journals)) renameSync(join(journals, name), join(journals, `${process.pid.toString(36)}.${name.split('.')[1]}.log`));
  return dir;
}

const open = (path: string) => TierKV.open<Buffer | Float64Array>({
  name: OLD_LAKE_STORE,
  resources: [new ResourceFilesystem({ path, durability: 'process', compression: 'gzip' })],
});

async function expectContents(store: TierKV<Buffer | Float64Array>): Promise<void> {
  const expected = new Map<string, Buffer | string | Float64Array>();
  for (const [tags, value] of committedSets()) expected.set(JSON.stringify(tags), value);
  expected.delete(JSON.stringify(DELETED));
  for (const [tags, value] of journaledSets()) expected.set(JSON.stringify(tags), value);
  for (const [text, value] of expected) {
    const got = await store.getByKey(entryId(JSON.parse(text) as string[]).id);
    expect(got, text).toHaveLength(1);
    if (value instanceof Float64Array) {
      expect(got[0]).toBeInstanceOf(Float64Array);
      expect([...(got[0] as Float64Array)]).toEqual([...value]);
    } else {
      expect(Buffer.from(got[0] as Buffer).equals(Buffer.from(value))).toBe(true);
    }
  }
  expect(await store.getByKey(entryId(DELETED).id)).toEqual([]);
  expect(await store.keys()).toHaveLength(expected.size);
}

describe('a TierKV folder written by release 0.1', () => {
  it('opens: committed entries, a Disk blob, typed values and a killed writer\'s journal all read back', async () => {
    const dir = oldLake();
    const store = await open(dir);
    await expectContents(store);
    await store.close();
    // the journal was folded into the database: a second open reads the same from it alone
    expect(readdirSync(join(dir, OLD_LAKE_STORE, 'journal'))).toEqual([]);
    const again = await open(dir);
    await expectContents(again);
    await again.set(['new'], Buffer.from('written after the upgrade'));
    expect((await again.get(['new']))[0]!.toString()).toBe('written after the upgrade');
    await again.close();
  });
});

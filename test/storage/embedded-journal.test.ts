/**
 * The embedded store's process journal groups the records of concurrent puts: appended in one
 * run of microtasks, they go out encoded in one buffer with one write(), each caller gets its own
 * copy of its value, and a replay reads them back in order. A failed write acknowledges none.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessJournal, readJournal } from '../../src/storage/embedded/journal.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

/** Appends each (meta, value) in one run of microtasks; resolves with what each callback was given. */
function appendAll(journal: ProcessJournal, records: [string, Buffer][]): Promise<{ error: unknown; bytes: Buffer | null }[]> {
  return Promise.all(
    records.map(([meta, value]) => new Promise<{ error: unknown; bytes: Buffer | null }>((resolve) => journal.appendGrouped(Buffer.from(meta), value, (error, bytes) => resolve({ error, bytes })))),
  );
}

describe('ProcessJournal.appendGrouped', () => {
  it('writes the records of one run of microtasks together, in order, each caller holding its own copy', async () => {
    const journal = new ProcessJournal(tempDir());
    const values = [randomBytes(4096), randomBytes(10), Buffer.alloc(0), randomBytes(70_000)];
    const results = await appendAll(journal, values.map((value, i) => [`meta ${i}`, value]));
    const later = await appendAll(journal, [['meta 4', Buffer.from('a later group')]]);
    for (const [i, { error, bytes }] of results.entries()) {
      expect(error).toBeNull();
      expect(bytes!.equals(values[i]!)).toBe(true);
    }
    // the copies are the journal's: a caller reusing its buffer changes nothing they hold
    values[0]!.fill(0);
    expect(results[0]!.bytes!.equals(values[0]!)).toBe(false);
    const read = readJournal(journal.path, ({ meta, value }) => [meta.toString(), value.toString('hex')]);
    expect(read).toEqual([...results.map(({ bytes }, i) => [`meta ${i}`, bytes!.toString('hex')]), ['meta 4', later[0]!.bytes!.toString('hex')]]);
    journal.close();
  });

  it('flush writes a waiting group at once', () => {
    const journal = new ProcessJournal(tempDir());
    const seen: (Buffer | null)[] = [];
    journal.appendGrouped(Buffer.from('m'), Buffer.from('value'), (_error, bytes) => seen.push(bytes));
    expect(seen).toEqual([]);
    journal.flush();
    expect(seen.map((bytes) => bytes?.toString())).toEqual(['value']);
    expect(readJournal(journal.path, ({ value }) => value.toString())).toEqual(['value']);
    journal.close();
  });

  it('a write that fails gives every caller of its group the error and no bytes', async () => {
    const parent = tempDir();
    const blocked = join(parent, 'journal');
    writeFileSync(blocked, 'a file where the folder should be');
    const journal = new ProcessJournal(blocked);
    const results = await appendAll(journal, [['a', Buffer.from('one')], ['b', Buffer.from('two')]]);
    expect(results.map(({ error }) => (error as NodeJS.ErrnoException).code)).toEqual(['EEXIST', 'EEXIST']);
    expect(results.map(({ bytes }) => bytes)).toEqual([null, null]);
  });
});

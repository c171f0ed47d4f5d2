/**
 * What the TierKV folder in fixtures/tierkv-0.1 holds: written by make-old-lake.ts with the code
 * of release 0.1 (its SQLite file, its Disk blobs and the journal of a writer killed with
 * `kill -9` before its sets were folded). The test that opens it reads these back.
 */
import { valueFor } from './values.js';

export const OLD_LAKE_STORE = 'old';

/** Sets committed by a writer that closed the store: [tags, value]. */
export function committedSets(): [string[], Buffer | string | Float64Array][] {
  const sets: [string[], Buffer | string | Float64Array][] = [];
  // i = 7 is 100,000 bytes that do not compress: a Disk blob
  for (let i = 0; i < 20; i++) sets.push([['committed', String(i)], valueFor('committed', i)]);
  sets.push([['text'], 'a string value, stored as its UTF-8 bytes '.repeat(40)]);
  sets.push([['floats'], Float64Array.from({ length: 300 }, (_, i) => i / 7)]);
  sets.push([['compressible'], Buffer.alloc(6000, 'abc')]);
  sets.push([['deleted'], valueFor('deleted', 0)]);
  return sets;
}

/** Tags of the entry the committing writer deleted after its sets. */
export const DELETED = ['deleted'];

/** Sets acknowledged by the killed writer, still only in its journal: [tags, value]. */
export function journaledSets(): [string[], Buffer][] {
  const sets: [string[], Buffer][] = [];
  for (let i = 0; i < 10; i++) sets.push([['journaled', String(i)], valueFor('journaled', i + 100)]);
  // replaces a committed entry: the journal's value is the newer one
  sets.push([['committed', '3'], valueFor('replaced', 3)]);
  return sets;
}

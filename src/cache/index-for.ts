/**
 * The EntryIndex that goes with a location given as `index` (or found in a HashKeyStorage). One
 * case per kind of location that can hold call keys beside (never inside) its content-addressed
 * blobs; anything else is a ConfigError that says what to pass instead.
 */
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { Disk } from '../locations/disk.js';
import type { Location } from '../locations/interface.js';
import { Memory } from '../locations/memory.js';
import type { EntryIndex } from './entry-index.js';
import { MemoryIndex } from './index-memory.js';
import { SqliteIndex } from './index-sqlite.js';

/** The index file of a cache folder. */
export const FOLDER_INDEX = 'index.sqlite';

export function indexFor(location: Location | string, options: { fsync?: boolean } = {}): EntryIndex {
  if (typeof location === 'string') return new SqliteIndex(join(resolve(location), FOLDER_INDEX), options.fsync);
  switch (true) {
    // in tools/, where the Disk's own walk (keys, gc, verify) never looks
    case location instanceof Disk:
      return new SqliteIndex(join(location.root, 'tools', 'smart-cache-index.sqlite'), options.fsync);
    case location instanceof Memory:
      return new MemoryIndex();
    default:
      throw new ConfigError(
        `smartCache cannot keep its index in ${location.name}: pass { index, storage } with index a folder, a Disk, a Memory or an EntryIndex object`,
      );
  }
}

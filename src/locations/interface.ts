import type { Source, Value } from '../blob.js';
import type { Key } from '../key.js';
import { SeenKeys } from './seen-keys.js';

/** What a location knows of a stored key. */
export interface Meta {
  /** Labels stored with the key, or null when the location keeps none. */
  labels: string[] | null;
  /** When the key was last written or read, or null when the location does not track usage. */
  lastUsed: Date | null;
  /** Size in bytes, when the location knows it cheaply. */
  size: number | null;
}

/** How a location reads. */
export interface LocationReadOptions {
  /** false for a read that is not a use (verify, migrate): the last-used mark stays where it was. @default true */
  use?: boolean;
}

export interface Entry {
  key: Key;
  location: Location;
  meta: Meta;
}

/**
 * A place that stores values by key, with tarn's interface. Wrappers (Fanout, Levels, Small) are
 * locations too, so any composition works.
 *
 * A write has three outcomes:
 * - the stored value (a Value of the key, holding the key's bytes): stored, or already present and
 *   intact. A wrapper can hand it on (Levels copies it upward) without reading the key back;
 * - `null`: declined (full, too large, read-only): a wrapper moves on to its next location;
 * - it throws: a real failure (permissions, I/O, corruption). Wrappers never treat it as a decline.
 *
 * A read of a missing key is `null`; every other failure throws.
 */
export interface Location {
  /** A short description for errors and events, e.g. `Disk(/data/lake)`. */
  readonly name: string;

  read(key: Key, options?: LocationReadOptions): Promise<Value | null>;
  /** Reads several keys; yields every key once, with null for a miss. */
  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]>;
  /** Stores `source` under `key`: the stored value, or null when declined (see above). */
  write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null>;
  /** True when the key was present and is now gone. */
  delete(key: Key): Promise<boolean>;
  /** Updates the last-used time; true when the key is present. */
  touch(key: Key): Promise<boolean>;
  contents(): AsyncIterable<Entry>;

  /** True when the key is present, without reading the value or marking it as used (one small request where it can). */
  has?(key: Key): Promise<boolean>;
  /** Fast path for small values: the verified bytes, or null for a miss. */
  readBytes?(key: Key): Promise<Buffer | null>;
  /** A folder on local disk where a value can be staged so that this location can move it into place. */
  stagingDir?(): string | null;
  /** Releases connections and handles. */
  close?(): Promise<void>;
}

/** A location, or a string, which is a Disk location at that folder. */
export type LocationLike = Location | string;

/**
 * Whether `location` holds `key` without marking it as used: its `has` when it has one, else a read
 * that is not a use (`use: false`; a location that does not know the option marks it anyway).
 */
export async function hasKey(location: Location, key: Key): Promise<boolean> {
  if (location.has) return location.has(key);
  return (await location.read(key, { use: false })) !== null;
}

/** Default `readBatch`: one read after another, in the order asked, a key asked twice answered once. */
export async function* readEach(location: Location, keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
  const seen = new Set<Key>();
  for (const key of keys) {
    if (seen.has(key)) continue;
    seen.add(key);
    yield [key, await location.read(key)];
  }
}

/** Entries de-duplicated together (a listing page or two): a round trip to the spilled record per batch, not per key. */
const UNIQUE_BATCH = 1024;

/**
 * The entries of several locations, each key once (the first location that lists it wins), in
 * memory that does not grow with the number of keys (see SeenKeys). `inMemory`: keys remembered
 * in memory before the rest go into a temporary database (tests make it small).
 */
export async function* uniqueEntries(locations: readonly Location[], options: { inMemory?: number; seen?: SeenKeys } = {}): AsyncIterable<Entry> {
  const seen = options.seen ?? new SeenKeys(options.inMemory);
  const firstSeen = function* (batch: Entry[]): Iterable<Entry> {
    const fresh = seen.firstSeen(batch.map((entry) => entry.key));
    for (let index = 0; index < batch.length; index++) if (fresh[index]) yield batch[index]!;
  };
  try {
    for (const location of locations) {
      let batch: Entry[] = [];
      for await (const entry of location.contents()) {
        batch.push(entry);
        if (batch.length < UNIQUE_BATCH) continue;
        yield* firstSeen(batch);
        batch = [];
      }
      yield* firstSeen(batch);
    }
  } finally {
    seen.close();
  }
}

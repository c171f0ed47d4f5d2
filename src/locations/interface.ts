import type { Source, Value } from '../blob.js';
import type { Key } from '../key.js';

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

/** Default `readBatch`: one read after another. */
export async function* readEach(location: Location, keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
  for (const key of keys) yield [key, await location.read(key)];
}

/** The entries of several locations, each key once (the first location that lists it wins). */
export async function* uniqueEntries(locations: readonly Location[]): AsyncIterable<Entry> {
  const seen = new Set<Key>();
  for (const location of locations) {
    for await (const entry of location.contents()) {
      if (seen.has(entry.key)) continue;
      seen.add(entry.key);
      yield entry;
    }
  }
}

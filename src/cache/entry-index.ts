/**
 * Where smartCache keeps its entries: call key → a small self-checking entry (see store.ts). An
 * index is not content-addressed (its keys are call keys, not hashes of what they hold), so it
 * lives in a key space of its own on every backend: a SQLite file in a cache folder, plain keys
 * beside a Redis location's hashes, objects under their own prefix in an S3 bucket. It must never
 * be read through a location that checks content against keys.
 */
import type { Key } from '../key.js';

/** What an index keeps beside each entry, for clear(), eviction and explain(). */
export interface EntryMeta {
  /** The cached function's name (the `name` option or the function's own). */
  fn: string;
  /** sha256 (hex) of the function's digest: its code, dependencies, version and deps options. */
  digest: string;
  /** sha256 (hex) of the arguments (and `this`), so explain() finds the entry of older code. */
  args: string;
  /** Bytes of the result: the entry plus the parts it names in storage. */
  size: number;
}

export interface IndexedEntry extends EntryMeta {
  key: Key;
  /** Milliseconds since the epoch of the last write or hit (as far as the index keeps it). */
  used: number;
  /** Keys of the parts (and the large body) this entry names in storage. */
  parts: readonly Key[];
}

export interface EntryIndex {
  readonly name: string;
  /** The entry of `key`, or null. A damaged entry is a StorageCorruption. */
  get(key: Key): Promise<Buffer | null>;
  /** The same without waiting, where the index is local; absent elsewhere. */
  getSync?(key: Key): Buffer | null;
  /** Stores (or replaces) the entry of `key`. */
  put(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): Promise<void>;
  putSync?(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): void;
  /** Removes the entry of `key`; false when there was none. */
  delete(key: Key): Promise<boolean>;
  /** Every entry, streamed (memory does not grow with the count); `fn` keeps one function's. */
  entries(fn?: string): AsyncIterable<IndexedEntry>;
  /** The digests under which entries for these arguments of `fn` are stored (for explain()). */
  digestsFor(fn: string, args: string): Promise<string[]>;
  /** Counts a hit as a use (an index may batch or throttle it). */
  touch(key: Key): void;
  /** Gives back to the filesystem the space that removed entries leave (optional: where it applies). */
  compact?(): Promise<void>;
  /** Flushes what is batched and releases the backend. */
  close(): Promise<void>;
}

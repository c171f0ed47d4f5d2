import { freemem, totalmem } from 'node:os';
import { Readable } from 'node:stream';
import { bufferBlob, readUpTo, type Source, type Value } from '../blob.js';
import { verifyBytes } from '../digest.js';
import { assertKey, type Key } from '../key.js';
import { parseFraction, parseSize, type Size } from '../size.js';
import { type Entry, type Location, type LocationReadOptions, readEach } from './interface.js';

const USAGE_CHECK_MS = 250;

export interface MemoryOptions {
  /** Bytes kept at most; the least recently used values are evicted to make room. @default no limit */
  maxSize?: Size;
  /** Writes are declined while this fraction of the machine's memory is in use (the seed's `limit`). @default 1 */
  maxUsage?: number;
}

interface Stored {
  key: Key;
  bytes: Buffer;
  labels: string[] | null;
  /** Milliseconds since the epoch (a number, not a Date: one allocation less per read). */
  lastUsed: number;
  /** Neighbours in the recency list (older, newer): eviction and reuse are O(1). */
  older: Stored | null;
  newer: Stored | null;
}

/** Values in this process's memory, least recently used evicted first. Nothing survives the process. */
export class Memory implements Location {
  readonly name = 'Memory';
  private readonly maxSize: number;
  private readonly maxUsage: number;
  private readonly entries = new Map<Key, Stored>();
  /**
   * Least and most recently used ends of a doubly linked list through the entries. (Evicting by
   * deleting a Map's first key and iterating from the front again is O(n) per eviction in V8:
   * deleted slots stay in the table until it is rehashed, and each new iterator walks past them.)
   */
  private oldest: Stored | null = null;
  private newest: Stored | null = null;
  private used = 0;
  /** The machine's memory use, read at most every USAGE_CHECK_MS: reading it costs a syscall (~15 µs). */
  private usage = { at: -Infinity, fraction: 0 };

  constructor(options: MemoryOptions = {}) {
    this.maxSize = options.maxSize === undefined ? Infinity : parseSize(options.maxSize, 'maxSize');
    this.maxUsage = options.maxUsage === undefined ? 1 : parseFraction(options.maxUsage, 'maxUsage');
  }

  /** Bytes held. */
  get size(): number {
    return this.used;
  }

  /** Keys held. */
  get count(): number {
    return this.entries.size;
  }

  async read(key: Key, options?: LocationReadOptions): Promise<Value | null> {
    const bytes = this.take(key, options?.use !== false);
    if (bytes === null) return null;
    const stored = this.entries.get(key)!;
    return { key, ...bufferBlob(bytes), labels: async () => stored.labels };
  }

  /** True when the key is held, without counting it as a use (its place in the eviction order stays). */
  async has(key: Key): Promise<boolean> {
    assertKey(key);
    return this.entries.has(key);
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    return this.take(key);
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    assertKey(key);
    const existing = this.entries.get(key);
    if (existing) {
      this.use(key, existing);
      if (labels?.length) existing.labels = [...new Set([...(existing.labels ?? []), ...labels])];
      return this.storedValue(existing);
    }
    if (!this.accepts(source.size ?? 0)) return null;
    const bytes = await readUpTo(source, this.maxSize);
    if (bytes === null) return null;
    if (!source.verified) verifyBytes(key, bytes, `a copy into ${this.name}`);
    // a concurrent write of the key may have stored it while we read: keep its labels too
    const stored = this.entries.get(key);
    if (stored) {
      this.use(key, stored);
      if (labels?.length) stored.labels = [...new Set([...(stored.labels ?? []), ...labels])];
      return this.storedValue(stored);
    }
    return this.storedValue(this.store(key, bytes, labels));
  }

  /** The value a write stored: its bytes copied on use (a caller writing into them cannot change the stored value). */
  private storedValue(stored: Stored): Value {
    const bytes = stored.bytes;
    return {
      key: stored.key,
      size: bytes.length,
      path: null,
      stream: () => Readable.from([Buffer.from(bytes)], { objectMode: false }),
      bytes: async () => Buffer.from(bytes),
      labels: async () => stored.labels,
    };
  }

  /**
   * `write` without a promise or a Source, for callers on a hot path that computed `key` from
   * `bytes` themselves (they are not verified again): stores a copy, or marks an existing key as
   * used. False when the value does not fit (as `write`).
   */
  putSync(key: Key, bytes: Buffer, labels?: readonly string[] | null): boolean {
    const existing = this.entries.get(key);
    if (existing) {
      this.use(key, existing);
      if (labels?.length) existing.labels = [...new Set([...(existing.labels ?? []), ...labels])];
      return true;
    }
    if (!this.accepts(bytes.length)) return false;
    assertKey(key);
    this.store(key, bytes, labels);
    return true;
  }

  /** True when a value of `size` bytes would be accepted now: not above maxSize, machine memory under maxUsage. */
  accepts(size: number): boolean {
    return size <= this.maxSize && !(this.maxUsage < 1 && this.machineUsage() >= this.maxUsage);
  }

  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    const stored = this.entries.get(key);
    if (!stored) return false;
    this.drop(stored);
    return true;
  }

  async touch(key: Key): Promise<boolean> {
    return this.take(key) !== null;
  }

  async *contents(): AsyncIterable<Entry> {
    for (const [key, stored] of [...this.entries]) {
      yield { key, location: this, meta: { labels: stored.labels, lastUsed: new Date(stored.lastUsed), size: stored.bytes.length } };
    }
  }

  /**
   * The stored bytes themselves, without a copy (marks the key as used): for callers that copy or
   * only read them and must not pay for a copy per value. Never modify them.
   */
  peek(key: Key): Buffer | null {
    const stored = this.entries.get(key);
    if (!stored) return null;
    this.use(key, stored);
    return stored.bytes;
  }

  private machineUsage(): number {
    const now = performance.now();
    if (now - this.usage.at > USAGE_CHECK_MS) this.usage = { at: now, fraction: 1 - freemem() / totalmem() };
    return this.usage.fraction;
  }

  private take(key: Key, use = true): Buffer | null {
    assertKey(key);
    const stored = this.entries.get(key);
    if (!stored) return null;
    if (use) this.use(key, stored);
    // a copy, so that a caller writing into the buffer cannot change the stored value
    return Buffer.from(stored.bytes);
  }

  private store(key: Key, bytes: Buffer, labels: readonly string[] | null | undefined): Stored {
    this.evictFor(bytes.length);
    // a copy, so that the caller reusing its buffer cannot change a stored value
    const copy = Buffer.from(bytes);
    const stored: Stored = { key, bytes: copy, labels: labels?.length ? [...new Set(labels)] : null, lastUsed: Date.now(), older: null, newer: null };
    this.entries.set(key, stored);
    this.link(stored);
    this.used += copy.length;
    return stored;
  }

  private use(_key: Key, stored: Stored): void {
    stored.lastUsed = Date.now();
    // the order only matters for evicting: without maxSize nothing is evicted
    if (this.maxSize === Infinity || stored === this.newest) return;
    this.unlink(stored);
    this.link(stored);
  }

  /** Evicts least recently used values until `incoming` more bytes fit: O(1) per value evicted. */
  private evictFor(incoming: number): void {
    while (this.oldest !== null && this.used + incoming > this.maxSize) this.drop(this.oldest);
  }

  private drop(stored: Stored): void {
    this.entries.delete(stored.key);
    this.unlink(stored);
    this.used -= stored.bytes.length;
  }

  /** Appends at the most recently used end. */
  private link(stored: Stored): void {
    stored.older = this.newest;
    stored.newer = null;
    if (this.newest !== null) this.newest.newer = stored;
    else this.oldest = stored;
    this.newest = stored;
  }

  private unlink(stored: Stored): void {
    if (stored.older !== null) stored.older.newer = stored.newer;
    else this.oldest = stored.newer;
    if (stored.newer !== null) stored.newer.older = stored.older;
    else this.newest = stored.older;
    stored.older = stored.newer = null;
  }
}

import type { Value } from '../blob.js';
import { InvalidLabelsError, NotFoundError, WriteError } from '../errors.js';
import { assertKey, type Key } from '../key.js';
import { type Entry, hasKey, type Location, type LocationLike } from '../locations/interface.js';
import { distinct, inOrder } from '../locations/in-order.js';
import { Levels } from '../locations/compose/levels.js';
import { resolveLocation } from '../locations/resolve.js';
import type { ProgressCallback } from './maintenance/progress.js';
import { stage, type WriteInput } from './stage.js';
import { watched } from './watched-input.js';
import { watchedValue } from './watched-read.js';

/**
 * What a call that may find or store nothing resolves to: `T` when that case throws instead
 * (`Throws` is `true`, the default), `T | null` when it may give null (`false`, or `boolean` when
 * it is not known which).
 */
export type OrNull<T, Throws extends boolean> = Throws extends true ? T : T | null;

export interface HashKeyStorageOptions<Throws extends boolean = boolean> {
  /** Locations searched after `local` (a read copies what it finds there into `local`). */
  remote?: LocationLike | readonly LocationLike[];
  /** Search `remote` on reads. @default true */
  fetch?: boolean;
  /**
   * A missing key on read, or a write nobody accepts, throws (NotFoundError, WriteError); false gives
   * null. Part of the storage's type: `new HashKeyStorage(dir)` is a `HashKeyStorage<true>`, whose
   * `write` resolves to a `Key`; with `error: false` it is a `HashKeyStorage<false>`.
   * @default true
   */
  error?: Throws;
  /** Labels added to every write, besides the write's own (tarn: a write's labels replace these). @default none */
  labels?: readonly string[];
}

export interface ReadOptions<Throws extends boolean = boolean> {
  /** Search `remote` too. @default the storage's `fetch` */
  fetch?: boolean;
  /** A missing key throws NotFoundError; false gives null. @default the storage's `error` */
  error?: Throws;
  /**
   * Called as the caller reads the value with `stream()` or `bytes()` (per chunk; a value up to
   * 1 MiB read with `bytes()`: once). Reading `path` yourself is not seen.
   */
  onProgress?: ProgressCallback;
  /**
   * Stops a read: before the value is found, the read rejects with the signal's reason; after, a
   * stream of the value ends with it as its error (and `bytes()` rejects with it).
   */
  signal?: AbortSignal;
}

export interface WriteOptions<Throws extends boolean = boolean> {
  /** Labels stored with the value: a list of strings (a lone string is an InvalidLabelsError), added to the preset ones. */
  labels?: readonly string[];
  /** A write no location accepts throws WriteError; false gives null. @default the storage's `error` */
  error?: Throws;
  /**
   * Called as the value is hashed and stored (a stream or a file: per chunk read). A file is then
   * read as a stream rather than copied by the kernel, so that its bytes can be counted.
   */
  onProgress?: ProgressCallback;
  /** Stops a write of a stream or a file: its temp file is removed and the signal's reason thrown. */
  signal?: AbortSignal;
}

/**
 * A content-addressed store: a value's key is the sha256 of its bytes (lowercase hex), and it
 * lives in any composition of locations.
 *
 * `Throws` is its `error` option as a type: `true` (the default) when a missing key or a declined
 * write throws, so `write` resolves to a `Key` and `readBytes` to a `Buffer`; `false` when they give
 * null. A parameter that accepts any storage is a `HashKeyStorage<boolean>`.
 */
export class HashKeyStorage<Throws extends boolean = true> {
  readonly local: Location;
  readonly remote: Location | null;
  private readonly full: Location;
  private readonly fetchDefault: boolean;
  /** Protected, not private: its type must stay in the published declarations, so that a `HashKeyStorage<false>` is not taken for a `HashKeyStorage<true>`. */
  protected readonly errorDefault: Throws;
  private readonly labels: readonly string[];

  constructor(local: LocationLike | readonly LocationLike[], options: HashKeyStorageOptions<Throws> = {}) {
    this.local = resolveLocation(local);
    const remote = options.remote;
    this.remote = remote === undefined || (Array.isArray(remote) && remote.length === 0) ? null : resolveLocation(remote);
    this.full = this.remote ? new Levels(this.local, this.remote) : this.local;
    this.fetchDefault = options.fetch ?? true;
    this.errorDefault = options.error ?? (true as Throws);
    this.labels = checkLabels(options.labels, 'the labels option');
  }

  /**
   * The storage described by a config file: `path`, or the nearest `cairn.config.yaml|yml|json`
   * from the working folder up. Secrets come from the environment (`${env:NAME}`); a bad file is
   * a ConfigError naming the file, line and field. See docs/configuration.md. The file may say
   * `error: false`, so its type is `HashKeyStorage<boolean>`.
   */
  static async fromConfig(path?: string): Promise<HashKeyStorage<boolean>> {
    // loaded on demand: the config code (and the remote kinds it may import) stays out of the core
    const { storageFromConfig } = await import('../config/load.js');
    return storageFromConfig(path);
  }

  /**
   * Stores a value and returns its key. Accepts bytes, a file path, a Readable or an
   * AsyncIterable of bytes; streams are hashed in the same pass that stores them.
   * Resolves to null only when `error: false` and no location accepted the value (hence a `Key`
   * when the storage and the call leave `error` at true).
   */
  async write<T extends boolean = Throws>(value: WriteInput, options: WriteOptions<T> = {}): Promise<OrNull<Key, T>> {
    const labels = [...this.labels, ...checkLabels(options.labels, 'the labels of a write')];
    options.signal?.throwIfAborted();
    const input = options.onProgress || options.signal ? await watched(value, options) : value;
    const staged = await stage(input, this.local.stagingDir?.() ?? null);
    try {
      if ((await this.local.write(staged.key, staged.source, labels)) !== null) return staged.key as OrNull<Key, T>;
    } finally {
      await staged.dispose();
    }
    if (options.error ?? this.errorDefault) {
      throw new WriteError(`No location accepted the value ${staged.key} (full, too large or read-only): ${this.local.name}`, staged.key);
    }
    return null as OrNull<Key, T>;
  }

  /**
   * Calls `fn` with the stored value of `key` and returns what it returns. The value gives
   * `path` (a local file, when there is one), `bytes()` and `stream()`.
   * A missing key throws NotFoundError, or resolves to null with `error: false`. With `onProgress`
   * or `signal`, the value's `stream()` and `bytes()` report what is read and stop on abort.
   */
  async read<R, T extends boolean = Throws>(key: Key, fn: (value: Value) => R | Promise<R>, options: ReadOptions<T> = {}): Promise<OrNull<R, T>> {
    assertKey(key);
    options.signal?.throwIfAborted();
    const value = await this.source(options).read(key);
    if (value === null) return this.missing(key, options);
    options.signal?.throwIfAborted();
    return fn(options.onProgress || options.signal ? watchedValue(value, options) : value) as Promise<OrNull<R, T>>;
  }

  /** The bytes of `key`, verified against it. */
  async readBytes<T extends boolean = Throws>(key: Key, options: ReadOptions<T> = {}): Promise<OrNull<Buffer, T>> {
    if (options.onProgress || options.signal) return this.read(key, (value) => value.bytes(), options);
    assertKey(key);
    const location = this.source(options);
    const bytes = location.readBytes ? await location.readBytes(key) : await (await location.read(key))?.bytes() ?? null;
    if (bytes === null) return this.missing(key, options);
    return bytes as OrNull<Buffer, T>;
  }

  /** True when `key` is stored locally (or remotely, with fetch). */
  async has(key: Key, options: { fetch?: boolean } = {}): Promise<boolean> {
    assertKey(key);
    const location = options.fetch ?? false ? this.full : this.local;
    return location.has ? location.has(key) : (await location.read(key)) !== null;
  }

  /**
   * Whether each of `keys` is stored locally (or remotely, with fetch): yields `[key, present]` for
   * every key once, in order, checking `inFlight` keys at once (on S3 each check is one HEAD, so a
   * batch costs what its slowest requests cost, not the sum of them all). Nothing is marked as used.
   */
  async *hasBatch(keys: Iterable<Key>, options: { fetch?: boolean; inFlight?: number } = {}): AsyncIterable<[Key, boolean]> {
    const list = [...keys];
    list.forEach((key) => assertKey(key));
    const location = options.fetch ?? false ? this.full : this.local;
    yield* inOrder(distinct(list), Math.max(1, options.inFlight ?? 16), (key) => hasKey(location, key));
  }

  /** Removes `key` from the local locations; true when something was removed. */
  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    return this.local.delete(key);
  }

  /** Every key stored locally, with its labels and last-used time. */
  contents(): AsyncIterable<Entry> {
    return this.local.contents();
  }

  /** Pulls `keys` from remote into local; yields [key, found] for each. */
  async *fetch(keys: Iterable<Key>): AsyncIterable<[Key, boolean]> {
    const list = [...keys];
    list.forEach((key) => assertKey(key));
    for await (const [key, value] of this.full.readBatch(list)) yield [key, value !== null];
  }

  async close(): Promise<void> {
    await this.local.close?.();
    await this.remote?.close?.();
  }

  private source(options: ReadOptions): Location {
    return options.fetch ?? this.fetchDefault ? this.full : this.local;
  }

  private missing<R>(key: Key, options: ReadOptions): R {
    if (options.error ?? this.errorDefault) throw new NotFoundError(key);
    // only reached with `error: false`, whose type is R | null
    return null as R;
  }
}

/**
 * Labels as given by a caller: undefined or null (none), or a list of strings. A lone string is
 * refused rather than spread into its characters ('abc' is not ['a', 'b', 'c']), as tarn refuses it.
 */
function checkLabels(labels: unknown, what: string): readonly string[] {
  if (labels === undefined || labels === null) return [];
  if (typeof labels === 'string') {
    throw new InvalidLabelsError(`${what} must be a list of strings, not the string ${JSON.stringify(labels)}: write [${JSON.stringify(labels)}]`);
  }
  if (typeof labels !== 'object' || typeof (labels as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw new InvalidLabelsError(`${what} must be a list of strings, got ${describeValue(labels)}`);
  }
  const list = [...(labels as Iterable<unknown>)];
  const bad = list.findIndex((label) => typeof label !== 'string');
  if (bad !== -1) throw new InvalidLabelsError(`${what} must be a list of strings; it holds ${describeValue(list[bad])}`);
  return list as string[];
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : Object.prototype.toString.call(value);
  return `${typeof value} ${String(value)}`;
}

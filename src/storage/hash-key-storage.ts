import type { Value } from '../blob.js';
import { NotFoundError, WriteError } from '../errors.js';
import { assertKey, type Key } from '../key.js';
import type { Entry, Location, LocationLike } from '../locations/interface.js';
import { Levels } from '../locations/levels.js';
import { resolveLocation } from '../locations/resolve.js';
import type { ProgressCallback } from './maintenance/progress.js';
import { stage, type WriteInput } from './stage.js';
import { watched } from './watched-input.js';

export interface HashKeyStorageOptions {
  /** Locations searched after `local` (a read copies what it finds there into `local`). */
  remote?: LocationLike | readonly LocationLike[];
  /** Search `remote` on reads. @default true */
  fetch?: boolean;
  /** A missing key on read, or a write nobody accepts, throws (NotFoundError, WriteError); false gives null. @default true */
  error?: boolean;
  /** Labels added to every write. @default none */
  labels?: readonly string[];
}

export interface ReadOptions {
  fetch?: boolean;
  error?: boolean;
}

export interface WriteOptions {
  labels?: readonly string[];
  error?: boolean;
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
 */
export class HashKeyStorage {
  readonly local: Location;
  readonly remote: Location | null;
  private readonly full: Location;
  private readonly fetchDefault: boolean;
  private readonly errorDefault: boolean;
  private readonly labels: readonly string[];

  constructor(local: LocationLike | readonly LocationLike[], options: HashKeyStorageOptions = {}) {
    this.local = resolveLocation(local);
    const remote = options.remote;
    this.remote = remote === undefined || (Array.isArray(remote) && remote.length === 0) ? null : resolveLocation(remote);
    this.full = this.remote ? new Levels(this.local, this.remote) : this.local;
    this.fetchDefault = options.fetch ?? true;
    this.errorDefault = options.error ?? true;
    this.labels = options.labels ?? [];
  }

  /**
   * The storage described by a config file: `path`, or the nearest `cairn.config.yaml|yml|json`
   * from the working folder up. Secrets come from the environment (`${env:NAME}`); a bad file is
   * a ConfigError naming the file, line and field. See docs/configuration.md.
   */
  static async fromConfig(path?: string): Promise<HashKeyStorage> {
    // loaded on demand: the config code (and the remote kinds it may import) stays out of the core
    const { storageFromConfig } = await import('../config/load.js');
    return storageFromConfig(path);
  }

  /**
   * Stores a value and returns its key. Accepts bytes, a file path, a Readable or an
   * AsyncIterable of bytes; streams are hashed in the same pass that stores them.
   * Resolves to null only when `error: false` and no location accepted the value.
   */
  async write(value: WriteInput, options: WriteOptions = {}): Promise<Key | null> {
    const labels = [...this.labels, ...(options.labels ?? [])];
    options.signal?.throwIfAborted();
    const input = options.onProgress || options.signal ? await watched(value, options) : value;
    const staged = await stage(input, this.local.stagingDir?.() ?? null);
    try {
      if ((await this.local.write(staged.key, staged.source, labels)) !== null) return staged.key;
    } finally {
      await staged.dispose();
    }
    if (options.error ?? this.errorDefault) {
      throw new WriteError(`No location accepted the value ${staged.key} (full, too large or read-only): ${this.local.name}`, staged.key);
    }
    return null;
  }

  /**
   * Calls `fn` with the stored value of `key` and returns what it returns. The value gives
   * `path` (a local file, when there is one), `bytes()` and `stream()`.
   * A missing key throws NotFoundError, or resolves to null with `error: false`.
   */
  async read<T>(key: Key, fn: (value: Value) => T | Promise<T>, options: ReadOptions = {}): Promise<T | null> {
    assertKey(key);
    const value = await this.source(options).read(key);
    if (value === null) return this.missing(key, options);
    return fn(value);
  }

  /** The bytes of `key`, verified against it. */
  async readBytes(key: Key, options: ReadOptions = {}): Promise<Buffer | null> {
    assertKey(key);
    const location = this.source(options);
    const bytes = location.readBytes ? await location.readBytes(key) : await (await location.read(key))?.bytes() ?? null;
    if (bytes === null) return this.missing(key, options);
    return bytes;
  }

  /** True when `key` is stored locally (or remotely, with fetch). */
  async has(key: Key, options: { fetch?: boolean } = {}): Promise<boolean> {
    assertKey(key);
    const location = options.fetch ?? false ? this.full : this.local;
    return location.has ? location.has(key) : (await location.read(key)) !== null;
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

  private missing(key: Key, options: ReadOptions): null {
    if (options.error ?? this.errorDefault) throw new NotFoundError(key);
    return null;
  }
}

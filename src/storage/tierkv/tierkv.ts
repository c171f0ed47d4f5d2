import { hash } from 'node:crypto';
import { freemem, totalmem } from 'node:os';
import { ConfigError, InvalidValueError, OutOfResourcesError, StorageCorruption } from '../../errors.js';
import type { Key } from '../../key.js';
import { Fanout } from '../../locations/compose/fanout.js';
import type { Location } from '../../locations/interface.js';
import { Level, Levels } from '../../locations/compose/levels.js';
import { Memory } from '../../locations/memory.js';
import { HashKeyStorage } from '../hash-key-storage.js';
import { EncodedMemory } from './encoded.js';
import { FilesystemTier, INLINE_LIMIT, type ReadValue } from './fs-tier.js';
import { type Resource, ResourceFilesystem, ResourceMemory } from './resources.js';
import { type Rec, Slab, TagIndex, tagsOfId } from './tag-index.js';
import { entryId, tagList, type Tags } from './tags.js';
import { ALIGN, fromStored, type StoredValue, toStored, type TierValue, ValueKind } from './value-kinds.js';

export type { StoredValue, TierValue } from './value-kinds.js';

export interface TierKVOptions {
  /** The store's name; each filesystem tier keeps it in `<path>/<name>/`. @default 'default' */
  name?: string;
  /**
   * The tiers, fastest first: at most one ResourceMemory (first), then ResourceFilesystem tiers.
   * @default [new ResourceMemory({ limit: 0.9 })]: memory only, nothing persisted
   */
  resources?: readonly Resource[];
  /** Values read from a slower tier are copied into memory and moved into a faster filesystem tier with room. @default false */
  cache?: boolean;
}

/** Options of `set`. */
export interface TierSetOptions {
  /**
   * false: a memory-only store without compression keeps the caller's buffer itself instead of a
   * copy (as the seed keeps its `bytes`): the caller must not change it afterwards. Stores with
   * filesystem tiers or compression encode the value anyway and ignore it. @default true
   */
  copy?: boolean;
}

/** One tier in `stats()`: where it is, and the entries and bytes (as stored: compressed) it holds. */
export interface TierStats {
  tier: 'memory' | 'filesystem';
  /** 'memory', or the folder of a filesystem tier. */
  where: string;
  /** Entries whose value this tier holds (memory above filesystem tiers: cached copies). */
  entries: number;
  bytes: number;
}

/** What `gc()` (and opening a store) reclaimed: files a killed writer left behind. */
export interface Reclaimed {
  blobs: number;
  tempFiles: number;
  bytes: number;
}

/** Sets that `setMany` keeps in flight at once: they share commits, and memory stays bounded. */
const SET_MANY_WINDOW = 1024;
/** Values `iterate` reads at a time. */
const ITERATE_BATCH = 256;

/** Options of the calls that return values (`get`, `sample`, `getByKey`). */
export interface TierReadOptions {
  /**
   * false: values held in memory are returned as views of the stored bytes instead of copies:
   * no copying, as the seed hands out its `bytes`, but a caller that changes such a buffer
   * changes the stored value. Values read from a filesystem tier are always fresh buffers.
   * @default true
   */
  copy?: boolean;
}

/** Bytes of the first slab of a memory-only store's values; each next one is twice as large, up to SLAB_MAX. */
const SLAB_MIN = 64 * 1024;
const SLAB_MAX = 256 * 1024;

/**
 * The seed notebook's tagged key-value store, built from cairn's parts: the resources become a
 * `Levels` of a `Memory` location (tier 0) over a `Fanout` of filesystem tiers (SQLite for the tag
 * index and small values, `Disk` blobs for large ones), under a `HashKeyStorage` (`storage`).
 *
 * An entry is identified by its set of tags and holds one value. With filesystem tiers an
 * acknowledged `set` is as durable as its tier's `durability` says (journaled: survives
 * `kill -9`; 'power': committed with an fsync; 'exit': saved at close or exit); memory then keeps
 * copies of hot values (it evicts least recently used copies when full: the durable copy stays below).
 */
export class TierKV<V extends StoredValue = Buffer> {
  readonly name: string;
  /** Filesystem tiers, fastest first. */
  readonly tiers: readonly FilesystemTier[];
  readonly cache: boolean;

  private readonly memory: EncodedMemory | null;
  private readonly memoryLimit: number;
  /** Memory-only stores: the fraction of the machine's memory in use above which `set` fails. */
  private readonly memoryFraction: number;
  private usage = { at: -Infinity, fraction: 0, calls: 0 };
  private readonly index = new TagIndex();
  private readonly composed: { levels: Levels; storage: HashKeyStorage };
  /**
   * A memory-only store without compression keeps each value in its index entry and hashes it
   * only when something asks for content keys (`storage`, `levels`, `keyOf`, `locationOf`):
   * then every value is written to the Memory location under its sha256, and from then on
   * each `set` writes there directly.
   */
  private lazy = false;
  /** Bytes of values held by index entries (lazy mode), not yet in the Memory location. */
  private pendingBytes = 0;
  /** Lazy mode: the slab new values are copied into. */
  private slab: Slab | null = null;
  private closed = false;

  private constructor(options: TierKVOptions) {
    this.name = options.name ?? 'default';
    if (!/^[\w.-]+$/.test(this.name) || this.name === '.' || this.name === '..') {
      throw new ConfigError(`Invalid store name ${JSON.stringify(this.name)}: letters, digits, '_', '-' and '.' only`);
    }
    this.cache = options.cache ?? false;
    const resources = options.resources ?? [new ResourceMemory({ limit: 0.9 })];
    resources.forEach((resource, at) => {
      if (resource instanceof ResourceMemory && at > 0) throw new ConfigError('A ResourceMemory can only be the first resource (tier 0)');
      if (!(resource instanceof ResourceMemory) && !(resource instanceof ResourceFilesystem)) {
        throw new ConfigError(`Resource ${at} is neither a ResourceMemory nor a ResourceFilesystem`);
      }
    });
    if (resources.length === 0) throw new ConfigError('A TierKV store needs at least one resource');
    const first = resources[0];
    const fsResources = resources.filter((resource): resource is ResourceFilesystem => resource instanceof ResourceFilesystem);
    const paths = new Set(fsResources.map((resource) => resource.path));
    if (paths.size !== fsResources.length) throw new ConfigError('Two filesystem resources share a path');

    this.memoryLimit = Infinity;
    this.memoryFraction = 1;
    if (first instanceof ResourceMemory) {
      const limit = first.limit;
      const durableBelow = fsResources.length > 0;
      // above filesystem tiers memory is a cache: a limit evicts the least recently used copies
      // (or declines new ones); alone, memory holds the only copy, so `set` checks the limits
      const memory = durableBelow
        ? new Memory({ maxUsage: 'fraction' in limit ? limit.fraction : 1, ...('bytes' in limit ? { maxSize: limit.bytes } : {}) })
        : new Memory();
      if (!durableBelow) {
        if ('bytes' in limit) this.memoryLimit = limit.bytes;
        else this.memoryFraction = limit.fraction;
        this.lazy = first.codec.name === 'none';
      }
      this.memory = new EncodedMemory(memory, first.codec);
    } else {
      this.memory = null;
    }
    this.tiers = fsResources.map((resource) => new FilesystemTier(resource, this.name));
    const levels: Level[] = [];
    if (this.memory) levels.push(new Level(this.memory, { replicate: this.cache, name: 'memory' }));
    if (this.tiers.length > 0) levels.push(new Level(this.tiers.length === 1 ? this.tiers[0]! : new Fanout(...this.tiers)));
    const composed = new Levels(...levels);
    this.composed = { levels: composed, storage: new HashKeyStorage(composed) };
  }

  /** The composition that stores the values (by content key): Levels(Memory, Fanout(tiers…)). */
  get levels(): Levels {
    this.materialise();
    return this.composed.levels;
  }

  /** The composed content-addressed storage, for users who want the values by key. */
  get storage(): HashKeyStorage {
    this.materialise();
    return this.composed.storage;
  }

  /** Opens (or creates) a store and loads its tag index from every filesystem tier. */
  static async open<V extends StoredValue = Buffer>(options: TierKVOptions = {}): Promise<TierKV<V>> {
    const store = new TierKV<V>(options);
    try {
      await store.refresh(true);
      store.gc(); // what a killed writer left behind
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** `await using store = await TierKV.open(…)`: closed when the block is left. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Opens a store, runs `fn` with it and closes it, also when `fn` throws (the seed's `with`). */
  static async with<T, V extends StoredValue = Buffer>(options: TierKVOptions, fn: (store: TierKV<V>) => Promise<T> | T): Promise<T> {
    const store = await TierKV.open<V>(options);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  /**
   * Stores `value` as the entry tagged `tags` (a tag or a list; their order does not matter),
   * replacing the entry's previous value. Resolves with the entry id once the value is durable in
   * the first tier with room (see "Durability" in docs/tierkv.md); throws OutOfResourcesError
   * (store unchanged) when none has room.
   */
  async set(tags: Tags, value: TierValue, options?: TierSetOptions): Promise<string> {
    this.assertOpen();
    const entry = entryId(tags);
    const { bytes, kind } = toStored(value);
    if (this.tiers.length === 0) return this.setInMemory(entry.id, entry.tags, bytes, kind, options?.copy !== false);
    const key = hash('sha256', bytes);
    for (let at = 0; at < this.tiers.length; at++) {
      const tier = this.tiers[at]!;
      // a tier that acknowledges before its fold gets the plain bytes: the fold encodes them
      const { encoded, codec } = tier.defersEncoding ? { encoded: bytes, codec: 'none' } : tier.encode(bytes);
      if (!tier.hasRoom(encoded.length)) continue;
      const put = tier.putEntry(entry.id, key, bytes.length, encoded, codec, kind);
      // a tier that acknowledges at once gives the number itself: no promise to wait for
      const seq = typeof put === 'number' ? put : await put;
      if (seq === null) continue;
      const removal = this.applyPut(
        {
          id: entry.id,
          key,
          value: null,
          at: 0,
          size: bytes.length,
          kind,
          seq,
          tier: at,
          stored: encoded.length,
          blob: encoded.length > INLINE_LIMIT,
          p0: -1,
          p1: -1,
          more: null,
        },
        bytes,
        entry.tags,
      );
      if (removal) await removal;
      return entry.id;
    }
    throw this.outOfResources(entry.id, bytes.length);
  }

  /**
   * Stores many entries, as `set` each (the same checks and durability), with up to 1,024 sets in
   * flight so that they share commits. Resolves with the ids in order; when a set fails, the
   * others still run and the first error is thrown once all have settled.
   */
  async setMany(entries: Iterable<readonly [Tags, TierValue]>): Promise<string[]> {
    this.assertOpen();
    const ids: string[] = [];
    let failure: { error: unknown } | null = null;
    let batch: Promise<void>[] = [];
    for (const [tags, value] of entries) {
      const at = ids.push('') - 1;
      batch.push(
        this.set(tags, value).then(
          (id) => void (ids[at] = id),
          (error: unknown) => void (failure ??= { error }),
        ),
      );
      if (batch.length >= SET_MANY_WINDOW) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    if (failure) throw (failure as { error: unknown }).error;
    return ids;
  }

  /** Every value tagged with any of `tags`, each once; `[]` when none. */
  async get(tags: Tags, options?: TierReadOptions): Promise<V[]> {
    this.assertOpen();
    if (this.tiers.length > 0) await this.refresh(false);
    return this.values(this.index.union(tagList(tags)), options?.copy !== false);
  }

  /**
   * The values tagged with any of `tags`, each once, read ITERATE_BATCH at a time as the loop asks
   * for them (`get` of a million entries builds a million-element array first). The entries are
   * the ones tagged when the iteration starts; one removed meanwhile is skipped.
   */
  async *iterate(tags: Tags, options?: TierReadOptions): AsyncGenerator<V, void, undefined> {
    this.assertOpen();
    if (this.tiers.length > 0) await this.refresh(false);
    const recs = this.index.union(tagList(tags));
    const copy = options?.copy !== false;
    for (let start = 0; start < recs.length; start += ITERATE_BATCH) {
      this.assertOpen();
      const live = recs.slice(start, start + ITERATE_BATCH).filter((rec) => this.index.get(rec.id) === rec);
      yield* await this.values(live, copy);
    }
  }

  /**
   * `k` distinct values tagged with any of `tags` (a tag or a list, as the seed's `sample`),
   * uniformly at random among those entries; all of them when fewer. O(k) for one tag; for
   * several, O(entries of those tags). (The seed drew up to k from each tag in turn.)
   */
  async sample(tags: Tags, k: number, options?: TierReadOptions): Promise<V[]> {
    this.assertOpen();
    if (typeof k !== 'number' || Number.isNaN(k)) throw new InvalidValueError(`sample needs a number of values, not ${String(k)}`);
    const list = tagList(tags);
    if (this.tiers.length > 0) await this.refresh(false);
    return this.values(this.index.sampleAny(list, k), options?.copy !== false);
  }

  /** True when some entry carries any of `tags` (the seed's `has_tags`). */
  async hasTags(tags: Tags): Promise<boolean> {
    this.assertOpen();
    await this.refresh(false);
    return tagList(tags).some((tag) => this.index.hasTag(tag));
  }

  /** The ids of every entry (a JSON array of its sorted tags). */
  async keys(): Promise<string[]> {
    this.assertOpen();
    await this.refresh(false);
    return [...this.index.entries.keys()];
  }

  /** The tags of an entry id, or null. */
  tagsOf(id: string): string[] | null {
    return this.index.get(id) ? tagsOfId(id) : null;
  }

  /** `[value]` of the entry with this id (from `keys()` or `set`), `[]` when there is none. */
  async getByKey(id: string, options?: TierReadOptions): Promise<V[]> {
    this.assertOpen();
    await this.refresh(false);
    const rec = this.index.get(id);
    return rec ? this.values([rec], options?.copy !== false) : [];
  }

  /** Removes the entry tagged exactly `tags`; true when there was one. */
  async delete(tags: Tags): Promise<boolean> {
    this.assertOpen();
    await this.refresh(false);
    const rec = this.index.get(entryId(tags).id);
    if (!rec) return false;
    await this.removeRec(rec);
    return true;
  }

  /**
   * Removes every entry carrying any of `tags` (prunes a tag: `deleteTagged('BLUE')` removes
   * ['BLUE', '1'], ['BLUE', '2'], …); resolves with how many were removed, once committed.
   */
  async deleteTagged(tags: Tags): Promise<number> {
    this.assertOpen();
    await this.refresh(false);
    const recs = this.index.union(tagList(tags));
    for (let start = 0; start < recs.length; start += SET_MANY_WINDOW) {
      await Promise.all(recs.slice(start, start + SET_MANY_WINDOW).map((rec) => this.removeRec(rec)));
    }
    return recs.length;
  }

  /** Per tier, fastest first: where it is, its entries and bytes (compressed as stored). */
  async stats(): Promise<TierStats[]> {
    this.assertOpen();
    await this.refresh(false);
    const out: TierStats[] = [];
    if (this.memory) {
      const alone = this.tiers.length === 0;
      out.push({
        tier: 'memory',
        where: 'memory',
        entries: alone ? this.index.size : this.memory.memory.count,
        bytes: this.memory.size + (alone ? this.pendingBytes : 0),
      });
    }
    for (const tier of this.tiers) out.push({ tier: 'filesystem', where: tier.dir, ...tier.stats() });
    return out;
  }

  /**
   * Reclaims what writers killed mid-write left in the filesystem tiers: blobs no entry names and
   * temp files of processes that no longer run (also done when a store is opened).
   */
  gc(): Reclaimed {
    this.assertOpen();
    const total: Reclaimed = { blobs: 0, tempFiles: 0, bytes: 0 };
    for (const tier of this.tiers) {
      const one = tier.reclaim();
      total.blobs += one.blobs;
      total.tempFiles += one.tempFiles;
      total.bytes += one.bytes;
    }
    return total;
  }

  /** Number of entries. */
  get size(): number {
    return this.index.size;
  }

  /** Waits for queued commits and closes every tier. Memory-only stores lose their values. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const tier of this.tiers) await tier.closeTier();
  }

  // --- internals -----------------------------------------------------------------------------

  private async removeRec(rec: Rec): Promise<void> {
    if (rec.tier >= 0) await this.tiers[rec.tier]!.removeEntry(rec.id, rec.stored);
    if (this.index.get(rec.id) === rec) {
      this.index.remove(rec);
      this.dropValue(rec);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new ConfigError(`The TierKV store ${this.name} is closed`);
  }

  private outOfResources(id: string, size: number): OutOfResourcesError {
    return new OutOfResourcesError(`Every tier of the TierKV store ${this.name} is full: ${id} (${size} bytes) was not stored`);
  }

  /**
   * After an acknowledged put: index, cached copy, and the removal of a copy left in another
   * tier (returned, to be awaited: null when there is none, the common case, with no promise).
   */
  private applyPut(rec: Rec, bytes: Buffer | null, tags?: readonly string[]): Promise<number> | null {
    const current = this.index.get(rec.id);
    if (current && current.seq > rec.seq && current.tier === rec.tier) return null; // a newer set won
    this.index.put(rec, tags, current ?? null);
    if (this.memory && bytes) this.memory.putSync(rec.key!, bytes);
    if (current && current.key !== rec.key) this.dropValue(current);
    if (current && current.tier >= 0 && current.tier !== rec.tier) return this.tiers[current.tier]!.removeEntry(current.id, current.stored);
    return null;
  }

  /** A memory-only set: the value is kept in memory (in its index entry until hashed). */
  private setInMemory(id: string, tags: readonly string[], bytes: Buffer, kind: ValueKind, copy: boolean): string {
    const memory = this.memory!;
    const old = this.index.get(id);
    const size = bytes.length;
    if (this.lazy) {
      // a replaced value's bytes are freed first (as the seed deletes before it sets)
      if (!this.memoryHasRoom(size - (old ? old.size : 0))) throw this.outOfResources(id, size);
      const rec: Rec = { id, key: null, value: null, at: 0, size, kind, seq: 0, tier: -1, stored: size, blob: false, p0: -1, p1: -1, more: null };
      if (copy) this.place(rec, bytes); // a copy, so that the caller may reuse its buffer
      else this.keep(rec, bytes);
      this.index.put(rec, tags, old ?? null);
      if (old) this.dropValue(old);
      return id;
    }
    const key = hash('sha256', bytes);
    // a replaced value's bytes are freed first when no other entry shares them
    const freed = old && old.key !== key && old.key !== null && this.index.refCount(old.key) === 1 ? old.size : 0;
    if (this.index.refCount(key) === 0 && !this.memoryHasRoom(size - freed)) throw this.outOfResources(id, size);
    if (!memory.putSync(key, bytes)) throw this.outOfResources(id, size);
    this.index.put({ id, key, value: null, at: 0, size, kind, seq: 0, tier: -1, stored: size, blob: false, p0: -1, p1: -1, more: null }, tags);
    if (old && old.key !== key) this.dropValue(old);
    return id;
  }

  /** Lazy mode: copies a value into the current slab (a large value gets a slab of its own). */
  private place(rec: Rec, bytes: Uint8Array): void {
    const size = bytes.length;
    let slab = this.slab;
    // values start at multiples of ALIGN: a view of one as a Float64Array needs no copy
    if (slab !== null && rec.kind !== ValueKind.Bytes) slab.used = Math.min(slab.bytes.length, alignUp(slab.used));
    if (size > SLAB_MAX / 4) {
      slab = new Slab(new Uint8Array(size));
    } else if (slab === null || slab.used + size > slab.bytes.length) {
      const next = Math.min(SLAB_MAX, slab === null ? SLAB_MIN : slab.bytes.length * 2);
      slab = this.slab = new Slab(new Uint8Array(next));
    }
    slab.bytes.set(bytes, slab.used);
    rec.value = slab;
    rec.at = slab.used;
    slab.used += size;
    slab.live += size;
    slab.recs.push(rec);
    this.pendingBytes += size;
  }

  /** Lazy mode, `copy: false`: the caller's bytes become a slab of their own (no copy). */
  private keep(rec: Rec, bytes: Uint8Array): void {
    const slab = new Slab(bytes);
    slab.used = slab.live = bytes.length;
    slab.recs.push(rec);
    rec.value = slab;
    rec.at = 0;
    this.pendingBytes += bytes.length;
  }

  /**
   * Lazy mode: a value is no longer needed. A slab that is more than half free moves its
   * remaining values to the current slab, so that removed values do not hold memory for long
   * (each byte is moved at most once per byte freed: amortised O(1) per removal).
   */
  private unplace(rec: Rec): void {
    const slab = rec.value!;
    rec.value = null;
    slab.live -= rec.size;
    this.pendingBytes -= rec.size;
    if (slab === this.slab || slab.live * 2 > slab.used) return;
    const live = slab.recs.filter((moved) => moved.value === slab);
    slab.recs.length = 0;
    slab.live = 0;
    for (const moved of live) {
      this.pendingBytes -= moved.size;
      this.place(moved, slab.bytes.subarray(moved.at, moved.at + moved.size));
    }
  }

  /** Memory-only stores: room for `size` more bytes under the byte limit and the machine's memory under its fraction. */
  private memoryHasRoom(size: number): boolean {
    if (this.memory!.size + this.pendingBytes + size > this.memoryLimit) return false;
    if (this.memoryFraction < 1) {
      // reading the machine's memory use costs a syscall: at most every 250 ms, as Memory does
      // (and the clock is read only every 16th set: a soft limit, and a set takes microseconds)
      if ((this.usage.calls++ & 15) === 0) {
        const now = performance.now();
        if (now - this.usage.at > 250) this.usage = { at: now, fraction: 1 - freemem() / totalmem(), calls: 1 };
      }
      if (this.usage.fraction >= this.memoryFraction) return false;
    }
    return true;
  }

  /** Frees the memory copy of a removed or replaced entry's value when no entry holds it any more. */
  private dropValue(rec: Rec): void {
    if (rec.value !== null) return this.unplace(rec);
    if (this.memory && rec.key !== null && this.index.refCount(rec.key) === 0) void this.memory.delete(rec.key);
  }

  /** Lazy mode ends: every value held by an index entry is hashed and written to the Memory location. */
  private materialise(): void {
    if (!this.lazy) return;
    this.lazy = false;
    for (const rec of this.index.entries.values()) {
      if (rec.value === null) continue;
      const bytes = Buffer.from(rec.value.bytes.buffer, rec.value.bytes.byteOffset + rec.at, rec.size);
      const key = hash('sha256', bytes);
      // the Memory of a memory-only store has no limits of its own (`set` checked them): never declines
      this.memory!.putSync(key, bytes);
      this.index.setKey(rec, key);
      rec.value = null;
    }
    this.pendingBytes = 0;
    this.slab = null;
  }

  /** Brings the index up to date with what any process committed to the filesystem tiers. */
  private async refresh(initial: boolean): Promise<void> {
    const stale: { tier: number; id: string; stored: number }[] = [];
    this.tiers.forEach((tier, at) => {
      const changes = tier.changes();
      if (!changes) return;
      // rows of one tier name distinct entries: into an empty index, none needs a look-up
      const empty = this.index.size === 0;
      for (const [id, key, seq, size, stored, blob, kind] of changes.rows) {
        const current = empty ? undefined : this.index.get(id);
        if (current && current.tier === at && current.seq >= seq) continue;
        if (current && current.seq > seq) {
          // an older copy left in another tier by a move interrupted by a crash
          if (initial) stale.push({ tier: at, id, stored });
          continue;
        }
        if (current && initial && current.tier !== at) stale.push({ tier: current.tier, id: current.id, stored: current.stored });
        const rec: Rec = { id, key, value: null, at: 0, size, kind, seq, tier: at, stored, blob: blob === 1, p0: -1, p1: -1, more: null };
        const replaced = this.index.put(rec, undefined, current ?? null);
        // another process replaced the entry: a memory copy of the old value is no longer needed
        if (replaced && replaced.key !== key) this.dropValue(replaced);
      }
      for (const [id, seq] of changes.removed) {
        const current = this.index.get(id);
        if (current && current.tier === at && current.seq <= seq) {
          this.index.remove(current);
          this.dropValue(current);
        }
      }
    });
    for (const { tier, id, stored } of stale) await this.tiers[tier]!.removeEntry(id, stored, false);
  }

  /**
   * The values of `recs`, in order, each as the type it was given as: those held in memory first
   * (copied into one block for the caller, each at an aligned offset, or as views with `copy`
   * false), the rest from their tiers (batched, verified).
   */
  private values(recs: readonly Rec[], copy: boolean): V[] | Promise<V[]> {
    const count = recs.length;
    const out: (Buffer | null)[] = new Array(count);
    const memory = this.memory;
    let total = 0;
    let missing = 0;
    let typed = false;
    for (let at = 0; at < count; at++) {
      const rec = recs[at]!;
      if (rec.kind !== ValueKind.Bytes) typed = true;
      const slab = rec.value;
      if (slab !== null) {
        total += rec.size;
        // a view of the slab: its bytes at rec.at are never written again (slabs only grow)
        if (!copy) out[at] = Buffer.from(slab.bytes.buffer, slab.bytes.byteOffset + rec.at, rec.size);
        continue;
      }
      const bytes = memory !== null && rec.key !== null ? memory.peek(rec.key) : null;
      out[at] = bytes;
      if (bytes === null) missing++;
      else total += bytes.length;
    }
    if (copy) {
      // one allocation for every copy: the caller gets its own bytes, never the stored ones
      const block = Buffer.allocUnsafeSlow(total + (typed ? count * ALIGN : 0));
      let offset = 0;
      for (let at = 0; at < count; at++) {
        const rec = recs[at]!;
        const slab = rec.value;
        const bytes = slab !== null ? slab.bytes.subarray(rec.at, rec.at + rec.size) : out[at];
        if (bytes === null || bytes === undefined) continue;
        if (rec.kind !== ValueKind.Bytes) offset = alignUp(offset);
        block.set(bytes, offset);
        out[at] = block.subarray(offset, (offset += bytes.length));
      }
    }
    if (missing === 0) return (typed ? typedValues(recs, out as Buffer[]) : out) as V[];
    return this.valuesFromTiers(recs, out);
  }

  /** The values `values` found in no memory copy, read from each tier's SQLite file in one query. */
  private async valuesFromTiers(recs: readonly Rec[], out: (Buffer | null)[]): Promise<V[]> {
    const missing = new Map<number, number[]>();
    recs.forEach((rec, at) => {
      if (out[at] !== null || rec.tier < 0) return;
      const list = missing.get(rec.tier) ?? [];
      list.push(at);
      missing.set(rec.tier, list);
    });
    const kinds: ValueKind[] = recs.map((rec) => rec.kind);
    const promote: Promise<void>[] = [];
    for (const [tierAt, positions] of missing) {
      const { found, corrupt } = await this.tiers[tierAt]!.readEntries(positions.map((at) => recs[at]!.id));
      for (const at of positions) {
        const rec = recs[at]!;
        let value: ReadValue | null = found.get(rec.id) ?? null;
        const damage = corrupt.get(rec.id);
        if (damage) value = await this.heal(rec, tierAt, damage);
        out[at] = value?.bytes ?? null;
        // another process may have replaced the entry since our index saw it: its row says the type
        if (value) kinds[at] = value.kind;
        if (value && this.cache && value.key === rec.key) promote.push(this.promote(rec, value.bytes));
      }
    }
    await Promise.all(promote);
    const values: V[] = [];
    for (let at = 0; at < out.length; at++) {
      const bytes = out[at];
      if (bytes !== null && bytes !== undefined) values.push(fromStored(bytes, kinds[at]!) as V);
    }
    return values;
  }

  /**
   * A value whose stored bytes in tier `tierAt` do not hash to its key: another copy (in memory,
   * or in another tier, verified too) is returned and written back over the damaged one; with
   * none, the StorageCorruption is thrown. A corrupted value is never returned.
   */
  private async heal(rec: Rec, tierAt: number, damage: StorageCorruption): Promise<ReadValue> {
    const key = damage.key;
    let bytes: Buffer | null = this.memory?.peek(key) ?? null;
    for (let at = 0; bytes === null && at < this.tiers.length; at++) {
      if (at === tierAt) continue;
      bytes = await this.tiers[at]!.readBytes(key).catch((error: unknown) => {
        if (error instanceof StorageCorruption) return null;
        throw error;
      });
    }
    if (bytes === null) throw damage;
    const tier = this.tiers[tierAt]!;
    const { encoded, codec } = tier.encode(bytes);
    // rewritten in place when the entry still holds that value (a fresh row, same content)
    const now = this.index.get(rec.id);
    if (now && now.key === key && now.tier === tierAt) {
      const seq = await tier.putEntry(rec.id, key, bytes.length, encoded, codec, now.kind);
      if (seq !== null) this.index.put({ ...now, seq, stored: encoded.length, blob: encoded.length > INLINE_LIMIT, p0: -1, p1: -1, more: null });
    }
    return { key, bytes, kind: rec.kind };
  }

  /** cache: true: a value read from a filesystem tier is copied into memory and moved to a faster tier with room. */
  private async promote(rec: Rec, bytes: Buffer): Promise<void> {
    if (this.memory) this.memory.putSync(rec.key!, bytes);
    for (let at = 0; at < rec.tier; at++) {
      const tier = this.tiers[at]!;
      const { encoded, codec } = tier.encode(bytes);
      if (!tier.hasRoom(encoded.length)) continue;
      const seq = await tier.putEntry(rec.id, rec.key!, rec.size, encoded, codec, rec.kind);
      if (seq === null) continue;
      const now = this.index.get(rec.id);
      if (now !== rec) {
        // replaced or removed meanwhile: our copy is stale (unless the new value went to this tier)
        if (!now || now.tier !== at) await tier.removeEntry(rec.id, encoded.length, false);
        return;
      }
      await this.applyPut({ ...rec, seq, tier: at, stored: encoded.length, blob: encoded.length > INLINE_LIMIT, p0: -1, p1: -1, more: null }, null);
      return;
    }
  }

  /** The Location a value lives in, for tools: the memory tier or a filesystem tier. */
  locationOf(id: string): Location | null {
    this.materialise();
    const rec = this.index.get(id);
    if (!rec) return null;
    if (rec.tier < 0) return this.memory;
    return this.tiers[rec.tier]!;
  }

  /** Content key of an entry's value (reachable through `storage`). */
  keyOf(id: string): Key | null {
    this.materialise();
    return this.index.get(id)?.key ?? null;
  }
}

function alignUp(offset: number): number {
  return (offset + ALIGN - 1) & -ALIGN;
}

/** Buffers as the types their entries were given as. */
function typedValues(recs: readonly Rec[], bytes: readonly Buffer[]): StoredValue[] {
  const out: StoredValue[] = new Array(bytes.length);
  for (let at = 0; at < bytes.length; at++) out[at] = fromStored(bytes[at]!, recs[at]!.kind);
  return out;
}

import { hash } from 'node:crypto';
import { bufferBlob, type Source } from '../../blob.js';
import { ConfigError, InvalidValueError, OutOfResourcesError } from '../../errors.js';
import type { Key } from '../../key.js';
import { Fanout } from '../../locations/fanout.js';
import type { Location } from '../../locations/interface.js';
import { Level, Levels } from '../../locations/levels.js';
import { Memory } from '../../locations/memory.js';
import { HashKeyStorage } from '../hash-key-storage.js';
import { EncodedMemory } from './encoded.js';
import { FilesystemTier, INLINE_LIMIT } from './fs-tier.js';
import { type Resource, ResourceFilesystem, ResourceMemory } from './resources.js';
import { type Rec, TagIndex, tagsOfId } from './tag-index.js';
import { entryId, tagList, type Tags } from './tags.js';

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

/** What `set` accepts as a value. */
export type TierValue = Uint8Array | string;

function toBuffer(value: TierValue): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  throw new InvalidValueError(`A TierKV value must be a Uint8Array or a string, not ${Object.prototype.toString.call(value)}`);
}

/**
 * The seed notebook's tagged key-value store, built from cairn's parts: the resources become a
 * `Levels` of a `Memory` location (tier 0) over a `Fanout` of filesystem tiers (SQLite for the tag
 * index and small values, `Disk` blobs for large ones), under a `HashKeyStorage` (`storage`).
 *
 * An entry is identified by its set of tags and holds one value. With filesystem tiers every
 * acknowledged `set` is committed before it resolves; memory then keeps copies of hot values
 * (it evicts least recently used copies when full: the durable copy stays below).
 */
export class TierKV {
  readonly name: string;
  /** The composition that stores the values (by content key): Levels(Memory, Fanout(tiers…)). */
  readonly levels: Levels;
  /** The composed content-addressed storage, for users who want the values by key. */
  readonly storage: HashKeyStorage;
  /** Filesystem tiers, fastest first. */
  readonly tiers: readonly FilesystemTier[];
  readonly cache: boolean;

  private readonly memory: EncodedMemory | null;
  private readonly memoryLimit: number;
  private readonly index = new TagIndex();
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
    if (first instanceof ResourceMemory) {
      const limit = first.limit;
      const durableBelow = fsResources.length > 0;
      // above filesystem tiers memory is a cache: a byte limit evicts the least recently used
      // copies; alone, memory holds the only copy, so the limit is checked by `set` instead
      const memory = new Memory({
        maxUsage: 'fraction' in limit ? limit.fraction : 1,
        ...('bytes' in limit && durableBelow ? { maxSize: limit.bytes } : {}),
      });
      if ('bytes' in limit && !durableBelow) this.memoryLimit = limit.bytes;
      this.memory = new EncodedMemory(memory, first.codec);
    } else {
      this.memory = null;
    }
    this.tiers = fsResources.map((resource) => new FilesystemTier(resource, this.name));
    const levels: Level[] = [];
    if (this.memory) levels.push(new Level(this.memory, { replicate: this.cache, name: 'memory' }));
    if (this.tiers.length > 0) levels.push(new Level(this.tiers.length === 1 ? this.tiers[0]! : new Fanout(...this.tiers)));
    this.levels = new Levels(...levels);
    this.storage = new HashKeyStorage(this.levels);
  }

  /** Opens (or creates) a store and loads its tag index from every filesystem tier. */
  static async open(options: TierKVOptions = {}): Promise<TierKV> {
    const store = new TierKV(options);
    try {
      await store.refresh(true);
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** Opens a store, runs `fn` with it and closes it, also when `fn` throws (the seed's `with`). */
  static async with<T>(options: TierKVOptions, fn: (store: TierKV) => Promise<T> | T): Promise<T> {
    const store = await TierKV.open(options);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }

  /**
   * Stores `value` as the entry tagged `tags` (a tag or a list; their order does not matter),
   * replacing the entry's previous value. Resolves with the entry id once the value is committed
   * to the first tier with room; throws OutOfResourcesError (store unchanged) when none has room.
   */
  async set(tags: Tags, value: TierValue): Promise<string> {
    this.assertOpen();
    const entry = entryId(tags);
    const bytes = toBuffer(value);
    const key = hash('sha256', bytes);
    const source: Source = { ...bufferBlob(bytes), verified: true };
    if (this.tiers.length === 0) {
      const memory = this.memory!;
      const old = this.index.get(entry.id);
      const known = this.index.refCount(key) > 0;
      if (!known && memory.size + bytes.length > this.memoryLimit) throw this.outOfResources(entry.id, bytes.length);
      if (!(await memory.write(key, source))) throw this.outOfResources(entry.id, bytes.length);
      this.index.put({ id: entry.id, key, size: bytes.length, seq: 0, tier: -1, stored: bytes.length, blob: false, pos: [] });
      if (old && old.key !== key && this.index.refCount(old.key) === 0) await memory.delete(old.key);
      return entry.id;
    }
    const tagsJson = entry.id;
    for (let at = 0; at < this.tiers.length; at++) {
      const tier = this.tiers[at]!;
      const { encoded, codec } = tier.encode(bytes);
      if (!tier.hasRoom(encoded.length)) continue;
      const seq = await tier.putEntry(entry.id, tagsJson, key, bytes.length, encoded, codec);
      if (seq === null) continue;
      await this.applyPut(
        { id: entry.id, key, size: bytes.length, seq, tier: at, stored: encoded.length, blob: encoded.length > INLINE_LIMIT, pos: [] },
        bytes,
      );
      return entry.id;
    }
    throw this.outOfResources(entry.id, bytes.length);
  }

  /** Every value tagged with any of `tags`, each once; `[]` when none. */
  async get(tags: Tags): Promise<Buffer[]> {
    this.assertOpen();
    await this.refresh(false);
    return this.values(this.index.union(tagList(tags)));
  }

  /** `k` distinct values tagged `tag`, uniformly at random; all of them when fewer. Costs O(k). */
  async sample(tag: string, k: number): Promise<Buffer[]> {
    this.assertOpen();
    if (typeof tag !== 'string') throw new InvalidValueError('sample takes one tag');
    await this.refresh(false);
    return this.values(this.index.sample(tag, k));
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
  async getByKey(id: string): Promise<Buffer[]> {
    this.assertOpen();
    await this.refresh(false);
    const rec = this.index.get(id);
    return rec ? this.values([rec]) : [];
  }

  /** Removes the entry tagged exactly `tags`; true when there was one. */
  async delete(tags: Tags): Promise<boolean> {
    this.assertOpen();
    await this.refresh(false);
    const rec = this.index.get(entryId(tags).id);
    if (!rec) return false;
    if (rec.tier >= 0) await this.tiers[rec.tier]!.removeEntry(rec.id, rec.stored);
    if (this.index.get(rec.id) === rec) this.index.remove(rec);
    if (this.memory && this.index.refCount(rec.key) === 0) await this.memory.delete(rec.key);
    return true;
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

  private assertOpen(): void {
    if (this.closed) throw new ConfigError(`The TierKV store ${this.name} is closed`);
  }

  private outOfResources(id: string, size: number): OutOfResourcesError {
    return new OutOfResourcesError(`Every tier of the TierKV store ${this.name} is full: ${id} (${size} bytes) was not stored`);
  }

  /** After a committed put: index, cached copy, and removal of a copy left in another tier. */
  private async applyPut(rec: Rec, bytes: Buffer | null): Promise<void> {
    const current = this.index.get(rec.id);
    if (current && current.seq > rec.seq && current.tier === rec.tier) return; // a newer set won
    this.index.put(rec);
    if (this.memory && bytes) await this.memory.write(rec.key, { ...bufferBlob(bytes), verified: true });
    if (current && current.tier >= 0 && current.tier !== rec.tier) {
      await this.tiers[current.tier]!.removeEntry(current.id, current.stored);
    }
    if (current && this.memory && current.key !== rec.key && this.index.refCount(current.key) === 0) {
      await this.memory.delete(current.key);
    }
  }

  /** Brings the index up to date with what any process committed to the filesystem tiers. */
  private async refresh(initial: boolean): Promise<void> {
    const stale: { tier: number; id: string; stored: number }[] = [];
    this.tiers.forEach((tier, at) => {
      const changes = tier.changes();
      if (!changes) return;
      for (const row of changes.rows) {
        const current = this.index.get(row.id);
        if (current && current.tier === at && current.seq >= row.seq) continue;
        if (current && current.seq > row.seq) {
          // an older copy left in another tier by a move interrupted by a crash
          if (initial) stale.push({ tier: at, id: row.id, stored: row.stored });
          continue;
        }
        if (current && initial && current.tier !== at) stale.push({ tier: current.tier, id: current.id, stored: current.stored });
        this.index.put({ id: row.id, key: row.key, size: row.size, seq: row.seq, tier: at, stored: row.stored, blob: row.blob === 1, pos: [] });
      }
      for (const [id, seq] of changes.removed) {
        const current = this.index.get(id);
        if (current && current.tier === at && current.seq <= seq) this.index.remove(current);
      }
    });
    for (const { tier, id, stored } of stale) await this.tiers[tier]!.removeEntry(id, stored, false);
  }

  /** The values of `recs`, in order: memory copies first, the rest from their tiers (batched). */
  private async values(recs: readonly Rec[]): Promise<Buffer[]> {
    const out: (Buffer | null)[] = new Array(recs.length).fill(null);
    const missing = new Map<number, number[]>();
    if (this.memory) {
      let total = 0;
      const found: (Buffer | null)[] = recs.map((rec) => {
        const bytes = this.memory!.peek(rec.key);
        if (bytes) total += bytes.length;
        return bytes;
      });
      // one allocation for every copy: the caller gets its own bytes, never the stored ones
      const block = Buffer.allocUnsafe(total);
      let offset = 0;
      found.forEach((bytes, at) => {
        if (bytes === null) return;
        bytes.copy(block, offset);
        out[at] = block.subarray(offset, (offset += bytes.length));
      });
    }
    recs.forEach((rec, at) => {
      if (out[at] !== null || rec.tier < 0) return;
      const list = missing.get(rec.tier) ?? [];
      list.push(at);
      missing.set(rec.tier, list);
    });
    const promote: Promise<void>[] = [];
    for (const [tierAt, positions] of missing) {
      const found = await this.tiers[tierAt]!.readEntries(positions.map((at) => recs[at]!.id));
      for (const at of positions) {
        const rec = recs[at]!;
        const bytes = found.get(rec.id) ?? null;
        out[at] = bytes;
        if (bytes && this.cache) promote.push(this.promote(rec, bytes));
      }
    }
    await Promise.all(promote);
    return out.filter((bytes): bytes is Buffer => bytes !== null);
  }

  /** cache: true: a value read from a filesystem tier is copied into memory and moved to a faster tier with room. */
  private async promote(rec: Rec, bytes: Buffer): Promise<void> {
    if (this.memory) await this.memory.write(rec.key, { ...bufferBlob(bytes), verified: true });
    for (let at = 0; at < rec.tier; at++) {
      const tier = this.tiers[at]!;
      const { encoded, codec } = tier.encode(bytes);
      if (!tier.hasRoom(encoded.length)) continue;
      const seq = await tier.putEntry(rec.id, rec.id, rec.key, rec.size, encoded, codec);
      if (seq === null) continue;
      const now = this.index.get(rec.id);
      if (now !== rec) {
        // replaced or removed meanwhile: our copy is stale (unless the new value went to this tier)
        if (!now || now.tier !== at) await tier.removeEntry(rec.id, encoded.length, false);
        return;
      }
      await this.applyPut({ ...rec, seq, tier: at, stored: encoded.length, blob: encoded.length > INLINE_LIMIT, pos: [] }, null);
      return;
    }
  }

  /** The Location a value lives in, for tools: the memory tier or a filesystem tier. */
  locationOf(id: string): Location | null {
    const rec = this.index.get(id);
    if (!rec) return null;
    if (rec.tier < 0) return this.memory;
    return this.tiers[rec.tier]!;
  }

  /** Content key of an entry's value (reachable through `storage`). */
  keyOf(id: string): Key | null {
    return this.index.get(id)?.key ?? null;
  }
}

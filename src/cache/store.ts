/**
 * Where smartCache keeps its entries, as tarn's PickleKeyStorage: an EntryIndex (call key → a
 * small self-checking entry, with what eviction and explain() need beside it) and a
 * HashKeyStorage for the parts of results, so equal parts are stored once.
 *
 * An entry is `MAGIC, FORMAT, sha256(payload), payload`. A torn or corrupted entry fails its
 * checksum and an entry of another format is never decoded: both are misses, recomputed and
 * overwritten.
 *
 * Beside the entries of calls, the index keeps one record per function and digest (the digests of
 * its code and dependencies, for explain()); records have an empty `args` and are not counted as
 * entries by clear, eviction or du.
 */
import crypto, { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Decoder, Encoder } from 'cbor-x';
import { CairnError, ConfigError, InvalidKeyError, InvalidValueError, StorageCorruption } from '../errors.js';
import type { Key } from '../key.js';
import type { LocationLike } from '../locations/interface.js';
import { Disk } from '../locations/disk/disk.js';
import { Memory } from '../locations/memory.js';
import { isLocation, resolveLocation } from '../locations/resolve.js';
import { HashKeyStorage } from '../storage/hash-key-storage.js';
import { adminOf } from '../locations/admin.js';
import { administered, disks, leaves } from '../storage/maintenance/leaves.js';
import type { EntryIndex, EntryMeta } from './entry-index.js';
import { indexFor } from './index-for.js';
import { MemoryIndex } from './index-memory.js';
import { joinValue, type Split, splitValue } from './serialize.js';

/** Where a smartCache lives: a folder, a HashKeyStorage (of either `error` mode), or an index and a storage. */
export type CacheWhere =
  | string
  | HashKeyStorage<boolean>
  | { index: EntryIndex | LocationLike; storage: HashKeyStorage<boolean> | LocationLike | readonly LocationLike[] };

const MAGIC = Buffer.from('cairn.sc');
/**
 * Bump when the entry layout changes: older entries are then recomputed, never misread.
 * 2: entries live in an EntryIndex (the append-only log and folder index of format 1 are not read).
 */
export const ENTRY_FORMAT = 2;
const HEADER = MAGIC.length + 1 + 32;
/** Bodies up to this size live in the index entry itself: a hit is then a single read. */
const INLINE_BODY = 32 * 1024;

// crypto.hash (Node >= 20.12) checks a small entry in one call: a hit spends less time there
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : null;
const sha256 = (bytes: Uint8Array): Buffer => (oneShot ? (oneShot('sha256', bytes, 'buffer') as unknown as Buffer) : createHash('sha256').update(bytes).digest());

const encoder = new Encoder({ useRecords: false });
const decoder = new Decoder({ useRecords: false });

interface EntryPayload {
  /** The body, when it is small. */
  b?: Uint8Array;
  /** The key of the body in storage, when it is not. */
  k?: string;
  /** Keys of the parts. */
  p: string[];
}

export interface Record {
  name: string;
  digest: string;
  /** Path (`(code)`, `helper`, `helper > inner`, `version`, `deps[0]`) -> digest. */
  entries: [string, string][];
}

/** What the caller knows of an entry it stores: whose it is and under which digests. */
export type EntryOwner = Omit<EntryMeta, 'size'>;

export type EntryRead =
  | { status: 'hit'; value: unknown }
  | { status: 'missing' }
  | { status: 'corrupt'; reason: string; error?: unknown }
  | { status: 'outdated'; reason: string };

export function envelope(payload: unknown): Buffer {
  const body = encoder.encode(payload);
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header, 0);
  header[MAGIC.length] = ENTRY_FORMAT;
  sha256(body).copy(header, MAGIC.length + 1);
  return Buffer.concat([header, body]);
}

function open(bytes: Buffer): { payload: unknown } | { status: 'corrupt' | 'outdated'; reason: string } {
  if (bytes.length < HEADER || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    return { status: 'corrupt', reason: 'the entry is truncated or not a smartCache entry' };
  }
  const format = bytes[MAGIC.length];
  if (format !== ENTRY_FORMAT) return { status: 'outdated', reason: `the entry has format ${format}, this version reads ${ENTRY_FORMAT}` };
  const body = bytes.subarray(HEADER);
  if (!sha256(body).equals(bytes.subarray(MAGIC.length + 1, HEADER))) {
    return { status: 'corrupt', reason: 'the entry fails its checksum' };
  }
  return { payload: decoder.decode(body) };
}

/** Records are entries with no arguments: no call has an empty arguments digest. */
export const RECORD_ARGS = '';

export function recordKey(name: string, digest: string): Key {
  return createHash('sha256').update(`cairn.smartCache.record/2\n${name}\n${digest}`).digest('hex');
}

function isEntryIndex(value: unknown): value is EntryIndex {
  const index = value as Partial<EntryIndex> | null;
  return typeof index === 'object' && index !== null && ['get', 'put', 'delete', 'entries', 'digestsFor', 'touch', 'close'].every((name) => typeof index[name as keyof EntryIndex] === 'function');
}

/** The local store a HashKeyStorage's index lives in: its first Disk, else its first other local store (Packed). */
function indexHome(storage: HashKeyStorage<boolean>) {
  return adminOf(disks(storage.local)[0] ?? administered(storage.local)[0]?.location ?? storage.local);
}

/** The index for a HashKeyStorage: in its first local store (a Disk first), in memory beside a Memory, else none. */
function indexBeside(storage: HashKeyStorage<boolean>, fsync: boolean): EntryIndex {
  const local = leaves(storage.local);
  const home = indexHome(storage);
  if (home) return indexFor(home.location, { fsync });
  if (local.length > 0 && local.every((location) => location instanceof Memory)) return new MemoryIndex();
  throw new ConfigError(
    `smartCache cannot keep its index in ${storage.local.name} (no local Disk): pass { index, storage } with index a folder (or an EntryIndex) and storage this HashKeyStorage`,
  );
}

const folders = new Map<string, Store>();
const beside = new WeakMap<HashKeyStorage<boolean>, Store>();

export class Store {
  /** One in-flight computation per key in this process. */
  readonly inflight = new Map<string, Promise<unknown>>();
  /** Parts being written by this process: not orphans even when no entry names them yet. */
  readonly writing = new Map<Key, number>();
  /** Work started in the background (eviction): close() waits for it. */
  readonly background = new Set<Promise<unknown>>();
  /** When limits were last applied (ms since the epoch). */
  lastReduce = 0;

  private current: HashKeyStorage<boolean> | null;
  private readonly make: (() => HashKeyStorage<boolean>) | null;

  constructor(
    readonly index: EntryIndex,
    /** The storage, or how to make it at its first use (a hit of a small result needs none). */
    storage: HashKeyStorage<boolean> | (() => HashKeyStorage<boolean>),
    readonly folder: string | null,
    /** The storage was made for this cache (a folder's): close() closes it. */
    readonly ownsStorage = false,
    private readonly fsync = false,
  ) {
    this.current = storage instanceof HashKeyStorage ? storage : null;
    this.make = storage instanceof HashKeyStorage ? null : storage;
  }

  get storage(): HashKeyStorage<boolean> {
    this.current ??= this.make!();
    return this.current;
  }

  /**
   * The storage to write parts into. A cache folder removed under this process (rm -rf) took its
   * storage folder along: a Disk made again recreates it (the index notices on its own).
   */
  private writable(): HashKeyStorage<boolean> {
    const folder = adminOf(this.storage.local)?.folder;
    if (this.ownsStorage && folder !== undefined && !existsSync(folder)) {
      const old = this.storage;
      this.current = new HashKeyStorage(new Disk(folder, { fsync: this.fsync }));
      void old.close().catch(() => undefined);
    }
    return this.storage;
  }

  /** The store for `where`; a folder's (or a HashKeyStorage's) store is shared by every smartCache on it. */
  static of(where: CacheWhere, fsync: boolean): Store {
    if (typeof where === 'string') {
      const folder = resolve(where);
      let store = folders.get(folder);
      if (!store) {
        store = new Store(indexFor(folder, { fsync }), () => new HashKeyStorage(new Disk(join(folder, 'storage'), { fsync })), folder, true, fsync);
        folders.set(folder, store);
      }
      return store;
    }
    if (where instanceof HashKeyStorage) {
      let store = beside.get(where);
      if (!store) {
        store = new Store(indexBeside(where, fsync), where, indexHome(where)?.folder ?? null);
        beside.set(where, store);
      }
      return store;
    }
    if (typeof where === 'object' && where !== null && 'index' in where && 'storage' in where) {
      const storage = where.storage instanceof HashKeyStorage ? where.storage : new HashKeyStorage(where.storage);
      if (isEntryIndex(where.index)) return new Store(where.index, storage, null);
      const index = typeof where.index === 'string' ? indexFor(where.index, { fsync }) : indexFor(resolveLocation(where.index), { fsync });
      return new Store(index, storage, typeof where.index === 'string' ? resolve(where.index) : null);
    }
    if (isLocation(where)) {
      throw new ConfigError('smartCache needs a folder, a HashKeyStorage or { index, storage }, not a bare location');
    }
    throw new ConfigError(`smartCache: cannot use ${Object.prototype.toString.call(where)} as a cache`);
  }

  /**
   * The hit of a small result without waiting: an entry of a local index whose body is inline and
   * has no parts; 'missing' when the index has no entry for `key`. Anything else (a corrupted
   * entry, parts to read, an error, an index far away) is undefined: the caller then takes the
   * full path, `read`, which says what happened.
   */
  readQuick(key: Key): { value: unknown } | 'missing' | undefined {
    if (!this.index.getSync) return undefined;
    try {
      const bytes = this.index.getSync(key);
      if (bytes === null) return 'missing';
      const opened = open(bytes);
      if (!('payload' in opened)) return undefined;
      const payload = opened.payload as EntryPayload;
      if (payload.b === undefined || payload.p.length > 0) return undefined;
      const value = joinValue(payload.b, []);
      this.index.touch(key);
      return { value };
    } catch {
      return undefined;
    }
  }

  /**
   * Stores a result that has no parts and a small body without waiting (a local index only):
   * true when stored, or the split result for `write` when it does not fit that case. Failures throw.
   */
  writeQuick(key: Key, value: unknown, minPart: number, owner: EntryOwner): true | Split {
    const split = splitValue(value, minPart);
    if (!this.index.putSync || split.parts.length > 0 || split.body.length > INLINE_BODY) return split;
    const entry = envelope({ p: [], b: split.body });
    this.index.putSync(key, entry, { ...owner, size: entry.length }, []);
    return true;
  }

  /** Reads an entry. Corruption anywhere (entry, body, parts) is a status, never an exception. */
  async read(key: Key): Promise<EntryRead> {
    let bytes: Buffer | null;
    try {
      bytes = await this.index.get(key);
    } catch (error) {
      if (error instanceof StorageCorruption) return { status: 'corrupt', reason: error.message, error };
      throw error;
    }
    if (bytes === null) return { status: 'missing' };
    const opened = open(bytes);
    if (!('payload' in opened)) return opened;
    try {
      const payload = opened.payload as EntryPayload;
      let body = payload.b;
      if (body === undefined) {
        const stored = typeof payload.k === 'string' ? await this.storage.readBytes(payload.k, { error: false }) : null;
        if (stored === null) return { status: 'corrupt', reason: 'the body of the result is missing from storage' };
        body = stored;
      }
      const parts: Buffer[] = [];
      for (const part of payload.p) {
        const stored = await this.storage.readBytes(part, { error: false });
        if (stored === null) return { status: 'corrupt', reason: `the part ${part} is missing from storage` };
        parts.push(stored);
      }
      const value = joinValue(body, parts);
      this.index.touch(key);
      return { status: 'hit', value };
    } catch (error) {
      // a failing location (permissions, I/O, network) is an error; bad bytes are a miss to repair
      if (error instanceof CairnError && !(error instanceof StorageCorruption) && !(error instanceof InvalidValueError) && !(error instanceof InvalidKeyError)) {
        throw error;
      }
      return { status: 'corrupt', reason: `the stored result cannot be read: ${(error as Error).message}`, error };
    }
  }

  private async writePart(bytes: Uint8Array, keys: Key[]): Promise<boolean> {
    const stored = await this.writable().write(bytes, { error: false });
    if (stored === null) return false;
    // held until the entry that names it is in the index (see reduce.ts)
    this.writing.set(stored, (this.writing.get(stored) ?? 0) + 1);
    keys.push(stored);
    return true;
  }

  /** Stores a result; false when a location declined it. */
  async write(key: Key, value: unknown, minPart: number, owner: EntryOwner, split?: Split): Promise<boolean> {
    const { body, parts } = split ?? splitValue(value, minPart);
    const keys: Key[] = [];
    try {
      let size = 0;
      for (const part of parts) {
        if (!(await this.writePart(part, keys))) return false;
        size += part.byteLength;
      }
      const payload: EntryPayload = { p: keys.slice() };
      if (body.length <= INLINE_BODY) {
        payload.b = body;
      } else {
        if (!(await this.writePart(body, keys))) return false;
        payload.k = keys[keys.length - 1]!;
        size += body.length;
      }
      const entry = envelope(payload);
      await this.index.put(key, entry, { ...owner, size: size + entry.length }, keys);
      return true;
    } finally {
      for (const part of keys) {
        const count = this.writing.get(part)! - 1;
        if (count === 0) this.writing.delete(part);
        else this.writing.set(part, count);
      }
    }
  }

  async readRecord(name: string, digest: string): Promise<Record | null> {
    let bytes: Buffer | null;
    try {
      bytes = await this.index.get(recordKey(name, digest));
    } catch (error) {
      if (error instanceof StorageCorruption) return null;
      throw error;
    }
    if (bytes === null) return null;
    const opened = open(bytes);
    if (!('payload' in opened)) return null;
    const record = (opened.payload as { r?: Record }).r;
    return record && Array.isArray(record.entries) ? record : null;
  }

  async writeRecord(record: Record): Promise<void> {
    const entry = envelope({ r: record });
    await this.index.put(recordKey(record.name, record.digest), entry, { fn: record.name, digest: record.digest, args: RECORD_ARGS, size: entry.length }, []);
  }

  /** True when the index holds at least one entry (not a record) of `fn`. */
  async hasEntries(fn: string): Promise<boolean> {
    for await (const entry of this.index.entries(fn)) if (entry.args !== RECORD_ARGS) return true;
    return false;
  }

  /** Waits for background work, then flushes and releases the index. */
  async close(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
    await this.index.close();
    if (this.ownsStorage) await this.current?.close();
    if (this.folder !== null && folders.get(this.folder) === this) folders.delete(this.folder);
    if (this.current !== null) beside.delete(this.current);
  }
}

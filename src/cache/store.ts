/**
 * Where smartCache keeps its entries, as tarn's PickleKeyStorage: an index (a Location keyed by
 * the call's key, holding a small self-checking entry) and a HashKeyStorage for the parts of
 * results, so equal parts are stored once.
 *
 * An entry is `MAGIC, FORMAT, sha256(payload), payload`. A torn or corrupted entry fails its
 * checksum and an entry of another format is never decoded: both are misses, recomputed and
 * overwritten.
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Decoder, Encoder } from 'cbor-x';
import { asSource, bufferBlob } from '../blob.js';
import { CairnError, ConfigError, InvalidKeyError, InvalidValueError, StorageCorruption } from '../errors.js';
import type { Key } from '../key.js';
import type { Location, LocationLike } from '../locations/interface.js';
import { Disk } from '../locations/disk.js';
import { Memory } from '../locations/memory.js';
import { isLocation } from '../locations/resolve.js';
import { HashKeyStorage } from '../storage/hash-key-storage.js';
import { IndexFolder } from './index-folder.js';
import { indexFor } from './index-for.js';
import { IndexLog } from './index-log.js';
import { joinValue, type Split, splitValue } from './serialize.js';

/** Where a smartCache lives: a folder, a HashKeyStorage, or explicit index and storage locations. */
export type CacheWhere =
  | string
  | HashKeyStorage
  | { index: LocationLike | readonly LocationLike[]; storage: HashKeyStorage | LocationLike | readonly LocationLike[] };

const MAGIC = Buffer.from('cairn.sc');
/** Bump when the entry layout changes: older entries are then recomputed, never misread. */
export const ENTRY_FORMAT = 1;
const HEADER = MAGIC.length + 1 + 32;
/** Bodies up to this size live in the index entry itself: a hit is then a single read. */
const INLINE_BODY = 32 * 1024;

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
  createHash('sha256').update(body).digest().copy(header, MAGIC.length + 1);
  return Buffer.concat([header, body]);
}

/** Opens an entry; `checked`: its bytes were already checked by the index (IndexLog's record checksum). */
function open(bytes: Buffer, checked = false): { payload: unknown } | { status: 'corrupt' | 'outdated'; reason: string } {
  if (bytes.length < HEADER || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    return { status: 'corrupt', reason: 'the entry is truncated or not a smartCache entry' };
  }
  const format = bytes[MAGIC.length];
  if (format !== ENTRY_FORMAT) return { status: 'outdated', reason: `the entry has format ${format}, this version reads ${ENTRY_FORMAT}` };
  const body = bytes.subarray(HEADER);
  if (!checked && !createHash('sha256').update(body).digest().equals(bytes.subarray(MAGIC.length + 1, HEADER))) {
    return { status: 'corrupt', reason: 'the entry fails its checksum' };
  }
  return { payload: decoder.decode(body) };
}

const stores = new Map<string, Store>();

export class Store {
  /** One in-flight computation per key in this process. */
  readonly inflight = new Map<string, Promise<unknown>>();

  constructor(
    readonly index: Location,
    readonly storage: HashKeyStorage,
    readonly folder: string | null,
  ) {}

  /** The store for `where`; a folder's store is shared by every smartCache on that folder. */
  static of(where: CacheWhere, fsync: boolean): Store {
    if (typeof where === 'string') {
      const folder = resolve(where);
      let store = stores.get(folder);
      if (!store) {
        // the index is not content-addressed: entries are checked by their own checksum instead;
        // entries of the folder index of earlier versions are still read
        const index = new IndexLog(join(folder, 'index.log'), fsync, new IndexFolder(join(folder, 'index'), fsync));
        store = new Store(index, new HashKeyStorage(new Disk(join(folder, 'storage'), { fsync })), folder);
        stores.set(folder, store);
      }
      return store;
    }
    if (where instanceof HashKeyStorage) {
      const local = where.local;
      if (local instanceof Disk) {
        // beside the blobs, where the Disk's own walk never looks (tools/ is skipped)
        const tools = join(local.root, 'tools');
        return new Store(new IndexLog(join(tools, 'smart-cache-index.log'), fsync, new IndexFolder(join(tools, 'smart-cache-index'), fsync)), where, local.root);
      }
      if (local instanceof Memory) return new Store(local, where, null);
      throw new ConfigError(`smartCache cannot keep its index in ${local.name}: pass { index, storage } with an index location that does not verify keys`);
    }
    if (typeof where === 'object' && where !== null && 'index' in where && 'storage' in where) {
      const storage = where.storage instanceof HashKeyStorage ? where.storage : new HashKeyStorage(where.storage);
      return new Store(indexFor(where.index), storage, null);
    }
    if (isLocation(where)) {
      throw new ConfigError('smartCache needs a folder, a HashKeyStorage or { index, storage }, not a bare location');
    }
    throw new ConfigError(`smartCache: cannot use ${Object.prototype.toString.call(where)} as a cache`);
  }

  private async readIndex(key: Key): Promise<Buffer | null> {
    if (this.index.readBytes) return this.index.readBytes(key);
    const value = await this.index.read(key);
    return value === null ? null : value.bytes();
  }

  private async writeIndex(key: Key, bytes: Buffer, replace: boolean): Promise<boolean> {
    if (this.index instanceof IndexLog) {
      // a later record supersedes: nothing to remove first
      this.index.writeSync(key, bytes);
      return true;
    }
    // some locations keep what they hold on a second write: a bad entry is removed first
    if (replace) await this.index.delete(key);
    return this.index.write(key, asSource(bufferBlob(bytes), true), null);
  }

  /**
   * The hit of a small result without waiting: an entry in an IndexLog whose body is inline and
   * has no parts; 'missing' when the index has no entry for `key`. Anything else (a corrupted
   * entry, parts to read, an error) is undefined: the caller then takes the full path, `read`,
   * which says what happened.
   */
  readQuick(key: Key): { value: unknown } | 'missing' | undefined {
    if (!(this.index instanceof IndexLog)) return undefined;
    try {
      const entry = this.index.readEntrySync(key);
      if (entry === null) return 'missing';
      const opened = open(entry.bytes, entry.checked);
      if (!('payload' in opened)) return undefined;
      const payload = opened.payload as EntryPayload;
      if (payload.b === undefined || payload.p.length > 0) return undefined;
      return { value: joinValue(payload.b, []) };
    } catch {
      return undefined;
    }
  }

  /**
   * Stores a result that has no parts and a small body without waiting (IndexLog only): true when
   * stored, or the split result for `write` when it does not fit that case. Failures throw.
   */
  writeQuick(key: Key, value: unknown, minPart: number): true | Split {
    const split = splitValue(value, minPart);
    if (!(this.index instanceof IndexLog) || split.parts.length > 0 || split.body.length > INLINE_BODY) return split;
    this.index.writeSync(key, envelope({ p: [], b: split.body }));
    return true;
  }

  /** Reads an entry. Corruption anywhere (entry, body, parts) is a status, never an exception. */
  async read(key: Key): Promise<EntryRead> {
    let bytes: Buffer | null;
    try {
      bytes = await this.readIndex(key);
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
      return { status: 'hit', value: joinValue(body, parts) };
    } catch (error) {
      // a failing location (permissions, I/O, network) is an error; bad bytes are a miss to repair
      if (error instanceof CairnError && !(error instanceof StorageCorruption) && !(error instanceof InvalidValueError) && !(error instanceof InvalidKeyError)) {
        throw error;
      }
      return { status: 'corrupt', reason: `the stored result cannot be read: ${(error as Error).message}`, error };
    }
  }

  /** Stores a result; false when a location declined it. */
  async write(key: Key, value: unknown, minPart: number, replace: boolean, split?: Split): Promise<boolean> {
    const { body, parts } = split ?? splitValue(value, minPart);
    const keys: string[] = [];
    for (const part of parts) {
      const stored = await this.storage.write(part, { error: false });
      if (stored === null) return false;
      keys.push(stored);
    }
    const payload: EntryPayload = { p: keys };
    if (body.length <= INLINE_BODY) {
      payload.b = body;
    } else {
      const stored = await this.storage.write(body, { error: false });
      if (stored === null) return false;
      payload.k = stored;
    }
    return this.writeIndex(key, envelope(payload), replace);
  }

  async readRecord(key: Key): Promise<Record | null> {
    let bytes: Buffer | null;
    try {
      bytes = await this.readIndex(key);
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

  async writeRecord(key: Key, record: Record): Promise<void> {
    await this.writeIndex(key, envelope({ r: record }), true);
  }
}

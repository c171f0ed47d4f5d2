/**
 * smartCache's index in an S3 bucket, through an S3 location's client (same endpoint,
 * credentials, deadline, retries and typed errors), under `<prefix>tools/smart-cache/` where the
 * location's own contents() never looks:
 *
 * - `entries/<key>`: `MAGIC, length of the metadata, metadata (JSON), entry`. The entry keeps its
 *   own checksum (the store's envelope); the rest is checked here.
 * - `by-fn/<sha256(fn)>/v<args>/v<digest>/<key>`: an empty marker per entry, so one function's
 *   entries and the digests stored for some arguments are a listing away.
 * - `usage/<key>`: an empty marker rewritten by hits (throttled and batched): its time is the
 *   entry's last use.
 */
import { createHash } from 'node:crypto';
import { StorageCorruption } from '../errors.js';
import { assertKey, isKey, type Key } from '../key.js';
import type { S3 } from '../locations/s3/s3.js';
import type { EntryIndex, EntryMeta, IndexedEntry } from './entry-index.js';
import { TouchBatch } from './touch-batch.js';

export interface S3IndexOptions {
  /** A hit marks its entry as used at most once per this many milliseconds per process. @default 60000 */
  touchInterval?: number;
  /** Marks of hits are sent together, this many milliseconds after the first one waiting. @default 1000 */
  flushDelay?: number;
  /** Entries read at once by entries(). @default 8 */
  concurrency?: number;
}

const MAGIC = Buffer.from('cairn.si');
const HEADER = MAGIC.length + 4;
/** Marks sent at once. */
const FLUSH_AT = 64;

interface StoredMeta extends EntryMeta {
  parts: Key[];
}

export class S3Index implements EntryIndex {
  readonly name: string;
  private readonly touches: TouchBatch;
  private readonly root: string;
  private readonly concurrency: number;

  constructor(
    readonly location: S3,
    options: S3IndexOptions = {},
  ) {
    this.name = `S3Index(${location.name})`;
    this.touches = new TouchBatch({
      name: this.name,
      interval: options.touchInterval ?? 60_000,
      delay: options.flushDelay ?? 1000,
      flushAt: FLUSH_AT,
      send: (keys) => Promise.all(keys.map((key) => this.location.putObject(this.usageName(key), Buffer.alloc(0), 'index touch'))),
    });
    this.root = `${location.prefix}tools/smart-cache/`;
    this.concurrency = Math.max(1, options.concurrency ?? 8);
  }

  async get(key: Key): Promise<Buffer | null> {
    const stored = await this.read(key);
    return stored === null ? null : stored.entry;
  }

  async put(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): Promise<void> {
    assertKey(key);
    for (const part of parts) assertKey(part);
    const stored: StoredMeta = { fn: meta.fn, digest: meta.digest, args: meta.args, size: meta.size, parts: [...parts] };
    const json = Buffer.from(JSON.stringify(stored));
    const header = Buffer.alloc(HEADER);
    MAGIC.copy(header);
    header.writeUInt32BE(json.length, MAGIC.length);
    // the marker first: an entry is never listed without it (a stray marker is skipped by entries())
    await this.location.putObject(this.marker(key, stored), Buffer.alloc(0), 'index write');
    await this.location.putObject(this.entryName(key), Buffer.concat([header, json, bytes]), 'index write');
  }

  async delete(key: Key): Promise<boolean> {
    let stored: { meta: StoredMeta } | null = null;
    try {
      stored = await this.read(key);
    } catch (error) {
      // a damaged or foreign object is removed all the same (its marker, if any, is left to entries() to skip)
      if (!(error instanceof StorageCorruption)) throw error;
      await this.location.deleteObjects([this.entryName(key), this.usageName(key)], 'index delete');
      return true;
    }
    if (stored === null) return false;
    await this.location.deleteObjects([this.entryName(key), this.usageName(key), this.marker(key, stored.meta)], 'index delete');
    this.touches.forget(key);
    return true;
  }

  /** Every entry (or one function's), listing page by page and reading `concurrency` entries at once. */
  async *entries(fn?: string): AsyncIterable<IndexedEntry> {
    const prefix = fn === undefined ? this.root + 'entries/' : `${this.root}by-fn/${sha(fn)}/`;
    const window: Promise<IndexedEntry | null>[] = [];
    for await (const item of this.location.listObjects(prefix, 'index entries')) {
      const key = item.objectKey.slice(item.objectKey.lastIndexOf('/') + 1);
      if (!isKey(key)) continue;
      const described = this.described(key, fn);
      // handled where it is awaited; this keeps a failure behind an earlier one from going unhandled
      described.catch(() => undefined);
      window.push(described);
      if (window.length >= this.concurrency) {
        const entry = await window.shift()!;
        if (entry !== null) yield entry;
      }
    }
    for (const pending of window) {
      const entry = await pending;
      if (entry !== null) yield entry;
    }
  }

  async digestsFor(fn: string, args: string): Promise<string[]> {
    const prefix = `${this.root}by-fn/${sha(fn)}/${segment(args)}/`;
    const digests = new Set<string>();
    for await (const item of this.location.listObjects(prefix, 'index digests')) {
      const [digest] = item.objectKey.slice(prefix.length).split('/');
      if (digest?.startsWith('v')) digests.add(decodeURIComponent(digest.slice(1)));
    }
    return [...digests].sort();
  }

  touch(key: Key): void {
    this.touches.touch(key);
  }

  /** Sends the pending marks. The location stays open: it is the user's, and often the storage too. */
  async close(): Promise<void> {
    await this.touches.flush();
  }

  /** The entry of `key` and its metadata, or null; a damaged or foreign object is a StorageCorruption. */
  private async read(key: Key): Promise<{ entry: Buffer; meta: StoredMeta; lastModified: Date | null } | null> {
    assertKey(key);
    const object = await this.location.getObject(this.entryName(key), 'index read');
    if (object === null) return null;
    const { bytes } = object;
    const damaged = (why: string) => new StorageCorruption(key, null, `${this.name} (${why})`);
    if (bytes.length < HEADER || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw damaged('the object is not an index entry');
    const length = bytes.readUInt32BE(MAGIC.length);
    if (HEADER + length > bytes.length) throw damaged('the entry is truncated');
    let meta: StoredMeta;
    try {
      meta = JSON.parse(bytes.subarray(HEADER, HEADER + length).toString('utf8')) as StoredMeta;
    } catch (error) {
      throw new StorageCorruption(key, null, `${this.name} (its metadata is damaged)`, { cause: error });
    }
    if (typeof meta?.fn !== 'string' || typeof meta.digest !== 'string' || typeof meta.args !== 'string' || !Array.isArray(meta.parts)) throw damaged('its metadata is damaged');
    return { entry: bytes.subarray(HEADER + length), meta, lastModified: object.lastModified };
  }

  /** What entries() says of `key`: null when it is gone, damaged, or (a stray marker) of another function. */
  private async described(key: Key, fn: string | undefined): Promise<IndexedEntry | null> {
    const [stored, usage] = await Promise.all([this.read(key).catch((error: unknown) => (error instanceof StorageCorruption ? null : Promise.reject(error))), this.location.statObject(this.usageName(key), 'index entries')]);
    if (stored === null || (fn !== undefined && stored.meta.fn !== fn)) return null;
    const { meta } = stored;
    const used = Math.max(stored.lastModified?.getTime() ?? 0, usage?.lastModified?.getTime() ?? 0);
    return { key, fn: meta.fn, digest: meta.digest, args: meta.args, size: meta.size, used, parts: meta.parts };
  }

  private entryName(key: Key): string {
    return `${this.root}entries/${key}`;
  }

  private usageName(key: Key): string {
    return `${this.root}usage/${key}`;
  }

  private marker(key: Key, meta: EntryMeta): string {
    return `${this.root}by-fn/${sha(meta.fn)}/${segment(meta.args)}/${segment(meta.digest)}/${key}`;
  }
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A name segment for any text: never empty, never a '/'. */
const segment = (text: string): string => 'v' + encodeURIComponent(text);

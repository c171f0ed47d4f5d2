/**
 * The index a `{ index, storage }` smartCache uses for its `index` location. A RedisLocation or an
 * S3 location verifies every value against its sha256 key, and index entries are keyed by call
 * keys: read through them, every entry looked corrupted and the cache never hit. Their indexes
 * (RedisIndex, S3Index) keep entries in a key space of their own instead.
 *
 * Today's Store reads and writes its index as a Location; `EntryIndexLocation` adapts an
 * EntryIndex to that. Once the Store works on EntryIndex directly, the adapter goes and
 * `indexFor` returns the index itself.
 */
import { Decoder } from 'cbor-x';
import { bufferBlob, type Source, type Value } from '../blob.js';
import { isKey, type Key } from '../key.js';
import { type Entry, type Location, type LocationLike, readEach } from '../locations/interface.js';
import { RedisLocation } from '../locations/redis.js';
import { resolveLocation } from '../locations/resolve.js';
import { S3 } from '../locations/s3.js';
import type { EntryIndex } from './entry-index.js';
import { RedisIndex } from './index-redis.js';
import { S3Index } from './index-s3.js';

/** The location today's Store keeps its index in, for the `index` of `{ index, storage }`. */
export function indexFor(location: LocationLike | readonly LocationLike[]): Location {
  if (location instanceof RedisLocation) return new EntryIndexLocation(new RedisIndex(location));
  if (location instanceof S3) return new EntryIndexLocation(new S3Index(location));
  return resolveLocation(location);
}

/** Where an entry's payload starts (store.ts: magic, format, sha256). */
const PAYLOAD = 'cairn.sc'.length + 1 + 32;
const decoder = new Decoder({ useRecords: false });

/** An EntryIndex seen as the Location that today's Store expects of its index. */
export class EntryIndexLocation implements Location {
  readonly name: string;

  constructor(readonly index: EntryIndex) {
    this.name = index.name;
  }

  readBytes(key: Key): Promise<Buffer | null> {
    return this.index.get(key).then((bytes) => {
      if (bytes !== null) this.index.touch(key);
      return bytes;
    });
  }

  async read(key: Key): Promise<Value | null> {
    const bytes = await this.readBytes(key);
    return bytes === null ? null : { key, ...bufferBlob(bytes), labels: async () => null };
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  /**
   * Stores an entry. Today's Store does not say which function and arguments it belongs to, so
   * those stay empty (digestsFor() does not list it); its parts are read from the entry.
   */
  async write(key: Key, source: Source): Promise<boolean> {
    const bytes = await source.bytes();
    await this.index.put(key, bytes, { fn: '', digest: '', args: '', size: bytes.length }, partsOf(bytes));
    return true;
  }

  delete(key: Key): Promise<boolean> {
    return this.index.delete(key);
  }

  async touch(key: Key): Promise<boolean> {
    const present = (await this.index.get(key)) !== null;
    if (present) this.index.touch(key);
    return present;
  }

  async *contents(): AsyncIterable<Entry> {
    for await (const entry of this.index.entries()) {
      yield { key: entry.key, location: this, meta: { labels: null, lastUsed: entry.used ? new Date(entry.used) : null, size: entry.size } };
    }
  }

  close(): Promise<void> {
    return this.index.close();
  }
}

/** The storage keys an entry names (its parts and large body); none when it cannot be decoded. */
function partsOf(entry: Buffer): Key[] {
  try {
    const payload = decoder.decode(entry.subarray(PAYLOAD)) as { p?: unknown; k?: unknown } | null;
    const keys = [...(Array.isArray(payload?.p) ? payload.p : []), payload?.k];
    return keys.filter((key): key is Key => typeof key === 'string' && isKey(key));
  } catch {
    return [];
  }
}

/**
 * smartCache's index in Redis, beside a RedisLocation's hashes and through its client (same
 * connection, deadline, retries and typed errors). Each entry is a hash of its own,
 * `<prefix>cairn:sc:<key>`, holding the entry's bytes and what entries() reports; a set per
 * function and arguments, `<prefix>cairn:sc-args:<sha256(fn, args)>`, lists the keys stored for
 * them, for digestsFor(). Neither name is a sha256 key, so the location's own contents() and
 * gc never see them.
 */
import { createHash } from 'node:crypto';
import type { Redis as RedisClient } from 'ioredis';
import { LocationError, StorageCorruption } from '../errors.js';
import { assertKey, isKey, type Key } from '../key.js';
import type { RedisLocation } from '../locations/redis/redis.js';
import type { EntryIndex, EntryMeta, IndexedEntry } from './entry-index.js';
import { TouchBatch } from './touch-batch.js';

export interface RedisIndexOptions {
  /** A hit marks its entry as used at most once per this many milliseconds per process. @default 60000 */
  touchInterval?: number;
  /** Marks of hits are sent together, this many milliseconds after the first one waiting. @default 1000 */
  flushDelay?: number;
  /** Keys asked for per SCAN step in entries(). @default 500 */
  scanCount?: number;
}

/** Hash fields of an entry. */
const F = { entry: 'e', fn: 'f', digest: 'g', args: 'a', size: 's', used: 'u', parts: 'p' } as const;
/** Metadata fields, in the order entries() asks for them. */
const META_FIELDS = [F.fn, F.digest, F.args, F.size, F.used, F.parts] as const;
const KEY_LENGTH = 64;
/** Pending marks beyond this are sent at once. */
const FLUSH_AT = 256;

/** Sets the used mark of entries that still exist (a mark never creates a hash). */
const TOUCH_SCRIPT = `
for i = 1, #KEYS do
  if redis.call('HEXISTS', KEYS[i], '${F.entry}') == 1 then redis.call('HSET', KEYS[i], '${F.used}', ARGV[1]) end
end
return 1`;
const TOUCH_COMMAND = 'cairnIndexTouch';

type Touching = RedisClient & { [TOUCH_COMMAND]: (count: number, ...args: string[]) => Promise<unknown> };

export class RedisIndex implements EntryIndex {
  readonly name: string;
  private readonly touches: TouchBatch;
  private readonly entryPrefix: string;
  private readonly argsPrefix: string;
  private readonly scanCount: number;

  constructor(
    readonly location: RedisLocation,
    options: RedisIndexOptions = {},
  ) {
    this.name = `RedisIndex(${location.name})`;
    this.touches = new TouchBatch({
      name: this.name,
      interval: options.touchInterval ?? 60_000,
      delay: options.flushDelay ?? 1000,
      flushAt: FLUSH_AT,
      send: (keys) => {
        const names = keys.map((key) => this.entryPrefix + key);
        return this.location.command('index touch', (client) => {
          const touching = client as Touching;
          if (typeof touching[TOUCH_COMMAND] !== 'function') client.defineCommand(TOUCH_COMMAND, { lua: TOUCH_SCRIPT });
          return touching[TOUCH_COMMAND](names.length, ...names, String(Date.now()));
        });
      },
    });
    this.entryPrefix = `${location.prefix}cairn:sc:`;
    this.argsPrefix = `${location.prefix}cairn:sc-args:`;
    this.scanCount = options.scanCount ?? 500;
  }

  /** Not async: a hit is one promise on top of the client's (this is a cache's hot path). */
  get(key: Key): Promise<Buffer | null> {
    assertKey(key);
    return this.location.command('index read', (client) => client.hgetBuffer(this.entryPrefix + key, F.entry)).catch((error: unknown) => {
      throw this.foreign(key, error);
    });
  }

  async put(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): Promise<void> {
    assertKey(key);
    for (const part of parts) assertKey(part);
    const name = this.entryPrefix + key;
    const fields: (string | Buffer)[] = [F.entry, bytes, F.fn, meta.fn, F.digest, meta.digest, F.args, meta.args];
    fields.push(F.size, String(meta.size), F.used, String(Date.now()), F.parts, parts.join(''));
    // one transaction: a reader sees the old entry or the new one; DEL first replaces a foreign value
    const replies = await this.location.command('index write', (client) => {
      const transaction = client.multi().del(name).hset(name, ...fields);
      // without known arguments (an entry written through index-for.ts's adapter) there is nothing to list it under
      if (meta.args !== '') transaction.sadd(this.argsSet(meta.fn, meta.args), key);
      return transaction.exec();
    });
    const failed = replies?.find(([error]) => error !== null);
    if (replies === null || failed) throw new LocationError(`index write on ${this.name} failed: ${failed?.[0]?.message ?? 'transaction aborted'}`, this.name, { cause: failed?.[0] });
  }

  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    const name = this.entryPrefix + key;
    let owner: (string | null)[] = [null, null];
    try {
      owner = await this.location.command('index delete', (client) => client.hmget(name, F.fn, F.args));
    } catch (error) {
      // a foreign value under the name is removed all the same
      if (!isWrongType(error)) throw error;
    }
    const [fn, args] = owner;
    const removed = await this.location.command('index delete', async (client) => {
      if (fn === null || fn === undefined || args === null || args === undefined) return client.del(name);
      const replies = await client.multi().del(name).srem(this.argsSet(fn, args), key).exec();
      return Number(replies?.[0]?.[1] ?? 0);
    });
    this.touches.forget(key);
    return removed > 0;
  }

  /**
   * Every entry, one SCAN step at a time (memory stays bounded by a step). As SCAN promises, an
   * entry that exists throughout is yielded, possibly twice while Redis resizes its table.
   */
  async *entries(fn?: string): AsyncIterable<IndexedEntry> {
    const pattern = this.entryPrefix.replace(/[*?[\]\\]/g, (char) => '\\' + char) + '*';
    let cursor = '0';
    do {
      const [next, names] = await this.location.command('index entries', (client) => client.scan(cursor, 'MATCH', pattern, 'COUNT', this.scanCount, 'TYPE', 'hash'));
      cursor = next;
      const keys = names.map((name) => name.slice(this.entryPrefix.length)).filter(isKey);
      if (keys.length === 0) continue;
      const metas = await this.location.command('index entries', async (client) => {
        const pipeline = client.pipeline();
        for (const key of keys) pipeline.hmget(this.entryPrefix + key, ...META_FIELDS);
        return ((await pipeline.exec()) ?? []).map(([error, reply]) => {
          if (error) throw error;
          return reply as (string | null)[];
        });
      });
      for (let index = 0; index < keys.length; index++) {
        const entry = toEntry(keys[index]!, metas[index]);
        // gone since SCAN saw it, or a hash that is not an entry
        if (entry === null || (fn !== undefined && entry.fn !== fn)) continue;
        yield entry;
      }
    } while (cursor !== '0');
  }

  async digestsFor(fn: string, args: string): Promise<string[]> {
    const set = this.argsSet(fn, args);
    const keys = await this.location.command('index digests', (client) => client.smembers(set));
    if (keys.length === 0) return [];
    const owners = await this.location.command('index digests', async (client) => {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.hmget(this.entryPrefix + key, F.fn, F.args, F.digest);
      return ((await pipeline.exec()) ?? []).map(([error, reply]) => (error ? null : (reply as (string | null)[])));
    });
    const digests = new Set<string>();
    const stale: string[] = [];
    keys.forEach((key, index) => {
      const [owner, ownArgs, digest] = owners[index] ?? [];
      if (owner === fn && ownArgs === args && digest) digests.add(digest);
      else if (owner === null || owner === undefined) stale.push(key);
    });
    // members whose entry is gone (deleted elsewhere, or a delete cut short)
    if (stale.length > 0) await this.location.command('index digests', (client) => client.srem(set, ...stale));
    return [...digests].sort();
  }

  touch(key: Key): void {
    this.touches.touch(key);
  }

  /** Sends the pending marks. The location stays open: it is the user's, and often the storage too. */
  async close(): Promise<void> {
    await this.touches.flush();
  }

  private argsSet(fn: string, args: string): string {
    return this.argsPrefix + createHash('sha256').update(fn).update('\0').update(args).digest('hex');
  }

  /** A value of another type under an entry's name is a damaged entry, to be replaced. */
  private foreign(key: Key, error: unknown): unknown {
    if (!isWrongType(error)) return error;
    return new StorageCorruption(key, null, `${this.name} (the value under ${this.entryPrefix}${key} is not an index entry)`, { cause: error });
  }
}

function isWrongType(error: unknown): boolean {
  return error instanceof LocationError && /WRONGTYPE/.test(error.message);
}

function toEntry(key: Key, meta: (string | null)[] | undefined): IndexedEntry | null {
  if (!meta) return null;
  const [fn, digest, args, size, used, parts] = meta;
  if (fn === null || fn === undefined || digest == null || args == null) return null;
  const joined = parts ?? '';
  const list: Key[] = [];
  for (let at = 0; at + KEY_LENGTH <= joined.length; at += KEY_LENGTH) list.push(joined.slice(at, at + KEY_LENGTH));
  return { key, fn, digest, args, size: Number(size ?? 0), used: Number(used ?? 0), parts: list };
}

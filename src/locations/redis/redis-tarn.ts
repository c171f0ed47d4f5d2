import type { Cluster, Redis as RedisClient } from 'ioredis';
import { inMemoryValue, type Value } from '../../blob.js';
import { verifyBytes } from '../../digest.js';
import { LocationError } from '../../errors.js';
import type { Key } from '../../key.js';
import type { Entry, Location } from '../interface.js';

/**
 * tarn's Redis layout (`layout: 'tarn'`), so that tarn's RedisLocation and cairn share one Redis:
 * for a key (its 32 raw digest bytes, not hex) and a prefix,
 * - `<prefix><digest>` is a string holding the bytes;
 * - `labels<prefix><digest>` a JSON list of labels (tarn's `keep_labels=True`);
 * - `usage_date<prefix><digest>` the last use, in seconds since the epoch (tarn's `keep_usage=True`).
 * Each is a key of its own, so on a Redis Cluster every command names one key (no cross-slot scripts).
 */

/** A write of the bytes: replaces what is there unless it is the same (a corrupted value is overwritten). */
const WRITE_SCRIPT = `
local old = redis.call('GET', KEYS[1])
if old ~= ARGV[1] then
  if ARGV[2] ~= '0' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) else redis.call('SET', KEYS[1], ARGV[1]) end
elseif ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

/** Adds labels to the JSON list, atomically (the union, as tarn's update keeps). */
const LABELS_SCRIPT = `
local old = redis.call('GET', KEYS[1])
local seen, list, added = {}, {}, false
if old then
  for _, label in ipairs(cjson.decode(old)) do
    if not seen[label] then seen[label] = true; list[#list + 1] = label end
  end
end
for i = 2, #ARGV do
  if not seen[ARGV[i]] then seen[ARGV[i]] = true; list[#list + 1] = ARGV[i]; added = true end
end
if added then
  if ARGV[1] ~= '0' then redis.call('SET', KEYS[1], cjson.encode(list), 'PX', ARGV[1]) else redis.call('SET', KEYS[1], cjson.encode(list)) end
elseif old and ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1`;

export const TARN_COMMANDS = { cairnTarnWrite: WRITE_SCRIPT, cairnTarnLabels: LABELS_SCRIPT } as const;

type Scripted = {
  cairnTarnWrite(key: Buffer, bytes: Buffer, ttl: string): Promise<unknown>;
  cairnTarnLabels(key: Buffer, ttl: string, ...labels: string[]): Promise<unknown>;
};
export type TarnClient = (RedisClient | Cluster) & Scripted;

/** What the layout needs from its RedisLocation. */
export interface TarnLayoutHost {
  name(): string;
  readonly prefix: string;
  readonly ttlMs: number;
  readonly keepLabels: boolean;
  readonly keepUsage: boolean;
  /** Runs one operation with the location's deadline, typed errors and retries. */
  run<T>(operation: string, action: (client: TarnClient) => Promise<T>): Promise<T>;
}

const DIGEST_BYTES = 32;

export class TarnRedisLayout {
  private readonly prefix: Buffer;

  constructor(private readonly host: TarnLayoutHost) {
    this.prefix = Buffer.from(host.prefix);
  }

  /** The three Redis keys of `key`. */
  names(key: Key): { content: Buffer; labels: Buffer; usage: Buffer } {
    const digest = Buffer.from(key, 'hex');
    return {
      content: Buffer.concat([this.prefix, digest]),
      labels: Buffer.concat([Buffer.from('labels'), this.prefix, digest]),
      usage: Buffer.concat([Buffer.from('usage_date'), this.prefix, digest]),
    };
  }

  /** The bytes (and labels) of `key`; `mark` (ms since the epoch, or 0) is the last use to record. */
  async read(key: Key, mark: number, withLabels: boolean): Promise<{ data: Buffer; labels: string[] | null } | null> {
    const names = this.names(key);
    const ttl = this.host.ttlMs;
    const wantLabels = withLabels && this.host.keepLabels;
    const [data, labels] = await this.host.run('read', (client) =>
      Promise.all([
        client.getBuffer(names.content),
        wantLabels ? client.getBuffer(names.labels) : null,
        ttl !== 0 ? client.pexpire(names.content, ttl) : null,
        ttl !== 0 && wantLabels ? client.pexpire(names.labels, ttl) : null,
      ]),
    );
    if (data === null) return null;
    // only a key that is there gets a last use: a second trip, at most once per touchInterval
    if (mark !== 0) await this.markUsed(names.usage, mark);
    return { data, labels: wantLabels ? this.parseLabels(key, labels) : null };
  }

  /** A read as a Value, bytes checked against the key on first use. */
  async value(key: Key, mark: number): Promise<Value | null> {
    const found = await this.read(key, mark, true);
    if (found === null) return null;
    return inMemoryValue(key, found.data, this.host.name(), async () => found.labels);
  }

  async readBytes(key: Key, mark: number): Promise<Buffer | null> {
    const found = await this.read(key, mark, false);
    if (found === null) return null;
    verifyBytes(key, found.data, this.host.name());
    return found.data;
  }

  /** The stored labels of `key` (null when it has none). */
  async labels(key: Key): Promise<string[] | null> {
    const raw = await this.host.run('labels', (client) => client.getBuffer(this.names(key).labels));
    return this.parseLabels(key, raw);
  }

  async has(key: Key): Promise<boolean> {
    return (await this.host.run('has', (client) => client.exists(this.names(key).content))) === 1;
  }

  async write(key: Key, bytes: Buffer, labels: readonly string[] | null | undefined, mark: number): Promise<void> {
    const names = this.names(key);
    const ttl = String(this.host.ttlMs);
    const wanted = this.host.keepLabels && labels && labels.length > 0 ? [...new Set(labels)] : null;
    await this.host.run('write', (client) =>
      Promise.all([
        client.cairnTarnWrite(names.content, bytes, ttl),
        wanted ? client.cairnTarnLabels(names.labels, ttl, ...wanted) : null,
        mark !== 0 ? this.setUsage(client, names.usage, mark) : null,
      ]),
    );
  }

  async delete(key: Key): Promise<boolean> {
    const names = this.names(key);
    // one DEL per name: on a cluster the three live in different slots
    const [removed] = await this.host.run('delete', (client) => Promise.all([client.del(names.content), client.del(names.labels), client.del(names.usage)]));
    return removed > 0;
  }

  async touch(key: Key, mark: number): Promise<boolean> {
    const names = this.names(key);
    if (!(await this.has(key))) return false;
    if (mark !== 0) await this.markUsed(names.usage, mark);
    return true;
  }

  /**
   * The entries of one server's SCAN (the strings under the prefix whose rest is a digest), page
   * by page, with their sizes, labels and last use.
   */
  async *scanned(location: Location, scan: (cursor: string, pattern: string) => Promise<[Buffer, Buffer[]]>): AsyncIterable<Entry> {
    const pattern = this.host.prefix.replace(/[*?[\]\\]/g, (char) => '\\' + char) + '*';
    let cursor = '0';
    do {
      const [next, names] = await scan(cursor, pattern);
      cursor = next.toString();
      const keys = [
        ...new Set(
          names
            .filter((name) => name.length === this.prefix.length + DIGEST_BYTES && name.subarray(0, this.prefix.length).equals(this.prefix))
            .map((name) => name.subarray(this.prefix.length).toString('hex')),
        ),
      ];
      if (keys.length === 0) continue;
      const metas = await this.host.run('contents', (client) =>
        Promise.all(
          keys.map((key) => {
            const names = this.names(key);
            return Promise.all([
              client.strlen(names.content),
              client.exists(names.content),
              this.host.keepLabels ? client.getBuffer(names.labels) : null,
              this.host.keepUsage ? client.get(names.usage) : null,
            ]);
          }),
        ),
      );
      for (const [index, key] of keys.entries()) {
        const [size, exists, labels, used] = metas[index]!;
        if (exists === 0) continue; // deleted or expired since SCAN saw it
        const seconds = used === null ? NaN : Number(used);
        yield {
          key,
          location,
          meta: {
            size,
            labels: this.host.keepLabels ? (this.parseLabels(key, labels) ?? []) : null,
            lastUsed: this.host.keepUsage && Number.isFinite(seconds) ? new Date(seconds * 1000) : null,
          },
        };
      }
    } while (cursor !== '0');
  }

  private markUsed(usage: Buffer, mark: number): Promise<unknown> {
    return this.host.run('touch', (client) => this.setUsage(client, usage, mark));
  }

  /** tarn's last use: seconds since the epoch, as a decimal (tarn writes a float). */
  private setUsage(client: TarnClient, usage: Buffer, mark: number): Promise<unknown> {
    const seconds = String(mark / 1000);
    return this.host.ttlMs !== 0 ? client.set(usage, seconds, 'PX', this.host.ttlMs) : client.set(usage, seconds);
  }

  private parseLabels(key: Key, raw: Buffer | null): string[] | null {
    if (raw === null) return null;
    let labels: unknown;
    try {
      labels = JSON.parse(raw.toString('utf8'));
    } catch (error) {
      throw new LocationError(`${this.host.name()}: the labels of ${key} are not JSON`, this.host.name(), { cause: error });
    }
    if (!Array.isArray(labels) || labels.some((label) => typeof label !== 'string')) {
      throw new LocationError(`${this.host.name()}: the labels of ${key} are not a JSON list of strings`, this.host.name());
    }
    return labels as string[];
  }
}

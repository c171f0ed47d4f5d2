import type { Cluster, ClusterNode, ClusterOptions, Redis as RedisClient, RedisOptions } from 'ioredis';
import { inMemoryValue, readUpTo, type Source, type Value } from '../../blob.js';
import { verifyBytes } from '../../digest.js';
import { ConfigError, LocationError } from '../../errors.js';
import { assertKey, isKey, type Key } from '../../key.js';
import { parseSize, type Size } from '../../size.js';
import type { Entry, Location, LocationReadOptions } from '../interface.js';
import { importOptional } from '../../optional.js';
import { withDeadline } from '../net/deadline.js';
import { type Classified, CONNECTION_CODES, errorCode } from '../net/failures.js';
import { RemoteCalls } from '../net/remote-calls.js';
import type { RetryOptions } from '../net/retry.js';
import { redactUrl } from '../redact.js';
import { keySlot } from './redis-slot.js';
import { TARN_COMMANDS, type TarnClient, TarnRedisLayout } from './redis-tarn.js';

/**
 * Where the values are: a `redis://` URL or ioredis options (a single server, a Sentinel group
 * with `sentinels` and `name`, or one node of a cluster, which is discovered), a client of the
 * user's (a `Redis` or a `Cluster`), or the nodes of a cluster to start from.
 */
export type RedisTarget = string | RedisOptions | RedisClient | Cluster | readonly ClusterNode[];

export interface RedisLocationOptions {
  /**
   * How values are kept. 'cairn': one hash per key (bytes, labels and last use read in one round
   * trip). 'tarn': tarn's own keys (`<prefix><digest bytes>` holding the bytes, `labels<prefix>…`
   * and `usage_date<prefix>…`), so that tarn's RedisLocation (with the same prefix) and cairn share
   * one Redis. @default 'cairn'
   */
  layout?: 'cairn' | 'tarn';
  /** Prepended to every Redis key this location uses, e.g. 'lake:'. @default '' */
  prefix?: string;
  /** Seconds a value lives after it was last written or read (reads refresh it); null keeps values until deleted. @default null */
  ttl?: number | null;
  /** Keep the labels of each value (the union of every write). @default true */
  keepLabels?: boolean;
  /** Keep the time each value was last written, read or touched. @default true */
  keepUsage?: boolean;
  /** Writes of larger values are declined (a number of bytes or '100KiB'). @default 512MiB (Redis' own limit for one value) */
  maxSize?: Size;
  /** An operation that takes longer fails with TimeoutError; also the connect timeout. @default 10000 */
  timeoutMs?: number;
  /** Retries of transient failures (connection reset, server loading). @default { attempts: 3 } */
  retry?: RetryOptions;
  /** Options for the ioredis client made from a URL or options (not used when a client is given). @default {} */
  redis?: RedisOptions;
  /** Options for the ioredis Cluster made from a list of nodes or for a discovered cluster (`redis` then sets its nodes' connections). @default {} */
  cluster?: ClusterOptions;
  /** Keys asked for per SCAN step in contents(). @default 500 */
  scanCount?: number;
  /** Reads sent in one pipeline by readBatch. @default 256 */
  batchSize?: number;
  /** A read refreshes a key's last-used mark at most once per this many milliseconds per process. @default 60000 */
  touchInterval?: number;
}

/** Hash fields: the bytes, the last-used time in ms, and one field per label. */
const DATA = 'd';
const USED = 'u';
const LABEL = 'l:';
const DATA_BYTE = DATA.charCodeAt(0);

/** The labels among the fields of a raw `HGETALL` reply (field, value, field, value, …). */
function labelsOf(fields: readonly Buffer[]): string[] {
  const labels: string[] = [];
  for (let index = 0; index < fields.length; index += 2) {
    const field = fields[index]!.toString('utf8');
    if (field.startsWith(LABEL)) labels.push(field.slice(LABEL.length));
  }
  return labels;
}

const noLabels = async (): Promise<null> => null;

/*
 * A write stores the bytes unless the same bytes are there: a value that no longer matches its key
 * (corrupted) is replaced, as Disk replaces a bad blob, so Levels heals it on the way up.
 * A read is one HGET (readBytes) or HGETALL (read, bytes and labels together), followed in the same
 * write by the touch script when the key's usage mark is due, else by PEXPIRE with a ttl: one round
 * trip, and cheaper for Redis than a script on every read. Writes and touches are scripts, so that
 * they never create a hash for a key that is not there and no reader sees a half-written value.
 */
const WRITE_SCRIPT = `
if redis.call('HGET', KEYS[1], '${DATA}') ~= ARGV[1] then redis.call('HSET', KEYS[1], '${DATA}', ARGV[1]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], '${USED}', ARGV[3]) end
for i = 4, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], '') end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`;

const TOUCH_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], '${DATA}') == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], '${USED}', ARGV[2]) end
if ARGV[1] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1`;

const META_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], '${DATA}') == 0 then return false end
return {redis.call('HSTRLEN', KEYS[1], '${DATA}'), redis.call('HGET', KEYS[1], '${USED}') or '', redis.call('HKEYS', KEYS[1])}`;

/** Command names defined on the client; prefixed so they cannot clash with a user's own. */
const COMMANDS = {
  cairnWrite: WRITE_SCRIPT,
  cairnTouch: TOUCH_SCRIPT,
  cairnMeta: META_SCRIPT,
  ...TARN_COMMANDS,
} as const;

type ScriptFn = (key: string, ...args: (string | Buffer)[]) => Promise<unknown>;
type Scripted = { [name in `${keyof typeof COMMANDS}Buffer` | keyof typeof COMMANDS]: ScriptFn };

/** At most this many operations share one write to the socket (see coalesce): of 4, 8, 12 and a whole tick, 8 measured best. */
const OPS_PER_WRITE = 8;

/**
 * readBatch keeps up to this many chunks in flight beyond the one the caller is taking, as many as
 * fit in READ_AHEAD_BYTES at the size of the last chunk, and at least one: on a loaded machine
 * 4 kept the servers busier than 1 or 2 (4 KiB values), while large values stay at one.
 */
const READ_AHEAD = 4;
const READ_AHEAD_BYTES = 16 * 1024 * 1024;

/** The bytes of a read's raw reply (see pipelined): what holding it costs. */
function replyBytes(reply: unknown): number {
  if (reply === null || reply === undefined) return 0;
  if (!Array.isArray(reply)) return (reply as Buffer).length;
  let bytes = 0;
  for (const part of reply as Buffer[]) bytes += part.length;
  return bytes;
}

/** A socket error of the client that means the server is out of reach (ioredis reports a connect timeout as ETIMEDOUT). */
const isDownCode = (code: string): boolean => CONNECTION_CODES.has(code) || code === 'ETIMEDOUT';

/** A `Redis` or a `Cluster` client (both have these). */
function isClient(value: unknown): value is RedisClient | Cluster {
  return typeof value === 'object' && value !== null && typeof (value as RedisClient).defineCommand === 'function' && typeof (value as RedisClient).pipeline === 'function';
}

function isCluster(value: unknown): value is Cluster {
  return isClient(value) && (value as Cluster).isCluster === true;
}

/** `host:port` of a cluster node as ioredis takes it (a port, a URL, `host:port` or options). */
function describeNode(node: ClusterNode): string {
  if (typeof node === 'number') return `127.0.0.1:${node}`;
  if (typeof node === 'string') return /^\d+$/.test(node) ? `127.0.0.1:${node}` : redactUrl(node).replace('<redacted>@', '').replace(/^rediss?:\/\//, '').replace(/\/$/, '');
  return `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`;
}

/** What a location's name says of its target (without credentials): `Redis(...)`, `RedisCluster(...)` or `RedisSentinel(...)`. */
function describeTarget(target: RedisTarget, discoveredCluster: boolean): string {
  if (Array.isArray(target)) return `RedisCluster(redis://${(target as readonly ClusterNode[]).map(describeNode).join(',')})`;
  if (isCluster(target)) {
    const nodes = (target as unknown as { startupNodes?: ClusterNode[] }).startupNodes ?? [];
    return `RedisCluster(redis://${nodes.map(describeNode).join(',')})`;
  }
  const kind = discoveredCluster ? 'RedisCluster' : 'Redis';
  if (typeof target === 'string') {
    // by position, not by URL parsing: a password with `/` in it does not parse as a password
    return `${kind}(${redactUrl(target).replace('<redacted>@', '').replace(/\/$/, '')})`;
  }
  const options = isClient(target) ? (target as RedisClient).options : (target as RedisOptions);
  if (options.sentinels && options.sentinels.length > 0) {
    return `RedisSentinel(${options.name ?? 'mymaster'} via redis://${options.sentinels.map((node) => `${node.host ?? '127.0.0.1'}:${node.port ?? 26379}`).join(',')})`;
  }
  return `${kind}(redis://${options.host ?? '127.0.0.1'}:${options.port ?? 6379})`;
}

/** True when the server is a node of a Redis Cluster; a server that refuses INFO (ACLs, renamed commands) is taken as a single server. */
async function servesCluster(client: RedisClient, timeoutMs: number): Promise<boolean> {
  try {
    return /^cluster_enabled:1\b/m.test(await withDeadline(client.info('cluster'), timeoutMs));
  } catch (error) {
    if (/^(ERR|NOPERM)/.test(error instanceof Error ? error.message : '')) return false;
    throw error;
  }
}

/** Resolves once a cluster knows its slots and nodes (at once when it does). */
function clusterReady(cluster: Cluster, timeoutMs: number): Promise<void> {
  if (cluster.status === 'ready') return Promise.resolve();
  return withDeadline(
    new Promise<void>((resolve, reject) => {
      const ready = () => {
        cluster.off('end', ended);
        resolve();
      };
      const ended = () => {
        cluster.off('ready', ready);
        reject(new Error('Connection is closed.'));
      };
      cluster.once('ready', ready);
      cluster.once('end', ended);
    }),
    timeoutMs,
  );
}

/**
 * Values in Redis, one hash per key (`<prefix><key>` with the bytes, the labels and the last-used
 * time), read in one round trip and verified against the key. Meant for small hot values, often
 * as `new Small(new RedisLocation(url), { maxSize })` above a larger level.
 */
export class RedisLocation implements Location {
  readonly prefix: string;
  readonly ttlMs: number;
  readonly keepLabels: boolean;
  readonly keepUsage: boolean;
  /** tarn's key layout, when `layout: 'tarn'`; null for cairn's hashes. */
  private readonly tarn: TarnRedisLayout | null;
  private readonly maxSize: number;
  private readonly timeoutMs: number;
  /** Every operation goes through it: typed errors, retries of transient failures. */
  private readonly calls: RemoteCalls;
  private readonly scanCount: number;
  private readonly batchSize: number;
  private readonly target: RedisTarget;
  private readonly redisOptions: RedisOptions;
  private readonly clusterOptions: ClusterOptions;
  /** The client when it is a Cluster: readBatch and contents() then work node by node. */
  private cluster: Cluster | null = null;
  /** The name, made once (it is in every read's verification); it changes when a URL turns out to be a cluster node. */
  private label: string;
  private readonly ownsClient: boolean;
  private clientPromise: Promise<RedisClient & Scripted> | null = null;
  /** The client, once made: saves an await per operation. */
  private ready: (RedisClient & Scripted) | null = null;
  /** The last connection error the client reported, as the cause of a ConnectionError. */
  private lastError: unknown = null;
  /** The server refused or dropped the connection and the client has not reconnected since. */
  private down = false;
  private closed = false;
  private readonly touchInterval: number;
  private readonly lastTouch = new Map<Key, number>();
  /** The client's socket while it is corked until the next tick, and the operations written into it since (see coalesce). */
  private corked: RedisClient['stream'] | null = null;
  /** Rejected when the Cluster loses every node, failing the operations in flight (see connect). */
  private clusterLost: { promise: Promise<never>; reject: (error: Error) => void } | null = null;
  private waiting = 0;

  constructor(target: RedisTarget = 'redis://127.0.0.1:6379', options: RedisLocationOptions = {}) {
    if (Array.isArray(target) && target.length === 0) throw new ConfigError('RedisLocation: the list of cluster nodes is empty');
    this.target = target;
    this.ownsClient = !isClient(target);
    this.prefix = options.prefix ?? '';
    const ttl = options.ttl ?? null;
    if (ttl !== null && !(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl))) {
      throw new ConfigError(`Invalid ttl: ${ttl} (expected a positive number of seconds, or null)`);
    }
    this.ttlMs = ttl === null ? 0 : Math.max(1, Math.round(ttl * 1000));
    this.keepLabels = options.keepLabels ?? true;
    this.keepUsage = options.keepUsage ?? true;
    this.maxSize = parseSize(options.maxSize ?? 512 * 1024 * 1024, 'maxSize');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.calls = new RemoteCalls({
      name: () => this.name,
      timeoutMs: this.timeoutMs,
      retry: options.retry ?? {},
      classify: (error) => this.classify(error),
      transientCode: 'ERR_REDIS_BUSY',
    });
    this.scanCount = options.scanCount ?? 500;
    this.batchSize = Math.max(1, options.batchSize ?? 256);
    this.redisOptions = options.redis ?? {};
    this.clusterOptions = options.cluster ?? {};
    this.touchInterval = options.touchInterval ?? 60_000;
    this.label = this.describe();
    const layout = options.layout ?? 'cairn';
    if (layout !== 'cairn' && layout !== 'tarn') throw new ConfigError(`RedisLocation: unknown layout ${JSON.stringify(layout)} (expected 'cairn' or 'tarn')`);
    this.tarn =
      layout === 'tarn'
        ? new TarnRedisLayout({
            name: () => this.name, // it changes once the server turns out to be a cluster node
            prefix: this.prefix,
            ttlMs: this.ttlMs,
            keepLabels: this.keepLabels,
            keepUsage: this.keepUsage,
            run: (operation, action) => this.run(operation, (client) => action(client as unknown as TarnClient)),
          })
        : null;
  }

  /** `Redis(url)`, `RedisCluster(nodes)` (also once a URL turned out to be a cluster node) or `RedisSentinel(name via sentinels)`, and the prefix. */
  get name(): string {
    return this.label;
  }

  private describe(): string {
    const described = describeTarget(this.target, this.cluster !== null);
    return this.prefix ? `${described.slice(0, -1)} prefix ${this.prefix})` : described;
  }

  async read(key: Key, options: LocationReadOptions = {}): Promise<Value | null> {
    assertKey(key);
    const mark = (options.use ?? true) ? this.touchDue(key) : 0;
    if (this.tarn) {
      const value = await this.tarn.value(key, mark);
      this.touched(key, value === null ? 0 : mark);
      return value;
    }
    const fields = await this.run('read', (client) => this.refreshed(client, key, mark, client.hgetallBuffer(this.prefix + key)));
    this.touched(key, mark);
    return this.toValue(key, fields);
  }

  /** The fast path for small values: only the bytes (HGET is cheaper than HGETALL), verified at once. */
  async readBytes(key: Key): Promise<Buffer | null> {
    assertKey(key);
    const mark = this.touchDue(key);
    if (this.tarn) {
      const bytes = await this.tarn.readBytes(key, mark);
      this.touched(key, bytes === null ? 0 : mark);
      return bytes;
    }
    const data = await this.run('read', (client) => this.refreshed(client, key, mark, client.hgetBuffer(this.prefix + key, DATA)));
    this.touched(key, mark);
    if (data === null) return null;
    verifyBytes(key, data, this.name);
    return data;
  }

  async *readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    if (this.tarn) {
      yield* this.readBatchTarn(keys);
      return;
    }
    let chunk: Key[] = [];
    /** One chunk's keys, their raw replies in the same order (see replyValue), and the replies' size. */
    type Read = { keys: Key[]; replies: unknown[]; bytes: number };
    const flush = async (): Promise<Read> => {
      const batch = chunk;
      chunk = [];
      const now = Date.now(); // one clock reading per chunk
      const marks = batch.map((key) => this.touchDue(key, now));
      const replies = await this.run('readBatch', (client) => (this.cluster ? this.pipelinedByNode(this.cluster, batch, marks) : this.pipelined(client, batch, marks)));
      for (let index = 0; index < batch.length; index++) this.touched(batch[index]!, marks[index]!);
      let bytes = 0;
      for (const reply of replies) bytes += replyBytes(reply);
      return { keys: batch, replies, bytes };
    };
    const seen = new Set<Key>();
    let limit = this.batchSize;
    // chunks read ahead: one until the size of a chunk is known
    let window = 1;
    // the next chunks' pipelines are sent while the caller takes the current one's values, so the
    // servers are never idle waiting for the caller (at most `window` + 1 chunks in memory)
    const ahead: Promise<Read>[] = [];
    const send = (): void => {
      const sent = flush();
      sent.catch(() => {}); // seen when its turn comes
      ahead.push(sent);
    };
    try {
      for (const key of keys) {
        assertKey(key);
        // every key once, as the interface promises
        if (seen.has(key)) continue;
        seen.add(key);
        chunk.push(key);
        if (chunk.length >= limit) {
          send();
          limit = this.batchSize * this.masterCount; // known once connected
          while (ahead.length > window) {
            const { keys: batch, replies, bytes } = await ahead.shift()!;
            window = Math.max(1, Math.min(READ_AHEAD, Math.floor(READ_AHEAD_BYTES / Math.max(1, bytes))));
            // one value at a time: `yield*` of an array costs an async generator twice as much per value
            for (let index = 0; index < batch.length; index++) yield [batch[index]!, this.replyValue(batch[index]!, replies[index])];
          }
        }
      }
      if (chunk.length > 0) send();
      while (ahead.length > 0) {
        const { keys: batch, replies } = await ahead.shift()!;
        for (let index = 0; index < batch.length; index++) yield [batch[index]!, this.replyValue(batch[index]!, replies[index])];
      }
    } finally {
      // a caller that stops early, or a failure: no pipeline is left running behind its back
      await Promise.all(ahead.map((sent) => sent.catch(() => null)));
    }
  }

  /** tarn's layout: `batchSize` reads at once (their commands share writes to the socket), each key once. */
  private async *readBatchTarn(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    const seen = new Set<Key>();
    let chunk: Key[] = [];
    const flush = async (): Promise<[Key, Value | null][]> => {
      const batch = chunk;
      chunk = [];
      const values = await Promise.all(batch.map((key) => this.read(key)));
      return batch.map((key, index) => [key, values[index]!]);
    };
    for (const key of keys) {
      assertKey(key);
      if (seen.has(key)) continue;
      seen.add(key);
      chunk.push(key);
      if (chunk.length >= this.batchSize) yield* await flush();
    }
    if (chunk.length > 0) yield* await flush();
  }

  /** Masters of the cluster (1 for a single server): a batch on a cluster is `batchSize` reads per master, one pipeline each. */
  private get masterCount(): number {
    return this.cluster?.status === 'ready' ? Math.max(1, this.cluster.nodes('master').length) : 1;
  }

  /**
   * The replies of `batch` in one pipeline, each read followed by its usage mark or ttl refresh if
   * any, into `replies` at `indexes` (all of `batch` without them). A read is `HGETALL` as a raw
   * array of fields and values, or `HGET … d` (the bytes alone) when no labels are kept: ioredis'
   * object for an `HGETALL` costs a string per field name of every value, and Redis sends less.
   */
  private async pipelined(client: RedisClient | Cluster, batch: readonly Key[], marks: readonly number[], indexes?: readonly number[], replies: unknown[] = new Array(batch.length)): Promise<unknown[]> {
    const pipeline = client.pipeline();
    const count = indexes ? indexes.length : batch.length;
    const ttl = String(this.ttlMs);
    // `at[i]` is where the read of the i-th key is in the pipeline
    const at = new Array<number>(count);
    for (let i = 0; i < count; i++) {
      const index = indexes ? indexes[i]! : i;
      const name = this.prefix + batch[index]!;
      at[i] = pipeline.length;
      if (this.keepLabels) pipeline.callBuffer('HGETALL', name);
      else pipeline.hgetBuffer(name, DATA);
      if (marks[index] !== 0) void (pipeline as unknown as Scripted).cairnTouch(name, ttl, String(marks[index]));
      else if (this.ttlMs !== 0) pipeline.pexpire(name, this.ttlMs);
    }
    const results = (await pipeline.exec()) ?? [];
    for (let i = 0; i < count; i++) {
      const [error, reply] = results[at[i]!] ?? [new Error('no reply in the pipeline'), null];
      if (error) throw error;
      replies[indexes ? indexes[i]! : i] = reply;
    }
    return replies;
  }

  /** The same on a cluster, where a pipeline may hold only keys of one node: one pipeline per node, all in flight at once. */
  private async pipelinedByNode(cluster: Cluster, batch: readonly Key[], marks: readonly number[]): Promise<unknown[]> {
    await clusterReady(cluster, this.timeoutMs);
    const groups = new Map<string, number[]>();
    const slots = cluster.slots;
    for (let index = 0; index < batch.length; index++) {
      const slot = keySlot(this.prefix + batch[index]!);
      // by the node serving the slot; a slot whose node is unknown (resharding) goes alone
      const node = slots[slot]?.[0] ?? `slot ${slot}`;
      const group = groups.get(node);
      if (group) group.push(index);
      else groups.set(node, [index]);
    }
    const replies: unknown[] = new Array(batch.length);
    await Promise.all(Array.from(groups.values(), (indexes) => this.pipelined(cluster, batch, marks, indexes, replies)));
    return replies;
  }

  /** A read's reply as a Value: `HGETALL`'s fields and values (empty for a missing key), or `HGET`'s bytes (null). */
  private replyValue(key: Key, reply: unknown): Value | null {
    if (!Array.isArray(reply)) return reply === null ? null : inMemoryValue(key, reply as Buffer, this.name, noLabels);
    const fields = reply as Buffer[];
    let data: Buffer | undefined;
    for (let index = 0; index < fields.length; index += 2) {
      const field = fields[index]!;
      if (field.length === 1 && field[0] === DATA_BYTE) data = fields[index + 1];
    }
    if (data === undefined) return null;
    // labels are made into strings only when asked for (most reads want the bytes alone)
    return inMemoryValue(key, data, this.name, async () => labelsOf(fields));
  }

  /** True when `key` is there (HEXISTS): the value is not read, nor marked as used. */
  async has(key: Key): Promise<boolean> {
    assertKey(key);
    if (this.tarn) return this.tarn.has(key);
    return (await this.run('has', (client) => client.hexists(this.prefix + key, DATA))) === 1;
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    assertKey(key);
    if (source.size !== null && source.size > this.maxSize) return null;
    const bytes = await readUpTo(source, this.maxSize);
    if (bytes === null) return null;
    if (!source.verified) verifyBytes(key, bytes, `a copy into ${this.name}`);
    if (this.tarn) {
      const mark = this.keepUsage ? Date.now() : 0;
      await this.tarn.write(key, bytes, labels, mark);
      this.touched(key, mark);
    } else {
      const fields = this.keepLabels && labels ? [...new Set(labels)].map((label) => LABEL + label) : [];
      await this.run('write', (client) => client.cairnWrite(this.prefix + key, bytes, String(this.ttlMs), this.usageMark(), ...fields));
    }
    // the bytes in hand hash to the key (checked above, or by the caller), so they are the stored ones;
    // the stored labels (the union with earlier writes') are fetched once, if asked for
    let stored: Promise<string[] | null> | null = null;
    const labelsOnce = (): Promise<string[] | null> =>
      (stored ??= this.storedLabels(key).catch((error: unknown) => {
        stored = null; // a failure is not kept: the next call asks again
        throw error;
      }));
    return inMemoryValue(key, bytes, this.name, labelsOnce);
  }

  /** The labels stored with `key` (HKEYS), or null when this location keeps none. */
  private async storedLabels(key: Key): Promise<string[] | null> {
    if (!this.keepLabels) return null;
    if (this.tarn) return (await this.tarn.labels(key)) ?? [];
    const fields = await this.run('labels', (client) => client.hkeys(this.prefix + key));
    return fields.filter((field) => field.startsWith(LABEL)).map((field) => field.slice(LABEL.length));
  }

  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    if (this.tarn) return this.tarn.delete(key);
    const removed = await this.run('delete', (client) => client.del(this.prefix + key));
    return removed > 0;
  }

  async touch(key: Key): Promise<boolean> {
    assertKey(key);
    if (this.tarn) return this.tarn.touch(key, this.keepUsage ? Date.now() : 0);
    const touched = await this.run('touch', (client) => client.cairnTouch(this.prefix + key, String(this.ttlMs), this.usageMark()));
    return touched === 1;
  }

  /**
   * Every hash under the prefix, one SCAN page at a time (on a cluster, master after master): memory
   * stays one page whatever the key count. SCAN may return a key twice when Redis resizes its table
   * during the listing; a page never holds one twice.
   */
  async *contents(): AsyncIterable<Entry> {
    await this.run('contents', async () => undefined); // connects: whether this is a cluster is known from here on
    const cluster = this.cluster;
    const tarn = this.tarn;
    if (tarn) {
      const scanOn = (node: RedisClient) => (cursor: string, pattern: string) =>
        this.run('contents', () => node.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', this.scanCount, 'TYPE', 'string'));
      const nodes: RedisClient[] =
        cluster === null
          ? [await this.run('contents', async (client) => client)]
          : await this.run('contents', async () => {
              await clusterReady(cluster, this.timeoutMs);
              return cluster.nodes('master');
            });
      for (const node of nodes) yield* tarn.scanned(this, scanOn(node));
      return;
    }
    if (cluster === null) {
      yield* this.scanned((cursor, pattern) => this.run('contents', (client) => client.scan(cursor, 'MATCH', pattern, 'COUNT', this.scanCount, 'TYPE', 'hash')));
      return;
    }
    const masters = await this.run('contents', async () => {
      await clusterReady(cluster, this.timeoutMs);
      return cluster.nodes('master');
    });
    for (const master of masters) {
      yield* this.scanned((cursor, pattern) => this.run('contents', () => master.scan(cursor, 'MATCH', pattern, 'COUNT', this.scanCount, 'TYPE', 'hash')));
    }
  }

  /** The entries of one server's SCAN, page by page, with their sizes, labels and last use (one pipeline per page). */
  private async *scanned(scan: (cursor: string, pattern: string) => Promise<[string, string[]]>): AsyncIterable<Entry> {
    const pattern = this.prefix.replace(/[*?[\]\\]/g, (char) => '\\' + char) + '*';
    let cursor = '0';
    do {
      const [next, names] = await scan(cursor, pattern);
      cursor = next;
      const keys = [...new Set(names.map((name) => name.slice(this.prefix.length)).filter((key) => isKey(key)))];
      if (keys.length === 0) continue;
      // the keys of one node's page are in that node's slots, so one pipeline holds them on a cluster too
      const metas = await this.run('contents', async (client) => {
        const pipeline = client.pipeline() as unknown as Scripted & { exec(): Promise<[Error | null, unknown][] | null> };
        for (const key of keys) void pipeline.cairnMeta(this.prefix + key);
        return ((await pipeline.exec()) ?? []).map(([error, reply]) => {
          if (error) throw error;
          return reply as [number, string, string[]] | null;
        });
      });
      for (let index = 0; index < keys.length; index++) {
        const meta = metas[index];
        const key = keys[index]!;
        if (!meta) continue; // deleted or expired since SCAN saw it
        const [size, used, fields] = meta;
        const labels = fields.filter((field) => field.startsWith(LABEL)).map((field) => field.slice(LABEL.length));
        yield {
          key,
          location: this,
          meta: {
            size,
            labels: this.keepLabels ? labels : null,
            lastUsed: this.keepUsage && used ? new Date(Number(used)) : null,
          },
        };
      }
    } while (cursor !== '0');
  }

  /**
   * Runs `action` on this location's client, with its deadline, typed errors and retries of
   * transient failures: for cairn's own key spaces beside the hashes (smartCache's index, its
   * locks), which are not content-addressed and so are not read through `read()`.
   */
  command<T>(operation: string, action: (client: RedisClient) => Promise<T>): Promise<T> {
    return this.run(operation, action);
  }

  /**
   * What another connection to the same server is made from (a worker thread opens its own): the
   * URL, if any, and the settings of the options or the client that can be sent to a thread.
   */
  connectionTarget(): { url: string | null; options: RedisOptions } {
    if (Array.isArray(this.target) || isCluster(this.target) || this.cluster !== null) {
      throw new ConfigError(`${this.name} is a Redis Cluster: a second connection to it (smartCache's Redis locks) is made for a single server or a Sentinel group only`);
    }
    if (typeof this.target === 'string') return { url: this.target, options: pickPlain(this.redisOptions) };
    return { url: null, options: pickPlain(isClient(this.target) ? this.target.options : { ...this.target, ...this.redisOptions }) };
  }

  /** Quits the client this location created; a client given by the user is left open. */
  async close(): Promise<void> {
    this.closed = true;
    if (!this.ownsClient || this.clientPromise === null) return;
    const client = await this.clientPromise.catch(() => null);
    this.clientPromise = null;
    this.ready = null;
    if (client === null) return;
    if (client.status !== 'ready') {
      client.disconnect();
      return;
    }
    await withDeadline(client.quit(), this.timeoutMs).catch(() => client.disconnect());
  }

  private usageMark(): string {
    return this.keepUsage ? String(Date.now()) : '';
  }

  /**
   * The usage mark a read of `key` sets now (ms since the epoch), or 0: reads mark a key at most once
   * per `touchInterval` per process, since the mark is a write on the server.
   */
  private touchDue(key: Key, now = Date.now()): number {
    if (!this.keepUsage) return 0;
    const last = this.lastTouch.get(key);
    return last !== undefined && now - last < this.touchInterval ? 0 : now;
  }

  /** Records a mark once the read that set it succeeded: after a failed read the next one marks. */
  private touched(key: Key, mark: number): void {
    if (mark === 0) return;
    if (this.lastTouch.size >= 100_000) this.lastTouch.clear(); // bounded memory; a cleared mark only costs one extra touch
    this.lastTouch.set(key, mark);
  }

  /**
   * `reply` (a read just sent), with the refresh that goes with it sent right behind it: the usage
   * mark when due (a script that also refreshes the ttl, a no-op for a missing key), else the ttl
   * alone. Both leave in one write, so a read stays one round trip.
   */
  private refreshed<T>(client: RedisClient & Scripted, key: Key, mark: number, reply: Promise<T>): Promise<T> {
    const name = this.prefix + key;
    let refresh: Promise<unknown>;
    if (mark !== 0) refresh = client.cairnTouch(name, String(this.ttlMs), String(mark));
    else if (this.ttlMs !== 0) refresh = client.pexpire(name, this.ttlMs);
    else return reply;
    return Promise.all([reply, refresh]).then(([value]) => value);
  }

  private toValue(key: Key, fields: Record<string, Buffer>): Value | null {
    const data = fields[DATA];
    if (data === undefined) return null;
    const labels = Object.keys(fields)
      .filter((field) => field.startsWith(LABEL))
      .map((field) => field.slice(LABEL.length));
    // sha256 of a Redis-sized value is cheap: checked once, on first use
    return inMemoryValue(key, data, this.name, async () => (this.keepLabels ? labels : null));
  }

  private client(): Promise<RedisClient & Scripted> {
    if (this.closed) return Promise.reject(new LocationError(`${this.name} is closed`, this.name));
    // a failed connect (server down, refused) is not kept: the next operation tries again
    this.clientPromise ??= this.connect().catch((error: unknown) => {
      this.clientPromise = null;
      throw error;
    });
    return this.clientPromise;
  }

  private async connect(): Promise<RedisClient & Scripted> {
    const made = await this.makeClient();
    if (isCluster(made)) {
      this.cluster = made;
      this.label = this.describe();
    }
    // a Cluster answers the same single-key commands; what differs (batches, listings) goes through this.cluster
    const client = made as RedisClient;
    // without a listener ioredis prints every connection error; we keep the last one as a cause
    const failed = (error: unknown) => {
      this.lastError = error;
      if (isDownCode(errorCode(error))) this.down = true;
    };
    client.on('error', failed);
    if (isCluster(made)) {
      // a Cluster that lost every node queues the commands until they time out: they fail as a lost connection instead
      made.on('close', () => {
        this.down = true;
        this.clusterLost?.reject(new Error('Connection is closed.'));
        this.clusterLost = null;
      });
    }
    client.on('ready', () => {
      this.down = false;
    });
    for (const [name, lua] of Object.entries(COMMANDS)) {
      if (typeof (client as unknown as Record<string, unknown>)[name] !== 'function') client.defineCommand(name, { numberOfKeys: 1, lua });
    }
    this.ready = client as RedisClient & Scripted;
    return this.ready;
  }

  /** The user's client, or one made from the target: a URL or options that lead to a cluster node give a Cluster. */
  private async makeClient(): Promise<RedisClient | Cluster> {
    const target = this.target;
    if (isCluster(target)) return target;
    if (isClient(target)) {
      // a plain client on a cluster node would fail most writes with MOVED: refuse it at once
      if (!target.options.sentinels && (await servesCluster(target, this.timeoutMs))) {
        throw new ConfigError(`${this.name}: the client given is connected to a node of a Redis Cluster; pass an ioredis Cluster (new Cluster([...nodes])), a list of nodes, or the node's URL`);
      }
      return target;
    }
    // loaded here, so that importing cairn does not load ioredis
    const { Redis, Cluster: ClusterClient } = await importOptional<typeof import('ioredis')>('ioredis', 'RedisLocation');
    const options: RedisOptions = {
      connectTimeout: this.timeoutMs,
      commandTimeout: this.timeoutMs,
      // ioredis retries a command forever by default: fail it after one reconnect attempt instead
      maxRetriesPerRequest: 1,
      // auto-pipelining made concurrent single reads slower (0.5x a bare GET loop); coalesce() batches writes for less
      enableAutoPipelining: false,
      retryStrategy: (times) => Math.min(times * 100, 500),
      ...this.redisOptions,
    };
    const clusterOptions = (redisOptions: RedisOptions): ClusterOptions => ({
      clusterRetryStrategy: (times) => Math.min(times * 100, 500),
      slotsRefreshTimeout: this.timeoutMs,
      enableAutoPipelining: false,
      ...this.clusterOptions,
      redisOptions: { ...redisOptions, ...this.clusterOptions.redisOptions },
    });
    if (Array.isArray(target)) return new ClusterClient([...(target as readonly ClusterNode[])], clusterOptions(options));
    const single = typeof target === 'string' ? new Redis(target, options) : new Redis({ ...(target as RedisOptions), ...options });
    if (single.options.sentinels) return single; // Sentinel hands out a master, never a cluster node
    let cluster: boolean;
    try {
      cluster = await servesCluster(single, this.timeoutMs);
    } catch (error) {
      single.disconnect();
      throw error;
    }
    if (!cluster) return single;
    // one node of a cluster: discover the others from it, with the same credentials and settings
    const { host, port, username, password, tls, db } = single.options;
    single.disconnect();
    if (db) throw new ConfigError(`${this.name}: a Redis Cluster has only database 0, the URL asks for ${db}`);
    const nodeOptions: RedisOptions = { ...options, ...(username ? { username } : {}), ...(password ? { password } : {}), ...(tls ? { tls } : {}) };
    return new ClusterClient([{ host, port }], clusterOptions(nodeOptions));
  }

  /**
   * Runs one operation with a deadline, typed errors and retries of transient failures. Not async:
   * the common path adds one promise to ioredis' own, and the retry loop starts only after a failure.
   */
  private run<T>(operation: string, action: (client: RedisClient & Scripted) => Promise<T>): Promise<T> {
    return this.calls.run(operation, () => this.send(action));
  }

  /** One attempt, its errors still untyped. */
  private send<T>(action: (client: RedisClient & Scripted) => Promise<T>): Promise<T> {
    const client = this.ready;
    if (client === null) return this.client().then(() => this.send(action));
    // while the server is known to be down, fail at once instead of waiting in ioredis' offline queue
    if (this.down && client.status !== 'ready') return Promise.reject(new Error('Connection is closed.'));
    this.coalesce(client);
    // a client we made has ioredis' commandTimeout; a user's client gets our own deadline
    const running = this.ownsClient ? action(client) : withDeadline(action(client), this.timeoutMs);
    return this.cluster === null ? running : Promise.race([running, this.whenClusterLost()]);
  }

  private whenClusterLost(): Promise<never> {
    if (this.clusterLost === null) {
      let reject!: (error: Error) => void;
      const promise = new Promise<never>((_resolve, fail) => (reject = fail));
      promise.catch(() => {}); // seen by the operations racing it; none may be waiting
      this.clusterLost = { promise, reject };
    }
    return this.clusterLost.promise;
  }

  /**
   * Operations started in one tick share writes: the socket stays corked until the next tick and is
   * flushed every OPS_PER_WRITE operations. ioredis alone makes a write(2) per command, which on
   * loopback costs more than the rest of a 4 KiB read; flushing only once per tick made Redis wait
   * for the whole tick when it has a core of its own. A read and its refresh share one write.
   */
  private coalesce(client: RedisClient): void {
    const stream = client.stream as RedisClient['stream'] | undefined; // a Cluster has none
    if (typeof stream?.cork !== 'function') return;
    if (this.corked !== stream) {
      this.corked = stream;
      this.waiting = 0;
      stream.cork();
      process.nextTick(() => {
        if (this.corked === stream) this.corked = null;
        stream.uncork();
      });
    } else if (++this.waiting % OPS_PER_WRITE === 0) {
      stream.uncork();
      stream.cork();
    }
  }

  /** What kind of failure an error of ioredis is. */
  private classify(error: unknown): Classified {
    const message = error instanceof Error ? error.message : String(error);
    if (message === 'Command timed out') return { kind: 'timeout' };
    if (
      (error instanceof Error && error.name === 'MaxRetriesPerRequestError') ||
      isDownCode(errorCode(error)) ||
      /Connection is closed|Stream isn't writeable|connect ETIMEDOUT|Command aborted due to connection close/.test(message)
    ) {
      // the client's own words ("Connection is closed") say less than the socket error behind them
      const cause = this.lastError ?? error;
      return { kind: 'connection', detail: cause instanceof Error ? cause.message : String(cause), cause };
    }
    if (/^(LOADING|BUSY|TRYAGAIN|MASTERDOWN)/.test(message)) return { kind: 'transient' };
    if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(message)) return { kind: 'auth' };
    return { kind: 'permanent' };
  }
}

/** The settings of `options` that a worker thread can receive: those structuredClone takes (no functions). */
function pickPlain(options: RedisOptions): RedisOptions {
  const plain: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    if (typeof value === 'function' || value === undefined) continue;
    try {
      plain[name] = structuredClone(value);
    } catch {
      // a setting holding functions or handles stays with the main thread's client
    }
  }
  return plain as RedisOptions;
}

import { PassThrough, type Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { inMemoryValue, type Source, type Value } from '../../blob.js';
import { digestStream, hashStream } from '../../digest.js';
import { ConfigError, LocationError, StorageCorruption } from '../../errors.js';
import { assertKey, isKey, type Key, keyToParts } from '../../key.js';
import { parseSize, type Size } from '../../size.js';
import type { Entry, Location, LocationReadOptions } from '../interface.js';
import { importOptional } from '../../optional.js';
import { distinct, inOrder } from '../in-order.js';
import { KeyQueue } from '../key-queue.js';
import { TouchThrottle } from '../lake/touch-throttle.js';
import { DeadlineExceeded, deadlineSignal } from '../net/deadline.js';
import { type Classified, CONNECTION_CODES, errorCode } from '../net/failures.js';
import { RemoteCalls } from '../net/remote-calls.js';
import type { RetryOptions } from '../net/retry.js';
import { BatchLabels } from './s3-batch-labels.js';
import { UsageMarks } from './s3-usage-marks.js';
import { addToTags, labelsOfTags, lastUsedOfTags, TARN_LEVELS, type Tags, tagSet, tagsFrom } from './s3-tarn.js';

export interface S3Options {
  /**
   * How values, labels and last uses are kept. 'cairn': values at `ab/cdef…`, labels and last use
   * as small marker objects under `tools/`. 'tarn': tarn's own layout, so that tarn's S3 location
   * and cairn share one bucket: values at `abcd/ef…` (levels [2, -1]), labels and the last use as
   * tags of the value's object (`_<label>`, `usage_date`). @default 'cairn'
   */
  layout?: 'cairn' | 'tarn';
  /** A folder inside the bucket that holds the lake; a '/' is added when missing. @default '' (the bucket's root) */
  prefix?: string;
  /** The region, for a client made from an endpoint. @default 'us-east-1' */
  region?: string;
  /** Credentials, for a client made from an endpoint. @default the SDK's default chain (environment, profile, instance role) */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Path-style URLs (`endpoint/bucket/key`), as MinIO and most self-hosted servers want. @default true */
  forcePathStyle?: boolean;
  /** Bytes of the digest per folder level, -1 for the rest, as Disk's `levels`. @default [1, -1]  (`ab/cdef…`) */
  levels?: number[];
  /** Size of each part of a multipart upload (at least 5 MiB). @default 8MiB */
  partSize?: Size;
  /** Parts uploaded at once; memory held by one upload is at most `partSize × queueSize`. @default 4 */
  queueSize?: number;
  /** Values of known size up to this go up in one streamed PUT; larger ones, or of unknown size, in parts. @default 16MiB */
  multipartThreshold?: Size;
  /** Connect timeout, inactivity timeout of a transfer, and the limit for one small request (HEAD, listing…). @default 30000 */
  timeoutMs?: number;
  /** Keep labels (the union of every write) as small marker objects beside the value. @default true */
  keepLabels?: boolean;
  /** Keep a last-used mark (a marker object rewritten by touch and, at most once per `touchInterval`, by reads). @default true */
  keepUsage?: boolean;
  /** A read refreshes a key's last-used mark at most once per this many milliseconds per process. @default 60000 */
  touchInterval?: number;
  /** Keys per ListObjectsV2 page in contents(). @default 1000 */
  pageSize?: number;
  /** GETs readBatch (and so HashKeyStorage.fetch) keeps in flight at once. @default 16 */
  readAhead?: number;
  /** Retries of transient failures (connection reset, 5xx, throttling). @default { attempts: 3 } */
  retry?: RetryOptions;
  /** More settings for the client made from an endpoint (not used when a client is given). @default {} */
  client?: S3ClientConfig;
}

/** Values up to this size are read into memory by read(), which frees the connection at once. */
const EAGER_BYTES = 1024 * 1024;
/** A body that read() opened and nobody streamed is closed after this long, to free its connection. */
const HOLD_MS = 10_000;
/** Every key starts with a hex digit; sidecars live under `tools/`, which sorts after them. */
const TOOLS = 'tools/';

type Sdk = typeof import('@aws-sdk/client-s3');
type Storage = typeof import('@aws-sdk/lib-storage');

/** What send() gives back: the fields of the replies this file reads. */
interface Reply {
  Body?: unknown;
  ContentLength?: number;
  LastModified?: Date;
  Errors?: { Key?: string; Code?: string; Message?: string }[];
  Contents?: Listed[];
  TagSet?: { Key?: string; Value?: string }[];
  IsTruncated?: boolean;
  NextContinuationToken?: string;
}
/** Any of the SDK's commands (their types do not unify with send()'s overloads). */
type Command = { readonly input: object };

interface Listed {
  Key?: string;
  Size?: number;
  LastModified?: Date;
}

function isS3Client(value: unknown): value is S3Client {
  return typeof value === 'object' && value !== null && typeof (value as S3Client).send === 'function' && 'config' in value;
}

/**
 * An S3 bucket (AWS, MinIO, Ceph, s3rver…): each value is one object at `<prefix>ab/cdef…`,
 * uploaded and downloaded as streams and verified against its key while the bytes flow.
 *
 * Labels are empty marker objects `<prefix>tools/labels/<path>/<label>` (so adding one is a single
 * PUT, and concurrent writers never lose each other's labels); the last-used time is the
 * modification time of `<prefix>tools/usage/<path>` (or of the value, when it was never touched).
 */
export class S3 implements Location {
  readonly name: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly levels: readonly number[];
  private readonly target: string | S3Client | null;
  private readonly options: S3Options;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly multipartThreshold: number;
  private readonly timeoutMs: number;
  private readonly keepLabels: boolean;
  private readonly keepUsage: boolean;
  private readonly pageSize: number;
  private readonly readAhead: number;
  /** Every request goes through it: typed errors, retries of transient failures. */
  private readonly calls: RemoteCalls;
  private readonly ownsClient: boolean;
  private loaded: Promise<{ sdk: Sdk; storage: Storage; client: S3Client }> | null = null;
  private bucketChecked: Promise<void> | null = null;
  private readonly writing = new Map<Key, Promise<number | null>>();
  /** tarn's layout: labels and last use are tags of the value's object. */
  private readonly tarn: boolean;
  /** One read-modify-write of a key's tags at a time in this process (S3 has no atomic tag update). */
  private readonly tagging = new KeyQueue();
  /** When reads last moved each key's mark (bounded: a forgotten key costs one more mark). */
  private readonly throttle: TouchThrottle;
  /** The marks reads owe, written beside the reads rather than before them returned. */
  private readonly marks = new UsageMarks(
    (key) => this.markUsed(key),
    (key, error) => {
      // as Disk reports a mark its worker could not write: the read succeeded, the process is told
      const failure = this.calls.failure('touch', error) as Error;
      process.emitWarning(`The last-used mark of ${key} in ${this.name} was not written: ${failure.message}`, { code: 'CAIRN_USAGE_MARK', detail: failure.name });
    },
  );

  /**
   * @param target an endpoint URL (`http://minio.lab:9000`), an S3Client, or null for AWS with the default settings
   * @param bucket the bucket; it must exist
   */
  constructor(target: string | S3Client | null, bucket: string, options: S3Options = {}) {
    this.target = target;
    this.bucket = bucket;
    this.options = options;
    const prefix = options.prefix ?? '';
    this.prefix = prefix === '' || prefix.endsWith('/') ? prefix : prefix + '/';
    const layout = options.layout ?? 'cairn';
    if (layout !== 'cairn' && layout !== 'tarn') throw new ConfigError(`S3: unknown layout ${JSON.stringify(layout)} (expected 'cairn' or 'tarn')`);
    this.tarn = layout === 'tarn';
    if (this.tarn && options.levels && JSON.stringify(options.levels) !== JSON.stringify(TARN_LEVELS)) {
      throw new ConfigError(`S3: the tarn layout has tarn's levels [2, -1], not ${JSON.stringify(options.levels)}`);
    }
    this.levels = this.tarn ? TARN_LEVELS : (options.levels ?? [1, -1]);
    this.partSize = Math.max(5 * 1024 * 1024, parseSize(options.partSize ?? 8 * 1024 * 1024, 'partSize'));
    this.queueSize = Math.max(1, options.queueSize ?? 4);
    this.multipartThreshold = parseSize(options.multipartThreshold ?? 16 * 1024 * 1024, 'multipartThreshold');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.keepLabels = options.keepLabels ?? true;
    this.keepUsage = options.keepUsage ?? true;
    this.throttle = new TouchThrottle(options.touchInterval ?? 60_000);
    this.pageSize = Math.max(1, Math.min(1000, options.pageSize ?? 1000));
    this.readAhead = Math.max(1, options.readAhead ?? 16);
    this.calls = new RemoteCalls({
      name: () => this.name,
      timeoutMs: this.timeoutMs,
      retry: { attempts: 3, ...options.retry },
      classify: classifyS3,
      transientCode: 'ERR_S3_TRANSIENT',
    });
    this.ownsClient = !isS3Client(target);
    const where = typeof target === 'string' ? target.replace(/\/\/[^@/]*@/, '//').replace(/\/$/, '') : isS3Client(target) ? 's3-client' : 'aws';
    this.name = `S3(${where}/${bucket}${this.prefix ? '/' + this.prefix.replace(/\/$/, '') : ''})`;
  }

  /** The object name of `key`. */
  objectKey(key: Key): string {
    assertKey(key);
    return this.prefix + keyToParts(key, this.levels).join('/');
  }

  read(key: Key, options: LocationReadOptions = {}): Promise<Value | null> {
    return this.readValue(key, options, () => this.labelsOf(key));
  }

  /** read(), with the labels of the value given by `labels` (readBatch looks them up for many values at once). */
  private async readValue(key: Key, options: LocationReadOptions, labels: () => Promise<string[] | null>): Promise<Value | null> {
    const response = await this.get(key, 'read');
    if (response === null) return null;
    if (this.keepUsage && (options.use ?? true)) await this.noteUse(key);
    const size = response.size;
    // small values come into memory at once (freeing the connection) and are checked on first use
    if (size !== null && size <= EAGER_BYTES) {
      const eager = await collectStream(response.body).catch((error: unknown) => {
        throw this.calls.failure('read', error);
      });
      return inMemoryValue(key, eager, this.name, labels);
    }
    let pending: Readable | null = response.body;
    const unused = pending;
    setTimeout(() => {
      if (pending === unused) {
        pending = null;
        unused.destroy();
      }
    }, HOLD_MS).unref();
    const open = (): Readable => {
      const body = pending;
      pending = null;
      return body ? this.verifying(key, body) : this.reopen(key);
    };
    return {
      key,
      size,
      path: null,
      stream: open,
      bytes: () => collectStream(open()),
      labels,
    };
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    const response = await this.get(key, 'read');
    if (response === null) return null;
    const [bytes] = await Promise.all([this.collect(key, response.body), this.keepUsage ? this.noteUse(key) : null]);
    return bytes;
  }

  /**
   * Reads `readAhead` keys at once (each a GET of its own: S3 has no batch read), handing them out
   * in order. In the cairn layout, the labels of the values found are looked up together, when the
   * first of them is asked (see s3-batch-labels.ts): a value's labels are those listed then.
   */
  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    // a caller that stops early: the reads in flight are waited for (a large body nobody streams is closed after HOLD_MS)
    if (this.tarn || !this.keepLabels) return inOrder(distinct(keys), this.readAhead, (key) => this.read(key));
    let window = this.labelsWindow();
    return inOrder(distinct(keys), this.readAhead, async (key) => {
      // (labels() is only called on the value handed out, once windowOf below is set)
      const found = await this.readValue(key, {}, () => windowOf.labels(key));
      if (found === null) return null;
      if (!window.open) window = this.labelsWindow();
      const windowOf = window;
      windowOf.add(key);
      return found;
    });
  }

  private labelsWindow(): BatchLabels {
    const root = this.prefix + TOOLS + 'labels/';
    return new BatchLabels(
      (key) => this.labelPrefix(key).slice(0, -1),
      async (startAfter) => {
        const { sdk } = await this.load();
        const page = await this.send('labels', () => new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: root, StartAfter: startAfter, MaxKeys: this.pageSize }));
        return { names: (page.Contents ?? []).map((item) => item.Key!), truncated: page.IsTruncated ?? false };
      },
      (key) => this.labelsOf(key),
    );
  }

  /** True when `key` is there: one HEAD, which neither reads the value nor marks it as used. */
  async has(key: Key): Promise<boolean> {
    return (await this.head(this.objectKey(key), 'has')) !== null;
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    const objectKey = this.objectKey(key);
    // one upload per key at a time in this process; the others wait for it
    let upload = this.writing.get(key);
    if (upload === undefined) {
      upload = this.uploadIfMissing(key, objectKey, source).finally(() => this.writing.delete(key));
      this.writing.set(key, upload);
    }
    const size = await upload;
    if (this.tarn) {
      // tarn's write labels the value and marks it used: one update of its tags
      const wanted = this.keepLabels && labels?.length ? [...new Set(labels)] : [];
      const usedAt = this.keepUsage ? Date.now() : null;
      if (usedAt !== null) this.throttle.record(key, usedAt);
      if (wanted.length > 0 || usedAt !== null) await this.updateTags(key, objectKey, wanted, usedAt, 'write');
      return this.storedValue(key, size ?? source.size);
    }
    if (this.keepLabels && labels?.length) {
      await Promise.all([...new Set(labels)].map((label) => this.putMarker(this.labelPrefix(key) + encodeURIComponent(label), 'write')));
    }
    return this.storedValue(key, size ?? source.size);
  }

  /** The object of `key` just stored, read lazily: each stream() or bytes() is a GET of its own, verified against the key. */
  private storedValue(key: Key, size: number | null): Value {
    return {
      key,
      size,
      path: null,
      stream: () => this.reopen(key),
      bytes: () => collectStream(this.reopen(key)),
      labels: () => this.labelsOf(key),
    };
  }

  async delete(key: Key): Promise<boolean> {
    const objectKey = this.objectKey(key);
    // a mark a read queued is not written after the delete (it would outlive the value)
    await this.marks.settle(key);
    this.throttle.forget(key);
    if ((await this.head(objectKey, 'delete')) === null) return false;
    const { sdk } = await this.load();
    if (this.tarn) {
      await this.send('delete', () => new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return true;
    }
    const sidecars: string[] = [];
    if (this.keepUsage) sidecars.push(this.usageKey(key));
    if (this.keepLabels) for await (const item of this.list(this.labelPrefix(key), 'delete')) sidecars.push(item.Key!);
    await this.send('delete', () => new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    if (sidecars.length > 0) {
      await this.send('delete', () => new sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: sidecars.map((Key) => ({ Key })), Quiet: true } }));
    }
    return true;
  }

  async touch(key: Key): Promise<boolean> {
    const objectKey = this.objectKey(key);
    if ((await this.head(objectKey, 'touch')) === null) return false;
    if (this.keepUsage) await this.markUsed(key);
    return true;
  }

  /**
   * Lists the values page by page, joined with the sorted listings of the usage and label
   * markers (all three come in the same order), so no request is made per value.
   */
  async *contents(): AsyncIterable<Entry> {
    if (this.tarn) {
      yield* this.tarnContents();
      return;
    }
    const pathLength = keyToParts('0'.repeat(64), this.levels).join('/').length;
    const usage = this.keepUsage ? new Peekable(this.list(this.prefix + TOOLS + 'usage/', 'contents')) : null;
    const labels = this.keepLabels ? new Peekable(this.list(this.prefix + TOOLS + 'labels/', 'contents')) : null;
    const usageRoot = this.prefix.length + TOOLS.length + 'usage/'.length;
    const labelsRoot = this.prefix.length + TOOLS.length + 'labels/'.length;
    for await (const item of this.list(this.prefix, 'contents')) {
      const path = item.Key!.slice(this.prefix.length);
      // keys begin with a hex digit: past 'f' only the sidecars under tools/ remain
      if (path[0]! > 'f') break;
      const key = path.replaceAll('/', '');
      if (path.length !== pathLength || !isKey(key) || this.objectKey(key) !== item.Key) continue;
      let lastUsed: Date | null = null;
      if (usage) {
        let marker = await usage.peek();
        while (marker && marker.Key!.slice(usageRoot) < path) marker = await usage.next();
        lastUsed = item.LastModified ?? null;
        if (marker && marker.Key!.slice(usageRoot) === path) {
          if (marker.LastModified && (!lastUsed || marker.LastModified > lastUsed)) lastUsed = marker.LastModified;
          await usage.next();
        }
      }
      let found: string[] | null = null;
      if (labels) {
        found = [];
        let marker = await labels.peek();
        while (marker && marker.Key!.slice(labelsRoot, labelsRoot + pathLength) < path) marker = await labels.next();
        while (marker && marker.Key!.slice(labelsRoot, labelsRoot + pathLength) === path) {
          found.push(decodeURIComponent(marker.Key!.slice(labelsRoot + pathLength + 1)));
          marker = await labels.next();
        }
      }
      yield { key, location: this, meta: { size: item.Size ?? null, labels: found, lastUsed } };
    }
  }

  /** tarn's layout: the values, with their labels and last use read from each one's tags. */
  private async *tarnContents(): AsyncIterable<Entry> {
    const pathLength = keyToParts('0'.repeat(64), this.levels).join('/').length;
    for await (const item of this.list(this.prefix, 'contents')) {
      const path = item.Key!.slice(this.prefix.length);
      const key = path.replaceAll('/', '');
      if (path.length !== pathLength || !isKey(key) || this.objectKey(key) !== item.Key) continue;
      const tags = this.keepLabels || this.keepUsage ? await this.tags(item.Key!, 'contents') : null;
      if (tags === undefined) continue; // deleted since it was listed
      yield {
        key,
        location: this,
        meta: {
          size: item.Size ?? null,
          labels: this.keepLabels ? labelsOfTags(tags!) : null,
          lastUsed: this.keepUsage ? (lastUsedOfTags(tags!) ?? item.LastModified ?? null) : null,
        },
      };
    }
  }

  /** Destroys the client this location made; a client given by the user is left open. */
  /** Waits for the last-used marks reads queued, then closes the client made here. */
  async close(): Promise<void> {
    await this.marks.idle();
    if (!this.ownsClient || this.loaded === null) return;
    const loaded = await this.loaded.catch(() => null);
    this.loaded = null;
    loaded?.client.destroy();
  }

  // --- objects beside the values (smartCache's index): not content-addressed, so not read through read()

  /** The bytes and modification time of the object `objectKey`, or null when there is none. */
  async getObject(objectKey: string, operation: string): Promise<{ bytes: Buffer; lastModified: Date | null } | null> {
    const { sdk } = await this.load();
    await this.checkBucket();
    const response = await this.sendOrNull(operation, () => new sdk.GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    if (response === null) return null;
    const bytes = await collectStream(response.Body as Readable).catch((error: unknown) => {
      throw this.calls.failure(operation, error);
    });
    return { bytes, lastModified: response.LastModified ?? null };
  }

  /** The modification time of the object `objectKey`, or null when there is none. */
  async statObject(objectKey: string, operation: string): Promise<{ lastModified: Date | null } | null> {
    const { sdk } = await this.load();
    await this.checkBucket();
    const response = await this.sendOrNull(operation, () => new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    return response === null ? null : { lastModified: response.LastModified ?? null };
  }

  /** Stores `body` as the object `objectKey` (S3 publishes an object whole, or not at all). */
  async putObject(objectKey: string, body: Buffer, operation: string): Promise<void> {
    const { sdk } = await this.load();
    await this.checkBucket();
    await this.send(operation, () => new sdk.PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: body, ContentLength: body.length }));
  }

  /** Removes objects (absent ones are no error, as in S3). */
  async deleteObjects(objectKeys: readonly string[], operation: string): Promise<void> {
    if (objectKeys.length === 0) return;
    const { sdk } = await this.load();
    await this.checkBucket();
    for (let at = 0; at < objectKeys.length; at += 1000) {
      const batch = objectKeys.slice(at, at + 1000);
      const reply = await this.send(operation, () => new sdk.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      const failed = reply.Errors?.[0];
      if (failed) throw new LocationError(`${operation} on ${this.name} failed for ${failed.Key}: ${failed.Code} ${failed.Message ?? ''}`.trim(), this.name);
    }
  }

  /** The objects whose names start with `prefix`, page by page, in name order. */
  async *listObjects(prefix: string, operation: string): AsyncIterable<{ objectKey: string; size: number | null; lastModified: Date | null }> {
    for await (const item of this.list(prefix, operation)) yield { objectKey: item.Key!, size: item.Size ?? null, lastModified: item.LastModified ?? null };
  }

  // --- reading

  private async get(key: Key, operation: string): Promise<{ body: Readable; size: number | null } | null> {
    const objectKey = this.objectKey(key);
    const { sdk } = await this.load();
    await this.checkBucket();
    // no deadline on the whole transfer: the socket's inactivity timeout bounds a stall
    const response = await this.sendOrNull(operation, () => new sdk.GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    return response === null ? null : { body: response.Body as Readable, size: response.ContentLength ?? null };
  }

  private verifying(key: Key, body: Readable): Readable {
    // fails before the consumer sees the end; larger buffers keep the extra stage cheap
    const check = digestStream({ expect: key, where: this.name, highWaterMark: 1024 * 1024 });
    body.on('error', (error) => check.destroy(this.calls.failure('read', error)));
    return body.pipe(check);
  }

  /** A new GET for a second stream() of the same value. */
  private reopen(key: Key): Readable {
    const out = new PassThrough();
    this.get(key, 'read').then(
      (response) => {
        if (response === null) out.destroy(new LocationError(`${key} disappeared from ${this.name} while it was read`, this.name));
        else {
          const verified = this.verifying(key, response.body);
          verified.on('error', (error) => out.destroy(error));
          verified.pipe(out);
        }
      },
      (error: unknown) => out.destroy(error as Error),
    );
    return out;
  }

  private async collect(key: Key, body: Readable): Promise<Buffer> {
    return collectStream(this.verifying(key, body));
  }

  private async labelsOf(key: Key): Promise<string[] | null> {
    if (!this.keepLabels) return null;
    if (this.tarn) {
      const tags = await this.tags(this.objectKey(key), 'labels');
      return tags === undefined ? null : labelsOfTags(tags);
    }
    const root = this.labelPrefix(key);
    const labels: string[] = [];
    for await (const item of this.list(root, 'labels')) labels.push(decodeURIComponent(item.Key!.slice(root.length)));
    return labels;
  }

  // --- writing

  /** Uploads the value unless an intact object is there; the stored object's size when known. */
  private async uploadIfMissing(key: Key, objectKey: string, source: Source): Promise<number | null> {
    const existing = await this.head(objectKey, 'write');
    // tarn's layout keeps labels in the object's tags: those of a corrupted object go to its replacement
    let keptTags: Tags | undefined;
    if (existing !== null) {
      if (await this.isIntact(key, objectKey, existing, source.size)) {
        // (tarn's layout: write() sets the last use along with the labels)
        if (this.keepUsage && !this.tarn) await this.markUsed(key);
        return existing.size;
      }
      // a value that does not match its key is replaced below, as Disk replaces a bad blob
      if (this.tarn) keptTags = await this.tags(objectKey, 'write');
    }
    await this.upload(key, objectKey, source);
    if (keptTags?.size) await this.putTags(objectKey, keptTags, 'write');
    return source.size;
  }

  /**
   * True when the object stored for `key` holds its value: a size that differs says no at once,
   * else its bytes are read and hashed (as Disk checks a blob it finds when writing).
   */
  private async isIntact(key: Key, objectKey: string, existing: { size: number | null }, size: number | null): Promise<boolean> {
    if (size !== null && existing.size !== null && existing.size !== size) return false;
    const response = await this.get(key, 'write');
    if (response === null) return false; // deleted meanwhile: write it
    try {
      return (await hashStream(response.body)) === key;
    } catch (error) {
      throw this.calls.failure('write', error);
    }
  }

  private async upload(key: Key, objectKey: string, source: Source): Promise<void> {
    const { sdk, storage, client } = await this.load();
    await this.calls.run('write', async () => {
      const stream = source.stream();
      const body = source.verified ? stream : stream.pipe(digestStream({ expect: key, where: `a copy into ${this.name}` }));
      if (!source.verified) stream.on('error', (error) => body.destroy(error));
      try {
        if (source.size !== null && source.size <= this.multipartThreshold) {
          // the SDK pipes the body without watching it for errors: abort the request ourselves
          const abort = new AbortController();
          body.once('error', () => abort.abort());
          // the key is the value's sha256, so the checksum is known before the first byte: given, the
          // server checks it, and a client at the SDK's defaults (checksums WHEN_SUPPORTED) sends a
          // plain body instead of an aws-chunked one with a trailer, which some servers store as is
          const checksum = Buffer.from(key, 'hex').toString('base64');
          const params = { Bucket: this.bucket, Key: objectKey, Body: body, ContentLength: source.size, ChecksumSHA256: checksum };
          await client.send(new sdk.PutObjectCommand(params), {
            abortSignal: abort.signal,
          });
        } else {
          const upload = new storage.Upload({
            client,
            params: { Bucket: this.bucket, Key: objectKey, Body: body },
            partSize: this.partSize,
            queueSize: this.queueSize,
            leavePartsOnError: false,
          });
          await upload.done();
        }
      } catch (error) {
        stream.destroy();
        // the verifier's error is the real one, even when the SDK reports the aborted request
        const reason = body.errored ?? error;
        throw reason instanceof StorageCorruption ? reason : error;
      }
    });
  }

  private async putMarker(objectKey: string, operation: string): Promise<void> {
    const { sdk } = await this.load();
    await this.send(operation, () => new sdk.PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: '', ContentLength: 0 }));
  }

  private async markUsed(key: Key): Promise<void> {
    this.throttle.record(key);
    if (this.tarn) await this.updateTags(key, this.objectKey(key), [], Date.now(), 'touch');
    else await this.putMarker(this.usageKey(key), 'touch');
  }

  /** The tags of an object; undefined when there is no such object. */
  private async tags(objectKey: string, operation: string): Promise<Tags | undefined> {
    const { sdk } = await this.load();
    await this.checkBucket();
    const reply = await this.sendOrNull(operation, () => new sdk.GetObjectTaggingCommand({ Bucket: this.bucket, Key: objectKey }));
    return reply === null ? undefined : tagsFrom(reply.TagSet);
  }

  private async putTags(objectKey: string, tags: Tags, operation: string): Promise<void> {
    const { sdk } = await this.load();
    await this.send(operation, () => new sdk.PutObjectTaggingCommand({ Bucket: this.bucket, Key: objectKey, Tagging: { TagSet: tagSet(tags) } }));
  }

  /**
   * tarn's layout: adds labels and a last use to the object's tags (read, merge, write: S3 has no
   * atomic update; in this process one at a time per key, across processes as racy as tarn's).
   */
  private updateTags(key: Key, objectKey: string, labels: readonly string[], usedAt: number | null, operation: string): Promise<void> {
    return this.tagging.run(key, async () => {
      const tags = await this.tags(objectKey, operation);
      if (tags === undefined) return; // deleted meanwhile
      if (addToTags(tags, labels, usedAt)) await this.putTags(objectKey, tags, operation);
    });
  }

  /**
   * A read of `key`: its mark is queued, at most once per `touchInterval`, and written while the
   * reads go on; the read waits only when the marks fall far behind (cairn's layout).
   */
  private async noteUse(key: Key): Promise<void> {
    if (!this.throttle.due(key)) return;
    // tarn's layout: the mark is a rewrite of the object's tags, which hold its labels too; it is
    // awaited, as tarn does, so that no read of the labels meets a rewrite of them half done
    if (this.tarn) await this.markUsed(key);
    else await this.marks.add(key);
  }

  // --- plumbing

  private usageKey(key: Key): string {
    return this.prefix + TOOLS + 'usage/' + keyToParts(key, this.levels).join('/');
  }

  private labelPrefix(key: Key): string {
    return this.prefix + TOOLS + 'labels/' + keyToParts(key, this.levels).join('/') + '/';
  }

  private async head(objectKey: string, operation: string): Promise<{ size: number | null } | null> {
    const { sdk } = await this.load();
    await this.checkBucket();
    const response = await this.sendOrNull(operation, () => new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    return response === null ? null : { size: response.ContentLength ?? null };
  }

  private async *list(prefix: string, operation: string): AsyncIterable<Listed> {
    const { sdk } = await this.load();
    await this.checkBucket();
    let token: string | undefined;
    do {
      const page = await this.send(operation, () => new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.pageSize, ContinuationToken: token }));
      for (const item of page.Contents ?? []) yield item;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * A 404 from HEAD has no body, so a missing bucket would look like a missing key: the bucket is
   * checked once, before the first request that could be mistaken.
   */
  private checkBucket(): Promise<void> {
    this.bucketChecked ??= (async () => {
      const { sdk } = await this.load();
      const found = await this.sendOrNull('open', () => new sdk.HeadBucketCommand({ Bucket: this.bucket }));
      if (found === null) throw new LocationError(`The bucket ${this.bucket} does not exist (${this.name})`, this.name, { code: 'ERR_NO_BUCKET' });
    })().catch((error: unknown) => {
      this.bucketChecked = null; // try again next time: the server may be back
      throw error;
    });
    return this.bucketChecked;
  }

  private load(): Promise<{ sdk: Sdk; storage: Storage; client: S3Client }> {
    this.loaded ??= (async () => {
      // loaded here, so that importing cairn does not load the AWS SDK
      const [sdk, storage] = await Promise.all([importOptional<Sdk>('@aws-sdk/client-s3', 'S3'), importOptional<Storage>('@aws-sdk/lib-storage', 'S3')]);
      if (isS3Client(this.target)) return { sdk, storage, client: this.target };
      const client = new sdk.S3Client({
        region: this.options.region ?? 'us-east-1',
        ...(typeof this.target === 'string' ? { endpoint: this.target, forcePathStyle: this.options.forcePathStyle ?? true } : {}),
        ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
        // retries are ours (withRetry), so that every failure is typed the same way
        maxAttempts: 1,
        // cairn checks sha256 itself; the SDK's extra checksums would cost a second pass
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: { connectionTimeout: this.timeoutMs, socketTimeout: this.timeoutMs, httpAgent: { keepAlive: true, maxSockets: 64 }, httpsAgent: { keepAlive: true, maxSockets: 64 } },
        ...this.options.client,
      });
      return { sdk, storage, client };
    })();
    return this.loaded;
  }

  /** Sends one small command, with a deadline, typed errors and retries of transient failures. */
  private async send(operation: string, command: () => Command): Promise<Reply> {
    const { client } = await this.load();
    return this.calls.run(operation, () => this.attempt(client, command));
  }

  /** The same, with a 404 for the key (or the bucket, in checkBucket) answered as null. */
  private async sendOrNull(operation: string, command: () => Command): Promise<Reply | null> {
    const { client } = await this.load();
    return this.calls.runOrNull(operation, () => this.attempt(client, command));
  }

  private async attempt(client: S3Client, command: () => Command): Promise<Reply> {
    // a GET's deadline covers its headers: the body streams after send() returned, bounded by the socket timeout
    const deadline = deadlineSignal(this.timeoutMs);
    try {
      return (await client.send(command() as never, { abortSignal: deadline.signal })) as Reply;
    } catch (error) {
      throw deadline.expired ? new DeadlineExceeded(this.timeoutMs, { cause: error }) : error;
    } finally {
      deadline.clear();
    }
  }
}

const AUTH_NAMES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'CredentialsProviderError']);
const TRANSIENT_NAMES = new Set(['SlowDown', 'ServiceUnavailable', 'InternalError', 'RequestTimeout', 'Throttling', 'ThrottlingException']);

/** What kind of failure an error of the AWS SDK (or of its sockets) is. */
function classifyS3(error: unknown): Classified {
  const details = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  const status = details?.$metadata?.httpStatusCode;
  const name = details?.name ?? '';
  const code = errorCode(error);
  const message = details?.message ?? String(error);
  // before the timeout test: the SDK names a reset connection 'TimeoutError' too
  if (CONNECTION_CODES.has(code) || CONNECTION_CODES.has(name) || /socket hang up/.test(message)) return { kind: 'connection', detail: message || code };
  if (name === 'TimeoutError' || code === 'ETIMEDOUT') return { kind: 'timeout' };
  // a 404 is a missing key (HEAD answers without a body); a missing bucket is told apart by checkBucket
  if (name !== 'NoSuchBucket' && (name === 'NoSuchKey' || name === 'NotFound' || status === 404)) return { kind: 'not-found' };
  if (status === 401 || status === 403 || AUTH_NAMES.has(name)) return { kind: 'auth', detail: `${name || status}${message ? ` (${message})` : ''}` };
  if ((status !== undefined && status >= 500) || TRANSIENT_NAMES.has(name)) return { kind: 'transient', detail: `${name || status} ${message}` };
  return { kind: 'permanent', detail: `${name || status || ''} ${message}`.trim() };
}

async function collectStream(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** An async iterator that can look at its next item without taking it. */
class Peekable<T> {
  private readonly iterator: AsyncIterator<T>;
  private head: { value: T | null } | null = null;

  constructor(iterable: AsyncIterable<T>) {
    this.iterator = iterable[Symbol.asyncIterator]();
  }

  async peek(): Promise<T | null> {
    if (this.head === null) {
      const result = await this.iterator.next();
      this.head = { value: result.done ? null : result.value };
    }
    return this.head.value;
  }

  /** Drops the current item and returns the one after it. */
  async next(): Promise<T | null> {
    await this.peek();
    this.head = null;
    return this.peek();
  }
}

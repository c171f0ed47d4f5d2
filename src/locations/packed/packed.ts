import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inMemoryValue, readUpTo, type Source, type Value } from '../../blob.js';
import { ConfigError, LocationError, StorageCorruption, storageErrorCode } from '../../errors.js';
import { assertKey, type Key } from '../../key.js';
import { parseSize, type Size } from '../../size.js';
import type { SqliteTransaction } from '../../sqlite.js';
import { isCorruptDatabase } from '../../storage/embedded/database.js';
import { EmbeddedStore, type QueuedOp } from '../../storage/embedded/store.js';
import { verifiedValue } from '../../storage/embedded/verified.js';
import type { Administered, LakeAdmin } from '../admin.js';
import { type Entry, type Location } from '../interface.js';
import { PackedAdmin } from './packed-admin.js';
import { createPackedTables, MANY_KEYS, PACKED_CHECKPOINT_BYTES, PACKED_FILE, packedDatabaseOptions, type PackedStatements, parseLabels, preparePacked } from './packed-db.js';
import { assertLocalFilesystem } from './packed-filesystem.js';
import { decodePackedRecord, packedRecordMeta, type PackedPut } from './packed-journal.js';

export interface PackedOptions {
  /**
   * Each commit reaches the disk before its writes are acknowledged (survives a power cut). When
   * false, a write is appended to this process's journal (one write, no fsync) and acknowledged:
   * it survives `kill -9` of the process, not a power cut. @default true (as Disk)
   */
  fsync?: boolean;
  /** Largest value taken; larger ones are declined (a value is held in memory whole). @default '16MiB' */
  maxSize?: Size;
  /** Milliseconds to wait for another process's write lock before a commit fails. @default 5000 */
  lockTimeout?: number;
}

/** Writes waiting are committed together, up to these per transaction. */
const BATCH_OPS = 1024;
const BATCH_BYTES = 8 * 1024 * 1024;
/** A read marks its key as used when the stored last use is older than this (one UPDATE less per read otherwise). */
const MARK_RESOLUTION_MS = 60_000;
/** Read marks wait at most this long, or until this many are waiting, before they are committed. */
const MARK_DELAY_MS = 1000;
const MARKS_MAX = 4096;
const CONTENTS_PAGE = 512;

type Request = ({ kind: 'put' } & PackedPut) | { kind: 'touch' | 'delete'; key: Key } | { kind: 'marks'; key: null };
type Op = Request & QueuedOp<boolean>;

type Row = [data: Buffer, used: number, labels: string | null];

/** A journaled put not yet in the database, as reads see it (several puts of one key merged). */
interface Pending {
  bytes: Buffer;
  labels: Set<string>;
  /** Puts of this key in the queue: the entry goes once they are all committed. */
  queued: number;
}

const JOURNALS = 'journal';
const noop = () => {};

/**
 * Many small values in one SQLite database on local disk (WAL), with labels and last use per
 * key: one file instead of a file per value, for the small values of a lake (put it under
 * `Small` in `Levels`, with a Disk for the rest).
 *
 * Built on the embedded store (storage/embedded: one SQLite file, a journal per process, group
 * commit), which TierKV's filesystem tiers use too; the rows, labels and last use are Packed's.
 * Writes, touches and deletes of concurrent callers are committed together in one transaction at
 * the next turn of the event loop (group commit), or at once when 1,024 are waiting. With fsync
 * (the default) each promise resolves after that commit (`synchronous=FULL`). Without, a write
 * is acknowledged once it is in this process's journal (packed-journal.ts) and reaches SQLite
 * (`synchronous=NORMAL`) with the next commit; reads here see it at once, other processes after
 * that commit. A killed process's journal is replayed by the next one to open the store.
 * Several processes may open the same folder (SQLite's locks; a commit waits `lockTimeout` for
 * another's). Every read is verified against its key (sha256): damaged bytes are a
 * StorageCorruption, never a wrong value.
 */
export class Packed implements Location, Administered {
  readonly name: string;
  readonly dir: string;
  readonly maxSize: number;
  readonly fsync: boolean;

  private readonly store: EmbeddedStore<Op, boolean>;
  private readonly statements: PackedStatements;
  /** Last uses seen by reads, not yet committed (they go with the next commit). */
  private marks = new Map<Key, number>();
  private markTimer: NodeJS.Timeout | null = null;
  private marksQueued = false;
  private closed = false;
  /** fsync off: the puts in this process's journal that are not in the database yet. */
  private readonly pending = new Map<Key, Pending>();
  private adminView: PackedAdmin | null = null;
  /** The rows of a chunk of keys (data and last use; journaled ones from memory), in one read transaction. */
  private readonly readChunk: SqliteTransaction<(keys: Key[]) => (Row | undefined)[]>;

  constructor(dir: string, options: PackedOptions = {}) {
    if (typeof dir !== 'string' || dir === '') throw new ConfigError('Packed: a folder is required');
    this.dir = resolve(dir);
    this.name = `Packed(${this.dir})`;
    this.fsync = options.fsync ?? true;
    this.maxSize = options.maxSize === undefined ? 16 * 1024 * 1024 : parseSize(options.maxSize, 'maxSize');
    const lockTimeout = options.lockTimeout ?? 5000;
    if (!Number.isInteger(lockTimeout) || lockTimeout < 0) throw new ConfigError(`Packed: lockTimeout must be a whole number of milliseconds, not ${String(lockTimeout)}`);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (error) {
      throw new LocationError(`${this.name}: cannot create the folder`, this.name, { cause: error, code: storageErrorCode(error) });
    }
    assertLocalFilesystem(this.dir, this.name);
    try {
      this.store = new EmbeddedStore({
        ...packedDatabaseOptions(this.fsync, lockTimeout),
        path: join(this.dir, PACKED_FILE),
        journalDir: join(this.dir, JOURNALS),
        journaled: !this.fsync,
        batchOps: BATCH_OPS,
        batchBytes: BATCH_BYTES,
        checkpointBytes: PACKED_CHECKPOINT_BYTES,
        createTables: createPackedTables,
      });
    } catch (error) {
      throw this.failure(error, null, 'cannot open its database');
    }
    this.statements = preparePacked(this.store.db);
    this.readChunk = this.store.db.transaction((keys: Key[]) =>
      keys.map((key) => {
        const pending = this.pending.get(key);
        if (pending !== undefined) return this.pendingRow(key, pending);
        const row = this.statements.getBytes.get(Buffer.from(key, 'hex')) as Row | undefined;
        if (row !== undefined) this.markUsed(key, row[1]);
        return row;
      }),
    );
    this.store.attach({
      apply: (ops) => {
        this.applyMarks();
        return ops.map((op) => this.apply(op));
      },
      committed: (ops) => this.committed(ops),
      failure: (error, op) =>
        op === null
          ? this.failure(error, null, 'cannot commit its journaled writes (they are kept in its journal, replayed when it is opened again)')
          : this.failure(error, op.key, op.kind === 'put' ? 'cannot store' : `cannot ${op.kind}`),
    });
    try {
      this.store.replayDeadJournals(decodePackedRecord, (puts) => {
        for (const put of puts) this.apply({ kind: 'put', ...put, weight: 0, acknowledged: true, resolve: noop, reject: noop });
      });
    } catch (error) {
      this.store.db.close();
      throw this.failure(error, null, 'cannot replay the journal of a process that was killed');
    }
  }

  async read(key: Key): Promise<Value | null> {
    const row = this.lookup(key);
    if (row === undefined) return null;
    const [data, , labels] = row;
    return inMemoryValue(key, data, this.name, async () => parseLabels(labels));
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    const row = this.lookup(key, false);
    if (row === undefined) return null;
    return verifiedValue(key, row[0], this.name);
  }

  /**
   * The values of many keys, in the order given: 64 keys per read transaction, each value checked
   * against its key when its bytes are first used (as `read`).
   */
  async *readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    let chunk: Key[] = [];
    for (const key of keys) {
      assertKey(key);
      chunk.push(key);
      if (chunk.length === MANY_KEYS) {
        yield* this.readMany(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) yield* this.readMany(chunk);
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    assertKey(key);
    this.assertOpen();
    if (source.size !== null && source.size > this.maxSize) return null;
    const bytes = await readUpTo(source, this.maxSize);
    if (bytes === null) return null;
    if (!source.verified) verifiedValue(key, bytes, `a copy into ${this.name}`);
    const put: PackedPut = { key, bytes, labels: labels?.length ? [...labels] : null };
    if (this.store.journal === null) {
      // a copy: the caller may reuse its buffer before the commit
      if (!(await this.enqueue({ kind: 'put', ...put, bytes: Buffer.from(bytes) }))) return null;
    } else await this.journaled(put);
    // the bytes in hand hash to the key, so they are the stored ones (checked again on first use);
    // the labels are looked up when asked for: with earlier writes' they may be more than ours
    return inMemoryValue(key, bytes, this.name, async () => this.storedLabels(key));
  }

  /** The labels stored with `key` now: the database's and those of its journaled puts. */
  private storedLabels(key: Key): string[] | null {
    this.assertOpen();
    let stored: string[] | null;
    try {
      stored = parseLabels(this.statements.labelsOf.get(Buffer.from(key, 'hex')) as string | null | undefined);
    } catch (error) {
      throw this.failure(error, key, 'cannot read');
    }
    const pending = this.pending.get(key);
    if (pending === undefined || pending.labels.size === 0) return stored;
    return [...new Set([...(stored ?? []), ...pending.labels])];
  }

  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    return this.enqueue({ kind: 'delete', key });
  }

  async touch(key: Key): Promise<boolean> {
    assertKey(key);
    return this.enqueue({ kind: 'touch', key });
  }

  /** Every key, in the order written, read a page at a time (no transaction stays open between pages). */
  async *contents(): AsyncIterable<Entry> {
    this.assertOpen();
    // journaled puts are listed too: commit them first
    if (this.store.waiting > 0 && this.store.failure === null) this.store.commitAll();
    let after = 0;
    for (;;) {
      this.assertOpen();
      let rows: [number, Buffer, number, number, string | null][];
      try {
        rows = this.statements.page.all(after, CONTENTS_PAGE) as typeof rows;
      } catch (error) {
        throw this.failure(error, null, 'cannot list its contents');
      }
      for (const [id, key, size, used, labels] of rows) {
        after = id;
        yield { key: key.toString('hex'), location: this, meta: { labels: parseLabels(labels), lastUsed: new Date(used), size } };
      }
      if (rows.length < CONTENTS_PAGE) return;
    }
  }

  /** The view maintenance uses (du, verify, gc, migrate): see admin.ts and packed-admin.ts. */
  admin(): LakeAdmin {
    this.assertOpen();
    // what maintenance reads must include this process's waiting writes and read marks
    const flush = () => {
      this.queueMarks();
      if (this.store.waiting > 0 && this.store.failure === null) this.store.commitAll();
    };
    return (this.adminView ??= new PackedAdmin(this, { db: this.store.db, flush }));
  }

  /** Commits what is waiting (writes and read marks), then closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.markTimer !== null) clearTimeout(this.markTimer);
    this.markTimer = null;
    this.closed = true;
    // puts whose journal record waits for the end of this run of microtasks: written and queued now
    this.store.journal?.flush();
    if (this.marks.size > 0) this.queueMarks();
    try {
      this.store.close();
    } finally {
      await this.store.settled();
    }
  }

  /**
   * Acknowledges a put once it is in the journal: in the OS from then on, in SQLite with the next
   * commit. The records of concurrent callers' puts go out with one write() (appendGrouped).
   */
  private journaled(put: PackedPut): Promise<void> {
    if (this.store.failure !== null) return Promise.reject(this.store.failure);
    return new Promise<void>((resolve, reject) => {
      try {
        // the journal's copy of the bytes is the one kept until the commit
        this.store.journal!.appendGrouped(packedRecordMeta(put), put.bytes, (error, bytes) => {
          if (error !== null) return reject(this.failure(error, put.key, 'cannot journal'));
          this.acknowledgePut(put, bytes!);
          resolve();
        });
      } catch (error) {
        reject(this.failure(error, put.key, 'cannot journal'));
      }
    });
  }

  /** A journaled put: readable here at once, queued for the next commit. */
  private acknowledgePut(put: PackedPut, bytes: Buffer): void {
    const pending = this.pending.get(put.key);
    if (pending === undefined) this.pending.set(put.key, { bytes, labels: new Set(put.labels), queued: 1 });
    else {
      pending.bytes = bytes;
      for (const label of put.labels ?? []) pending.labels.add(label);
      pending.queued++;
    }
    // its pending entry goes in the store's committed hook (no closure per put)
    this.store.acknowledged({ kind: 'put', key: put.key, bytes, labels: put.labels, weight: bytes.length, acknowledged: true, resolve: noop, reject: noop });
  }

  private assertOpen(): void {
    if (this.closed) throw new LocationError(`${this.name} is closed`, this.name, { code: 'ERR_CLOSED' });
  }

  /** The row of a key (labels only `withLabels`), from the journaled puts or the database. */
  private lookup(key: Key, withLabels = true): Row | undefined {
    assertKey(key);
    this.assertOpen();
    let row: Row | undefined;
    try {
      const pending = this.pending.get(key);
      if (pending !== undefined) return this.pendingRow(key, pending);
      row = (withLabels ? this.statements.get : this.statements.getBytes).get(Buffer.from(key, 'hex')) as Row | undefined;
    } catch (error) {
      throw this.failure(error, key, 'cannot read');
    }
    if (row !== undefined) this.markUsed(key, row[1]);
    return row;
  }

  /**
   * Up to MANY_KEYS keys in one read transaction (journaled puts from memory), in the order
   * given. One snapshot for the chunk instead of one per statement; a prepared single-key
   * SELECT per key measured less CPU per key than one `key IN (…)` query for the chunk (which
   * sorts its keys and returns key and labels too), and labels are looked up when asked for.
   */
  private readMany(keys: Key[]): [Key, Value | null][] {
    this.assertOpen();
    let rows: (Row | undefined)[];
    try {
      rows = this.readChunk.deferred(keys);
    } catch (error) {
      throw this.failure(error, null, 'cannot read');
    }
    return keys.map((key, i) => {
      const row = rows[i];
      return [key, row === undefined ? null : inMemoryValue(key, row[0], this.name, async () => this.storedLabels(key))];
    });
  }

  /** A journaled value as a row: a copy of its bytes, its labels with those already stored. */
  private pendingRow(key: Key, pending: Pending): Row {
    const stored = parseLabels(this.statements.labelsOf.get(Buffer.from(key, 'hex')) as string | null | undefined);
    const labels = new Set([...(stored ?? []), ...pending.labels]);
    return [Buffer.from(pending.bytes), Date.now(), labels.size > 0 ? JSON.stringify([...labels]) : null];
  }

  private markUsed(key: Key, used: number): void {
    const now = Date.now();
    if (now - used < MARK_RESOLUTION_MS) return;
    this.marks.set(key, now);
    if (this.marks.size >= MARKS_MAX) this.queueMarks();
    else if (this.markTimer === null) {
      this.markTimer = setTimeout(() => {
        this.markTimer = null;
        this.queueMarks();
      }, MARK_DELAY_MS);
      this.markTimer.unref();
    }
  }

  /** Makes sure a commit comes for the read marks (any commit takes them along). */
  private queueMarks(): void {
    if (this.marksQueued || this.marks.size === 0) return;
    this.marksQueued = true;
    this.store.wait({ kind: 'marks', key: null, weight: 0, acknowledged: false, resolve: noop, reject: noop });
  }

  /** Inside a commit: the read marks waiting, moved into the database (only hints: lost if the commit fails). */
  private applyMarks(): void {
    if (this.markTimer !== null) clearTimeout(this.markTimer);
    this.markTimer = null;
    this.marksQueued = false;
    const marks = [...this.marks];
    this.marks.clear();
    for (const [key, at] of marks) this.statements.mark.run(at, Buffer.from(key, 'hex'));
  }

  private enqueue(request: Request & { kind: 'put' | 'touch' | 'delete' }): Promise<boolean> {
    this.assertOpen();
    return new Promise<boolean>((resolve, reject) => {
      this.store.wait({ ...request, weight: request.kind === 'put' ? request.bytes.length : 0, acknowledged: false, resolve, reject });
    });
  }

  /** After a commit: the journaled puts in it are in the database, so reads stop taking them from memory. */
  private committed(ops: Op[]): void {
    if (this.pending.size === 0) return;
    for (const op of ops) {
      if (op.kind !== 'put' || !op.acknowledged) continue;
      const pending = this.pending.get(op.key);
      if (pending !== undefined && --pending.queued === 0) this.pending.delete(op.key);
    }
  }

  private apply(op: Op): boolean {
    const { statements } = this;
    if (op.kind === 'marks') return true;
    const key = Buffer.from(op.key, 'hex');
    const now = Date.now();
    switch (op.kind) {
      case 'put': {
        if (op.labels === null) {
          statements.put.run(key, op.bytes.length, now, null, op.bytes);
        } else {
          const stored = parseLabels(statements.labelsOf.get(key) as string | null | undefined);
          const labels = JSON.stringify([...new Set([...(stored ?? []), ...op.labels])]);
          statements.putLabelled.run(key, op.bytes.length, now, labels, op.bytes);
        }
        return true;
      }
      case 'touch':
        return Number(statements.touch.run(now, key).changes) > 0;
      case 'delete':
        return Number(statements.remove.run(key).changes) > 0;
    }
  }

  /** A SQLite error as cairn's: a damaged file is StorageCorruption (of `key` when there is one). */
  private failure(error: unknown, key: Key | null, doing: string): Error {
    if (error instanceof LocationError || error instanceof StorageCorruption) return error;
    if (isCorruptDatabase(error)) {
      if (key !== null) return new StorageCorruption(key, null, `${this.name} (its database file is damaged)`, { cause: error });
      return new LocationError(`${this.name}: its database file is damaged`, this.name, { cause: error, code: 'ERR_STORAGE_CORRUPTION' });
    }
    const detail = error instanceof Error ? error.message : String(error);
    return new LocationError(`${this.name} ${doing}${key === null ? '' : ` ${key}`}: ${detail}`, this.name, { cause: error, code: storageErrorCode(error) });
  }
}


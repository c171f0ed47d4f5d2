import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inMemoryValue, readUpTo, type Source, type Value, verifyBytes } from '../blob.js';
import { ConfigError, LocationError, StorageCorruption, storageErrorCode } from '../errors.js';
import { assertKey, type Key } from '../key.js';
import { parseSize, type Size } from '../size.js';
import type { SqliteDatabase, SqliteTransaction } from '../sqlite.js';
import type { Administered, LakeAdmin } from './admin.js';
import { type Entry, type Location, readEach } from './interface.js';
import { PackedAdmin } from './packed-admin.js';
import { openPackedDatabase, PACKED_FILE, type PackedStatements, preparePacked } from './packed-db.js';
import { assertLocalFilesystem } from './packed-filesystem.js';
import { deadJournals, PackedJournal, readJournal } from './packed-journal.js';

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

interface Settle {
  resolve: (done: boolean) => void;
  reject: (error: unknown) => void;
}

type Request = { kind: 'put'; key: Key; bytes: Buffer; labels: readonly string[] | null } | { kind: 'touch' | 'delete'; key: Key };
type Op = Request & Settle;

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

  private readonly db: SqliteDatabase;
  private readonly statements: PackedStatements;
  private readonly commitBatch: SqliteTransaction<(ops: Op[], marks: [Key, number][]) => boolean[]>;
  private queue: Op[] = [];
  private commitScheduled: NodeJS.Immediate | null = null;
  /** Last uses seen by reads, not yet committed. */
  private marks = new Map<Key, number>();
  private markTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** fsync off: this process's journal, and the puts it holds that are not in the database yet. */
  private readonly journal: PackedJournal | null;
  private readonly pending = new Map<Key, Pending>();
  private queuedBytes = 0;
  /** A commit of journaled puts failed: they stay in the journal (replayed at the next open), and writes stop. */
  private commitFailure: Error | null = null;
  private adminView: PackedAdmin | null = null;

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
      this.db = openPackedDatabase(join(this.dir, PACKED_FILE), this.fsync, lockTimeout);
    } catch (error) {
      throw this.failure(error, null, 'cannot open its database');
    }
    this.statements = preparePacked(this.db);
    this.commitBatch = this.db.transaction((ops: Op[], marks: [Key, number][]) => {
      for (const [key, at] of marks) this.statements.mark.run(at, Buffer.from(key, 'hex'));
      return ops.map((op) => this.apply(op));
    });
    this.journal = this.fsync ? null : new PackedJournal(join(this.dir, JOURNALS));
    try {
      this.replayDeadJournals();
    } catch (error) {
      this.db.close();
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
    verifyBytes(key, row[0], this.name);
    return row[0];
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    assertKey(key);
    this.assertOpen();
    if (source.size !== null && source.size > this.maxSize) return null;
    const bytes = await readUpTo(source, this.maxSize);
    if (bytes === null) return null;
    if (!source.verified) verifyBytes(key, bytes, `a copy into ${this.name}`);
    // a copy: the caller may reuse its buffer before the commit
    const put = { kind: 'put', key, bytes: Buffer.from(bytes), labels: labels?.length ? [...labels] : null } as const;
    if (this.journal === null) {
      if (!(await this.enqueue(put))) return null;
    } else this.journaled(put);
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
    if (this.queue.length > 0 && this.commitFailure === null) this.commitAll();
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
    const flush = () => {
      if (this.commitFailure === null) this.commitAll();
    };
    return (this.adminView ??= new PackedAdmin(this, { db: this.db, flush }));
  }

  /** Commits what is waiting (writes and read marks), then closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.markTimer !== null) clearTimeout(this.markTimer);
    if (this.commitScheduled !== null) clearImmediate(this.commitScheduled);
    this.markTimer = this.commitScheduled = null;
    if (this.commitFailure === null) this.commitAll();
    this.closed = true;
    if (this.commitFailure === null) this.journal?.close();
    else this.journal?.abandon();
    this.db.close();
    if (this.commitFailure !== null) throw this.commitFailure;
  }

  /** Acknowledges a put once it is in the journal: in the OS from then on, in SQLite with the next commit. */
  private journaled(put: Request & { kind: 'put' }): void {
    if (this.commitFailure !== null) throw this.commitFailure;
    try {
      this.journal!.append(put);
    } catch (error) {
      throw this.failure(error, put.key, 'cannot journal');
    }
    const pending = this.pending.get(put.key);
    if (pending === undefined) this.pending.set(put.key, { bytes: put.bytes, labels: new Set(put.labels), queued: 1 });
    else {
      pending.bytes = put.bytes;
      for (const label of put.labels ?? []) pending.labels.add(label);
      pending.queued++;
    }
    this.queue.push({ ...put, resolve: noop, reject: noop });
    this.queuedBytes += put.bytes.length;
    // a caller awaiting one write after another never lets the event loop turn: commit here
    if (this.queue.length >= BATCH_OPS || this.queuedBytes >= BATCH_BYTES) this.commitAll();
    else this.scheduleCommit();
  }

  /** Puts of processes that were killed, from their journals into the database. */
  private replayDeadJournals(): void {
    for (const path of deadJournals(join(this.dir, JOURNALS))) {
      const puts = readJournal(path);
      for (let at = 0; at < puts.length; at += BATCH_OPS) {
        const ops = puts.slice(at, at + BATCH_OPS).map((put): Op => ({ kind: 'put', ...put, resolve: noop, reject: noop }));
        this.commitBatch.immediate(ops, []);
      }
      rmSync(path, { force: true });
    }
  }

  /** Commits everything waiting, batch after batch, then empties the journal. */
  private commitAll(): void {
    while (this.commitFailure === null && (this.queue.length > 0 || this.marks.size > 0)) this.commitWaiting();
    if (this.commitFailure === null && this.queue.length === 0) this.journal?.clear();
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
    if (this.marks.size >= MARKS_MAX) this.scheduleCommit();
    else if (this.markTimer === null) {
      this.markTimer = setTimeout(() => {
        this.markTimer = null;
        this.scheduleCommit();
      }, MARK_DELAY_MS);
      this.markTimer.unref();
    }
  }

  private enqueue(request: Request): Promise<boolean> {
    this.assertOpen();
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ ...request, resolve, reject });
      this.scheduleCommit();
    });
  }

  /** At the next turn of the event loop: every caller that queued before then shares the commit. */
  private scheduleCommit(): void {
    if (this.commitScheduled !== null || this.closed) return;
    this.commitScheduled = setImmediate(() => {
      this.commitScheduled = null;
      this.commitAll();
    });
  }

  /** Commits one batch of waiting operations (and every waiting read mark) in one transaction. */
  private commitWaiting(): void {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < BATCH_OPS && bytes < BATCH_BYTES) {
      const op = this.queue[count++]!;
      if (op.kind === 'put') bytes += op.bytes.length;
    }
    const ops = this.queue.splice(0, count);
    this.queuedBytes = Math.max(0, this.queuedBytes - bytes);
    const marks = [...this.marks];
    this.marks.clear();
    if (this.markTimer !== null) clearTimeout(this.markTimer);
    this.markTimer = null;
    let results: boolean[];
    try {
      results = this.commitBatch.immediate(ops, marks);
    } catch (error) {
      // nothing of the batch is stored (the transaction was rolled back); marks are only hints
      for (const op of ops) op.reject(this.failure(error, op.key, op.kind === 'put' ? 'cannot store' : `cannot ${op.kind}`));
      if (this.journal !== null && ops.some((op) => op.kind === 'put')) {
        // acknowledged puts: still in the journal and readable here; the next open replays them
        this.queue.unshift(...ops.filter((op) => op.kind === 'put'));
        this.commitFailure = this.failure(error, null, 'cannot commit its journaled writes (they are kept in its journal, replayed when it is opened again)');
      }
      return;
    }
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.kind === 'put' && this.journal !== null) this.committed(op.key);
      op.resolve(results[i]!);
    }
  }

  private committed(key: Key): void {
    const pending = this.pending.get(key);
    if (pending !== undefined && --pending.queued === 0) this.pending.delete(key);
  }

  private apply(op: Op): boolean {
    const { statements } = this;
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

/** SQLITE_CORRUPT (11) or SQLITE_NOTADB (26), from either binding. */
function isCorruptDatabase(error: unknown): boolean {
  const { code, errcode } = (error ?? {}) as { code?: unknown; errcode?: unknown };
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') return true;
  if (typeof errcode === 'number') return (errcode & 0xff) === 11 || (errcode & 0xff) === 26;
  return false;
}

function parseLabels(text: string | null | undefined): string[] | null {
  if (text === null || text === undefined) return null;
  try {
    const labels: unknown = JSON.parse(text);
    return Array.isArray(labels) ? labels.filter((label): label is string => typeof label === 'string') : null;
  } catch {
    return null;
  }
}

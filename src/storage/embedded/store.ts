import { existsSync, rmSync } from 'node:fs';
import type { SqliteDatabase } from '../../sqlite.js';
import { checkpointInWorker } from './checkpoints.js';
import { type EmbeddedDatabaseOptions, openEmbeddedDatabase } from './database.js';
import { deadJournals, type JournalRecordBytes, ProcessJournal, readJournal } from './journal.js';

/** What the store needs to know of an operation its owner queues. */
export interface QueuedOp<R> {
  /** Bytes the operation adds to a transaction (a put's value; 0 for the others). */
  weight: number;
  /**
   * Acknowledged before its commit (journaled, or saved at exit): when a commit fails it stays
   * queued for the next try (and in the journal for the next open) instead of being rejected.
   */
  acknowledged: boolean;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/** The owner's side of a store: its rows. Called with the store's database open. */
export interface StoreRows<Op extends QueuedOp<R>, R> {
  /** Runs inside the write transaction: applies a batch, one result per operation. */
  apply(ops: Op[]): R[];
  /** Runs before the transaction (work that need not hold the write lock, as encoding). */
  prepare?(ops: Op[]): void;
  /** Runs after a batch is committed, before the operations resolve. */
  committed?(ops: Op[], results: R[]): void;
  /** A database error as the owner's typed error: for one operation, or (op null) for the store. */
  failure(error: unknown, op: Op | null): Error;
}

export interface EmbeddedStoreOptions extends EmbeddedDatabaseOptions {
  /** The SQLite file. */
  path: string;
  /** The folder of the process journals (killed processes' journals are replayed from it in any case). */
  journalDir: string;
  /** This process journals its acknowledged puts; false: they wait for a commit (or an exit save) in memory. */
  journaled: boolean;
  /** A transaction takes at most this many operations and (about) this many bytes; acknowledged puts past them are committed at once. */
  batchOps: number;
  batchBytes: number;
  /**
   * Bytes committed (values and a page per commit) after which the worker thread checkpoints the
   * WAL into the file (checkpoints.ts), so that the main thread never waits for that sync; the
   * connection's own `walAutocheckpoint`, set higher, bounds the WAL if the worker falls behind.
   */
  checkpointBytes: number;
  /** Creates (or converts) the tables. */
  createTables(db: SqliteDatabase): void;
}

/** What a commit writes to the WAL besides its values (a page of its own, at the least), as counted for checkpoints. */
const PAGE_ESTIMATE = 16 * 1024;
/** A failed commit of acknowledged puts is tried again after this long. */
const RETRY_MS = 200;

/**
 * The embedded small-value store that Packed and TierKV's filesystem tiers are built on: one
 * SQLite file (WAL, database.ts), a journal per process (journal.ts) and a group commit.
 *
 * Operations queued by concurrent callers are committed together in one transaction at the next
 * turn of the event loop, or at once when a batch is full. A caller either waits for the commit
 * (`wait`: fsync'd puts, removals) or was acknowledged already (`acknowledged`: a put appended to
 * the journal first, `journal`), so that an awaited loop of puts runs without a commit per put;
 * the journal is emptied once everything in it is committed. A commit that fails rejects the
 * operations that wait for it and keeps the acknowledged ones queued (tried again shortly, and
 * at close; if they still cannot be committed the journal is kept for the next open to replay:
 * `replayDeadJournals`). What the rows are (tables, statements, what a put means) is the owner's.
 */
export class EmbeddedStore<Op extends QueuedOp<R>, R> {
  readonly db: SqliteDatabase;
  /** This process's journal, or null (fsync'd stores, saves at exit). */
  readonly journal: ProcessJournal | null;
  /** The last commit of acknowledged puts that failed (null once one succeeds). */
  failure: Error | null = null;

  private readonly journalDir: string;
  private readonly batchOps: number;
  private readonly batchBytes: number;
  private readonly path: string;
  private readonly checkpointBytes: number;
  /** Bytes committed since the last checkpoint was asked for, and the one running. */
  private uncheckpointed = 0;
  private checkpointing: Promise<void> | null = null;
  private rows: StoreRows<Op, R> | null = null;
  private queue: Op[] = [];
  private queuedBytes = 0;
  private scheduled: NodeJS.Immediate | null = null;
  private retry: NodeJS.Timeout | null = null;

  constructor(options: EmbeddedStoreOptions) {
    this.db = openEmbeddedDatabase(options.path, options, options.createTables);
    this.journalDir = options.journalDir;
    this.journal = options.journaled ? new ProcessJournal(options.journalDir) : null;
    this.batchOps = options.batchOps;
    this.batchBytes = options.batchBytes;
    this.path = options.path;
    this.checkpointBytes = options.checkpointBytes;
  }

  /** Gives the store its rows (once the owner has prepared its statements on `db`). */
  attach(rows: StoreRows<Op, R>): void {
    this.rows = rows;
  }

  get open(): boolean {
    return this.db.open;
  }

  /** Operations queued and not committed yet. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Queues an operation whose caller waits for its commit. */
  wait(op: Op): void {
    this.queue.push(op);
    this.queuedBytes += op.weight;
    this.schedule();
  }

  /**
   * Queues an operation already acknowledged (in the journal, or kept for the exit save): an
   * awaited loop never lets the event loop turn, so a full batch is committed here.
   */
  acknowledged(op: Op): void {
    this.queue.push(op);
    this.queuedBytes += op.weight;
    if (this.queue.length >= this.batchOps || this.queuedBytes >= this.batchBytes) this.commitAll();
    else this.schedule();
  }

  /** Commits at the next turn of the event loop: every caller that queues before then shares the commit. */
  schedule(): void {
    if (this.scheduled !== null || !this.db.open) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = null;
      this.commitAll();
    });
  }

  /** Commits everything queued now, batch after batch; stops at a failed batch. Empties the journal when nothing is left. */
  commitAll(): void {
    if (this.scheduled !== null) clearImmediate(this.scheduled);
    this.scheduled = null;
    if (!this.db.open) return;
    while (this.queue.length > 0) if (!this.commitBatch()) return;
    this.journal?.clear();
  }

  /**
   * Replays into the database the journals of processes that were killed, then removes them.
   * Under the write lock, so that two processes opening at once replay each journal once.
   * `decode` reads a record (null: torn, the end of what was acknowledged); `replay` writes the
   * records of every dead journal, in order. Returns the number of records replayed.
   */
  replayDeadJournals<Rec>(decode: (record: JournalRecordBytes) => Rec | null, replay: (records: Rec[]) => void): number {
    const files = deadJournals(this.journalDir);
    if (files.length === 0) return 0;
    let count = 0;
    this.db
      .transaction(() => {
        const present = files.filter((file) => existsSync(file)); // another process may have replayed one meanwhile
        const records = present.flatMap((file) => readJournal(file, decode));
        replay(records);
        count = records.length;
        for (const file of present) rmSync(file, { force: true });
      })
      .immediate();
    return count;
  }

  /**
   * Commits what is queued, then closes the database and the journal. When acknowledged puts
   * cannot be committed, the journal is kept (the next open replays it) and the failure is thrown.
   */
  close(): void {
    if (!this.db.open) return;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    this.commitAll();
    const failure = this.queue.length > 0 ? this.failure : null;
    // anything still queued was acknowledged (the rest was rejected)
    if (failure !== null) this.journal?.abandon();
    else this.journal?.close();
    if (this.scheduled !== null) clearImmediate(this.scheduled);
    this.scheduled = null;
    this.db.close();
    if (failure !== null) throw failure;
  }

  /** Resolves once no checkpoint of this store runs (a closed store's file is then open nowhere in this process). */
  async settled(): Promise<void> {
    while (this.checkpointing !== null) await this.checkpointing;
  }

  /** Counts what a commit added to the WAL; past `checkpointBytes`, the worker checkpoints it. */
  private committedBytes(bytes: number): void {
    this.uncheckpointed += bytes;
    if (this.uncheckpointed < this.checkpointBytes || this.checkpointing !== null) return;
    this.uncheckpointed = 0;
    this.checkpointing = checkpointInWorker(this.path).finally(() => {
      this.checkpointing = null;
    });
  }

  /** One transaction for the next batch; false when it failed. */
  private commitBatch(): boolean {
    const rows = this.rows!;
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < this.batchOps && (count === 0 || bytes < this.batchBytes)) bytes += this.queue[count++]!.weight;
    const ops = this.queue.splice(0, count);
    this.queuedBytes = Math.max(0, this.queuedBytes - bytes);
    let results: R[];
    try {
      rows.prepare?.(ops);
      results = this.db.transaction(() => rows.apply(ops)).immediate();
    } catch (error) {
      // nothing of the batch is stored (the transaction was rolled back)
      const kept = ops.filter((op) => op.acknowledged);
      for (const op of ops) if (!op.acknowledged) op.reject(rows.failure(error, op));
      if (kept.length === 0) return true;
      this.queue.unshift(...kept);
      for (const op of kept) this.queuedBytes += op.weight;
      this.failure = rows.failure(error, null);
      // tried again a little later; close() tries once more and keeps the journal if that fails
      this.retry ??= setTimeout(() => {
        this.retry = null;
        this.commitAll();
      }, RETRY_MS).unref();
      return false;
    }
    if (ops.some((op) => op.acknowledged)) this.failure = null;
    this.committedBytes(bytes + PAGE_ESTIMATE);
    rows.committed?.(ops, results);
    for (let i = 0; i < ops.length; i++) ops[i]!.resolve(results[i]!);
    return true;
  }
}

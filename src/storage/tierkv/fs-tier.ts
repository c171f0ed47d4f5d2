import { hash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { bufferBlob, type Source, type Value } from '../../blob.js';
import { LocationError, StorageCorruption, storageErrorCode } from '../../errors.js';
import { assertKey, type Key } from '../../key.js';
import { Disk } from '../../locations/disk/disk.js';
import type { Entry, Location } from '../../locations/interface.js';
import { codecNamed, type Codec } from './codec.js';
import type { ResourceFilesystem } from './resources.js';
import type { SqliteDatabase, SqliteStatement } from '../../sqlite.js';
import { EmbeddedStore, type QueuedOp } from '../embedded/store.js';
import { type StoredEncoding, verifiedValue } from '../embedded/verified.js';
import { forgetAtExit, savedAtExit, type SavesAtExit } from './exit-save.js';
import { decodeTierRecord, type JournalRecord, tierRecordMeta } from './journal.js';
import { orphanFiles } from './orphans.js';
import { ValueKind } from './value-kinds.js';

/** Values up to this size (after compression) live inline in SQLite; larger ones are Disk blobs. */
export const INLINE_LIMIT = 64 * 1024;
const SPACE_CHECK_MS = 500;
/**
 * Durability 'process' and 'exit': acknowledged puts wait in memory (and in the journal) and are
 * folded into SQLite when the event loop is idle, at close, or at once past these bounds (what
 * bounds the memory they hold: an awaited loop that never yields folds only here).
 */
const FOLD_OPS = 65_536;
const FOLD_BYTES = 64 * 1024 * 1024;
/** Rows whose id starts with this hold values written through the Location interface, not entries. */
const LOOSE = '#';

/**
 * The tables of a tier. The commit sequence number is the rowid (rows are appended in commit
 * order, and `seq > ?` is a range of the table itself); values are found by content key through
 * `kh`, the first 48 bits of the key as an integer (a small index; the full key is compared too).
 * A file written with the first layout (a `tags` column, `seq` indexed apart) is converted.
 */
function createSchema(db: SqliteDatabase): void {
  const columnsOf = () => db.prepare(`SELECT name FROM pragma_table_info('entries')`).pluck().all() as string[];
  const addKind = () => {
    // the type the value was given as (value-kinds.ts); files written before it hold bytes only
    if (!columnsOf().includes('kind')) db.exec('ALTER TABLE entries ADD COLUMN kind INTEGER NOT NULL DEFAULT 0');
  };
  if (columnsOf().includes('kh')) {
    if (!columnsOf().includes('kind')) db.transaction(addKind).immediate();
    return;
  }
  db.transaction(() => {
    // looked at again under the write lock: another process may have just converted the file
    const old = columnsOf().includes('tags');
    if (old) db.exec('ALTER TABLE entries RENAME TO entries_v1; DROP INDEX IF EXISTS entries_seq; DROP INDEX IF EXISTS entries_key; DROP INDEX IF EXISTS entries_blob;');
    db.exec(`
      CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, key TEXT NOT NULL, kh INTEGER NOT NULL,
        size INTEGER NOT NULL, stored INTEGER NOT NULL, codec TEXT NOT NULL, data BLOB, blob TEXT);
      CREATE INDEX IF NOT EXISTS entries_kh ON entries(kh);
      CREATE INDEX IF NOT EXISTS entries_blob ON entries(blob) WHERE blob IS NOT NULL;
      CREATE TABLE IF NOT EXISTS removed (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS removed_seq ON removed(seq);`);
    if (old) {
      db.exec(`INSERT INTO entries (seq, id, key, kh, size, stored, codec, data, blob)
        SELECT seq, id, key, 0, size, stored, codec, data, blob FROM entries_v1 ORDER BY seq; DROP TABLE entries_v1;`);
      const fix = db.prepare('UPDATE entries SET kh = ? WHERE seq = ?');
      for (const [seq, key] of db.prepare('SELECT seq, key FROM entries').raw().all() as [number, Key][]) fix.run(keyHead(key), seq);
    }
    addKind();
  }).immediate();
}

/** The first 48 bits of a content key, as the integer that `entries.kh` indexes. */
function keyHead(key: Key): number {
  return parseInt(key.slice(0, 12), 16);
}

/** A row of the entries table as the index loads it: id, key, seq, size, stored, blob (0 or 1), kind (an array: cheaper than an object per row). */
export type EntryRow = [id: string, key: Key, seq: number, size: number, stored: number, blob: number, kind: ValueKind];

/** A value read from a tier, verified against its content key. */
export interface ReadValue {
  key: Key;
  bytes: Buffer;
  kind: ValueKind;
}

interface PutOp extends QueuedOp<number> {
  kind: 'put';
  id: string;
  key: Key;
  size: number;
  valueKind: ValueKind;
  codec: string;
  /** The encoded bytes (kept for a blob too, to rewrite it if another process removed it); the plain bytes when `deferred`. */
  encoded: Buffer;
  /** Acknowledged before it was encoded: `encoded` holds the plain bytes (codec 'none'), encoded for this tier at the fold. */
  deferred: boolean;
  blob: Key | null;
  /** What the commit stores: set before the transaction (a deferred put is encoded then). */
  stored?: { encoded: Buffer; codec: string; blob: Key | null };
}

interface RemoveOp extends QueuedOp<number> {
  kind: 'remove';
  id: string;
  /** Leave a tombstone so that other processes drop the entry from their index. */
  tombstone: boolean;
}

type Op = PutOp | RemoveOp;

/**
 * One filesystem tier of a TierKV store, and a cairn Location in its own right: a SQLite file
 * (WAL) holding the tag index and values up to INLINE_LIMIT, and a Disk lake for larger values.
 *
 * Built on the embedded store (storage/embedded: the SQLite file, a journal per process, group
 * commit) that Packed uses too; the rows (entries, tombstones, sequence numbers), tags, codecs,
 * blobs and limits are TierKV's.
 *
 * Durability 'process' (the default): a put is appended to this process's journal (journal.ts,
 * one write(), no fsync) and acknowledged: the journal is the store of record. The puts are
 * folded into SQLite (WAL, `synchronous=NORMAL`) together when the event loop is idle (the next
 * turn), at close, or at once past FOLD_OPS / FOLD_BYTES; a killed process's journal is replayed
 * by the next open. Durability 'exit': the same without the journal (saved at close, at process
 * exit and on SIGINT/SIGTERM: exit-save.ts; lost on `kill -9`).
 * Durability 'power' (`fsync`): no journal; puts are queued and committed together at the next
 * turn of the event loop (sets issued together share it), with `synchronous=FULL`,
 * and a caller's promise resolves only after that commit. Removals always wait for their commit.
 *
 * Every value read is verified: its plain bytes must hash to its content key (StorageCorruption).
 */
export class FilesystemTier implements Location, SavesAtExit {
  readonly name: string;
  readonly dir: string;
  readonly codec: Codec;
  readonly disk: Disk;
  /** Highest sequence number this process has applied to its index from this tier. */
  lastSeq = 0;
  /** Bytes this store's values take here (compressed), kept up to date by this process. */
  storedBytes = 0;

  /** The embedded store (SQLite file, journal, group commit) shared with Packed; the rows here are TierKV's. */
  private readonly store: EmbeddedStore<Op, number>;
  private readonly db: SqliteDatabase;
  private readonly resource: ResourceFilesystem;
  /** Durability 'process' or 'exit': puts are acknowledged before they are in SQLite. */
  private readonly acknowledgesEarly: boolean;
  /** The puts acknowledged but not yet in SQLite, by entry id. */
  private readonly pending = new Map<string, PutOp>();
  /** The same by content key, built when a read by key first needs it (not on the set's path), dropped when a put leaves `pending`. */
  private pendingByKey: Map<Key, PutOp> | null = null;
  /** The last acknowledgement time given (µs, on the commit sequence scale): strictly increasing. */
  private lastVer = 0;
  private seenVersion = -1;
  /** Of the commit being made: the sequence numbers given, blobs its rows no longer name, and whether nobody else committed since our last look. */
  private committing: { seqs: number[]; freed: string[]; advance: boolean } = { seqs: [], freed: [], advance: false };
  /** Some row here names a Disk blob (only then does a replaced row need a look for its old blob). */
  private hasBlobs: boolean;
  private space: { at: number; used: number; total: number } | null = null;
  private readonly stmt: {
    put: SqliteStatement;
    remove: SqliteStatement;
    tombstone: SqliteStatement;
    blobOf: SqliteStatement;
    blobUsed: SqliteStatement;
    maxSeq: SqliteStatement;
    dataVersion: SqliteStatement;
    seqOf: SqliteStatement;
    removedSeq: SqliteStatement;
    byKey: SqliteStatement;
    loose: SqliteStatement;
    since: SqliteStatement;
    removedSince: SqliteStatement;
    many: SqliteStatement;
    one: SqliteStatement;
    blobs: SqliteStatement;
    keys: SqliteStatement;
  };

  constructor(resource: ResourceFilesystem, storeName: string) {
    this.resource = resource;
    this.codec = resource.codec;
    this.dir = join(resource.path, storeName);
    this.name = `TierKV(${this.dir})`;
    try {
      mkdirSync(this.dir, { recursive: true });
      this.store = new EmbeddedStore({
        path: join(this.dir, 'tierkv.db'),
        // FULL: the WAL is fsynced at each commit; NORMAL still survives a killed process
        fsync: resource.fsync,
        lockTimeout: 30_000,
        cacheKiB: 65_536,
        // checkpoints (each one syncs the files even with NORMAL) in the store's worker thread every
        // 8 MiB committed; the connection's own at 16,384 pages (64 MiB) only if the worker falls behind
        walAutocheckpoint: 16_384,
        checkpointBytes: 8 * 1024 * 1024,
        journalDir: join(this.dir, 'journal'),
        journaled: resource.durability === 'process',
        batchOps: FOLD_OPS,
        batchBytes: FOLD_BYTES,
        createTables: createSchema,
      });
      this.db = this.store.db;
    } catch (error) {
      throw new LocationError(`${this.name}: cannot open its database: ${(error as Error).message}`, this.name, { cause: error, code: storageErrorCode(error) });
    }
    const fraction = 'fraction' in resource.limit ? resource.limit.fraction : 1;
    this.disk = new Disk(join(this.dir, 'blobs'), { fsync: resource.fsync, maxUsage: fraction });
    const db = this.db;
    this.stmt = {
      put: db.prepare('INSERT OR REPLACE INTO entries (seq, id, key, kh, size, stored, codec, data, blob, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM entries WHERE id = ?'),
      tombstone: db.prepare('INSERT OR REPLACE INTO removed (id, seq) VALUES (?, ?)'),
      blobOf: db.prepare('SELECT blob FROM entries WHERE id = ?').pluck(),
      blobUsed: db.prepare('SELECT 1 FROM entries WHERE blob = ? LIMIT 1').pluck(),
      maxSeq: db.prepare('SELECT max(coalesce((SELECT max(seq) FROM entries), 0), coalesce((SELECT max(seq) FROM removed), 0))').pluck(),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      seqOf: db.prepare('SELECT seq FROM entries WHERE id = ?').pluck(),
      removedSeq: db.prepare('SELECT seq FROM removed WHERE id = ?').pluck(),
      byKey: db.prepare('SELECT codec, data, blob FROM entries WHERE kh = ? AND key = ? LIMIT 1').raw(),
      loose: db.prepare(`SELECT key, max(size) FROM entries GROUP BY key`).raw(),
      // entry ids are JSON arrays; ids of values written through the Location interface start with LOOSE
      since: db.prepare(`SELECT id, key, seq, size, stored, blob IS NOT NULL AS blob, kind FROM entries WHERE seq > ? AND substr(id, 1, 1) != '${LOOSE}'`).raw(),
      removedSince: db.prepare('SELECT id, seq FROM removed WHERE seq > ?').raw(),
      many: db.prepare('SELECT e.id, e.key, e.codec, e.data, e.blob, e.kind FROM json_each(?) AS j JOIN entries AS e ON e.id = j.value').raw(),
      one: db.prepare('SELECT id, key, codec, data, blob, kind FROM entries WHERE id = ?').raw(),
      blobs: db.prepare('SELECT DISTINCT blob FROM entries WHERE blob IS NOT NULL').pluck(),
      keys: db.prepare('SELECT DISTINCT key FROM entries').pluck(),
    };
    this.storedBytes = (db.prepare('SELECT total(stored) FROM entries').pluck().get() as number) ?? 0;
    this.hasBlobs = db.prepare('SELECT 1 FROM entries WHERE blob IS NOT NULL LIMIT 1').pluck().get() !== undefined;
    this.acknowledgesEarly = resource.durability !== 'power';
    this.store.attach({
      prepare: (ops) => this.prepareCommit(ops),
      apply: (ops) => this.applyCommit(ops),
      committed: (ops) => this.afterCommit(ops),
      failure: (error) => new LocationError(`${this.name}: cannot commit: ${(error as Error).message}`, this.name, { cause: error, code: storageErrorCode(error) }),
    });
    this.recover();
    if (resource.durability === 'exit') savedAtExit(this);
  }

  /** Sets are acknowledged before they are encoded: TierKV hands over the plain bytes (the fold encodes them). */
  get defersEncoding(): boolean {
    return this.acknowledgesEarly;
  }

  /**
   * Replays into SQLite the journals of processes that were killed (their acknowledged puts that
   * never reached SQLite), then removes them. Under the write lock, so that two processes opening
   * at once replay each journal once. A put older than what SQLite holds for its entry (a newer
   * set or a removal committed since) is left out. Returns the number of puts replayed.
   */
  recover(): number {
    const replayed = this.store.replayDeadJournals(decodeTierRecord, (records) => {
      // the last put of each entry, over every dead journal
      const latest = new Map<string, JournalRecord>();
      for (const record of records) {
        const seen = latest.get(record.id);
        if (!seen || seen.ver < record.ver) latest.set(record.id, record);
      }
      let seq = Math.max((this.stmt.maxSeq.get() as number) + 1, Date.now() * 1000);
      for (const record of latest.values()) {
        const committed = (this.stmt.seqOf.get(record.id) as number | undefined) ?? 0;
        const removed = (this.stmt.removedSeq.get(record.id) as number | undefined) ?? 0;
        if (committed > record.ver || removed > record.ver) continue;
        let plain: Buffer;
        try {
          plain = verifiedValue(record.key, record.encoded, this.name, storedEncoding(record.codec));
        } catch {
          continue; // damaged after it was written: never return it
        }
        // journaled as plain bytes (the set was acknowledged before it was encoded): encoded now
        const { encoded, codec } = record.codec === 'none' ? this.encode(plain) : { encoded: record.encoded, codec: record.codec };
        const blob = encoded.length > INLINE_LIMIT ? hash('sha256', encoded) : null;
        if (blob !== null) {
          this.ensureBlob(blob, encoded);
          this.hasBlobs = true;
        }
        this.stmt.put.run(seq++, record.id, record.key, keyHead(record.key), record.size, encoded.length, codec, blob ? null : encoded, blob, record.kind);
      }
    });
    if (replayed > 0) this.storedBytes = (this.db.prepare('SELECT total(stored) FROM entries').pluck().get() as number) ?? 0;
    return replayed;
  }

  // --- TierKV's side -------------------------------------------------------------------------

  /** Rows committed after `lastSeq` (by anyone), and the tombstones since; null when nothing changed. */
  changes(): { rows: EntryRow[]; removed: [string, number][] } | null {
    const version = this.stmt.dataVersion.get() as number;
    if (version === this.seenVersion) return null;
    this.seenVersion = version;
    const rows = this.stmt.since.all(this.lastSeq) as EntryRow[];
    const removed = this.stmt.removedSince.all(this.lastSeq) as [string, number][];
    for (const row of rows) if (row[2] > this.lastSeq) this.lastSeq = row[2];
    for (const [, seq] of removed) if (seq > this.lastSeq) this.lastSeq = seq;
    return { rows, removed };
  }

  /** True when a value taking `bytes` here stays under the tier's soft limit. */
  hasRoom(bytes: number): boolean {
    const limit = this.resource.limit;
    if ('bytes' in limit) return this.storedBytes + bytes <= limit.bytes;
    const now = performance.now();
    if (this.space === null || now - this.space.at > SPACE_CHECK_MS) {
      // as df and psutil count: blocks reserved for root are neither used nor available
      const stats = statfsSync(this.dir);
      const used = (stats.blocks - stats.bfree) * stats.bsize;
      this.space = { at: now, used, total: used + stats.bavail * stats.bsize };
    }
    if ((this.space.used + bytes) / this.space.total > limit.fraction) return false;
    this.space.used += bytes; // later writes before the next check see this one
    return true;
  }

  /** Encodes a value for this tier: the bytes to store, and whether they go to a Disk blob. */
  encode(bytes: Buffer): { encoded: Buffer; codec: string } {
    const encoded = this.codec.encode(bytes);
    // a value that does not shrink is stored as it is
    return encoded.length < bytes.length ? { encoded, codec: this.codec.name } : { encoded: bytes, codec: 'none' };
  }

  /**
   * Stores an entry (its value and tags) in one transaction with the others queued in this turn;
   * resolves with its sequence number once committed. Declines (null) when a Disk blob is declined.
   */
  putEntry(id: string, key: Key, size: number, encoded: Buffer, codec: string, kind: ValueKind = ValueKind.Bytes): number | Promise<number | null> {
    if (this.acknowledgesEarly) return this.earlyPut(id, key, size, encoded, codec, kind);
    if (encoded.length > INLINE_LIMIT) return this.putBlobEntry(id, key, size, encoded, codec, kind);
    this.storedBytes += encoded.length; // given back if the commit fails
    return new Promise<number>((resolve, reject) => {
      this.store.wait({ kind: 'put', id, key, size, codec, encoded, deferred: false, blob: null, valueKind: kind, ...this.waiting(encoded.length, resolve, reject) });
    });
  }

  /**
   * Durability 'process' (a journal) or 'exit': the put is acknowledged now and folded into
   * SQLite later (the store's group commit). 'process' appends it to the journal first, with one write(): from
   * then on it survives `kill -9`. Plain bytes (codec 'none') are encoded for this tier at the
   * fold, off the set's path. Returns the acknowledgement time (the entry's sequence number
   * until the fold gives it its own).
   */
  private earlyPut(id: string, key: Key, size: number, encoded: Buffer, codec: string, kind: ValueKind): number {
    // above every sequence number this process has seen here: the index takes this set over any row it loaded
    const ver = (this.lastVer = Math.max(this.lastVer + 1, this.lastSeq + 1, Date.now() * 1000));
    // the pending put keeps its own copy: the caller may reuse its buffer once the set resolves
    const journal = this.store.journal;
    const own = journal ? journal.append(tierRecordMeta({ id, key, size, codec, kind, ver }), encoded) : Buffer.from(encoded);
    const deferred = codec === 'none';
    const blob = !deferred && encoded.length > INLINE_LIMIT ? hash('sha256', encoded) : null;
    if (encoded.length > INLINE_LIMIT) this.hasBlobs = true; // the blob file is written at the fold (ensureBlob)
    this.storedBytes += encoded.length; // plain bytes until the next open counts what the fold stored
    const op: PutOp = { kind: 'put', id, key, size, valueKind: kind, codec, encoded: own, deferred, blob, weight: own.length, acknowledged: true, resolve: () => {}, reject: () => {} };
    this.setPending(op);
    this.store.acknowledged(op);
    return ver;
  }

  private setPending(op: PutOp): void {
    if (this.pendingByKey !== null && this.pending.has(op.id)) this.pendingByKey = null; // a replaced put may be the one its key names
    this.pending.set(op.id, op);
    this.pendingByKey?.set(op.key, op);
  }

  private dropPending(id: string, only?: PutOp): void {
    const op = this.pending.get(id);
    if (!op || (only && op !== only)) return;
    this.pending.delete(id);
    // another pending put may hold the same bytes: the map is built again when next needed
    this.pendingByKey = null;
  }

  private async putBlobEntry(id: string, key: Key, size: number, encoded: Buffer, codec: string, kind: ValueKind): Promise<number | null> {
    const blob = hash('sha256', encoded);
    const stored = await this.disk.write(blob, { ...bufferBlob(encoded), verified: true });
    if (!stored) return null;
    this.hasBlobs = true;
    this.storedBytes += encoded.length;
    return new Promise<number>((resolve, reject) => {
      this.store.wait({ kind: 'put', id, key, size, codec, encoded, deferred: false, blob, valueKind: kind, ...this.waiting(encoded.length, resolve, reject) });
    });
  }

  /** Removes an entry (in the same group commit as queued puts); resolves once committed. */
  removeEntry(id: string, stored: number, tombstone = true): Promise<number> {
    this.dropPending(id);
    return new Promise<number>((resolve, reject) => this.store.wait({ kind: 'remove', id, tombstone, weight: 0, acknowledged: false, resolve, reject })).then((seq) => {
      this.storedBytes = Math.max(0, this.storedBytes - stored);
      return seq;
    });
  }

  /**
   * Values of entries by id, each verified against its content key. A missing id is absent from
   * `found` (another process removed it); a value whose bytes do not hash to its key is in
   * `corrupt` (the caller looks for another copy).
   */
  async readEntries(ids: readonly string[]): Promise<{ found: Map<string, ReadValue>; corrupt: Map<string, StorageCorruption> }> {
    const found = new Map<string, ReadValue>();
    const corrupt = new Map<string, StorageCorruption>();
    const rows = (ids.length === 1 ? [this.stmt.one.get(ids[0])].filter((row) => row !== undefined) : this.stmt.many.all(JSON.stringify(ids))) as EntryValueRow[];
    if (this.pending.size > 0) {
      // acknowledged puts not yet in SQLite: newer than any row
      for (const id of ids) {
        const op = this.pending.get(id);
        if (op) found.set(id, { key: op.key, bytes: codecNamed(op.codec).decode(op.encoded), kind: op.valueKind });
      }
    }
    for (let row of rows) {
      const id = row[0];
      if (found.has(id)) continue;
      // a blob missing here was removed by a replace or delete committed after our row was read:
      // the row read again names the new value (or is gone)
      for (let attempt = 0; ; attempt++) {
        try {
          found.set(id, { key: row[1], bytes: await this.decodeRow(row[1], row[2], row[3], row[4]), kind: row[5] });
        } catch (error) {
          if (error instanceof StorageCorruption) corrupt.set(id, error);
          else if (!(error instanceof MissingBlob) || attempt >= 3) throw error;
          else {
            const again = this.stmt.one.get(id) as EntryValueRow | undefined;
            if (again === undefined) break;
            if (again[4] === row[4]) throw error.asLocationError(this.name);
            row = again;
            continue;
          }
        }
        break;
      }
    }
    return { found, corrupt };
  }

  /**
   * Commits what is queued, then closes the database. When the journal's puts cannot be
   * committed, the journal is kept (the next open replays it) and the failure is thrown.
   */
  async closeTier(): Promise<void> {
    if (!this.db.open) return;
    await this.disk.close(); // last-use marks that blob reads queued: nothing writes here after close
    try {
      this.store.close();
    } finally {
      forgetAtExit(this);
      await this.store.settled();
    }
  }

  /** Durability 'exit': the process is ending with the store open: fold what waits in memory now. */
  saveNow(): void {
    if (this.db.open && this.store.waiting > 0) this.store.commitAll();
  }

  // --- Location ------------------------------------------------------------------------------

  async read(key: Key): Promise<Value | null> {
    const bytes = await this.readBytes(key);
    if (bytes === null) return null;
    return { key, ...bufferBlob(bytes), labels: async () => null };
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    assertKey(key);
    const op = this.pendingWithKey(key);
    if (op) return codecNamed(op.codec).decode(op.encoded);
    for (let attempt = 0; ; attempt++) {
      const row = this.stmt.byKey.get(keyHead(key), key) as [string, Buffer | null, string | null] | undefined;
      if (!row) return null;
      try {
        return await this.decodeRow(key, row[0], row[1], row[2]);
      } catch (error) {
        // removed by another process between the row and the file: look again
        if (!(error instanceof MissingBlob)) throw error;
        if (attempt >= 3) throw error.asLocationError(this.name);
      }
    }
  }

  async *readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    for (const key of keys) yield [key, await this.read(key)];
  }

  /** Stores a value that no entry names yet (HashKeyStorage writing through Levels). */
  async write(key: Key, source: Source): Promise<Value | null> {
    assertKey(key);
    if (this.pendingWithKey(key) || this.stmt.byKey.get(keyHead(key), key)) {
      // already stored: that value (unless another process removed it meanwhile: then stored below)
      const present = await this.read(key);
      if (present !== null) return present;
    }
    const bytes = await source.bytes();
    if (!source.verified && hash('sha256', bytes) !== key) return null;
    const { encoded, codec } = this.encode(bytes);
    if (!this.hasRoom(encoded.length)) return null;
    if ((await this.putEntry(LOOSE + key, key, bytes.length, encoded, codec)) === null) return null;
    return { key, ...bufferBlob(bytes), labels: async () => null };
  }

  /** Removes a value written through `write`; values that entries hold are removed with the entries. */
  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    const pending = this.pending.get(LOOSE + key);
    const size = pending ? pending.encoded.length : (this.db.prepare('SELECT stored FROM entries WHERE id = ?').pluck().get(LOOSE + key) as number | undefined);
    if (size === undefined) return false;
    await this.removeEntry(LOOSE + key, size, false);
    return true;
  }

  async touch(key: Key): Promise<boolean> {
    assertKey(key);
    return this.pendingWithKey(key) !== null || this.stmt.byKey.get(keyHead(key), key) !== undefined;
  }

  /** An acknowledged put of this value not yet in SQLite. */
  private pendingWithKey(key: Key): PutOp | null {
    if (this.pending.size === 0) return null;
    if (this.pendingByKey === null) {
      this.pendingByKey = new Map();
      for (const op of this.pending.values()) this.pendingByKey.set(op.key, op);
    }
    return this.pendingByKey.get(key) ?? null;
  }

  async *contents(): AsyncIterable<Entry> {
    if (this.acknowledgesEarly && this.store.waiting > 0) this.store.commitAll(); // this process's acknowledged puts too
    for (const [key, size] of this.stmt.loose.all() as [Key, number][]) {
      yield { key, location: this, meta: { labels: null, lastUsed: null, size } };
    }
  }

  async close(): Promise<void> {
    await this.closeTier();
  }

  // --- internals -----------------------------------------------------------------------------

  /** The plain bytes of a row, verified: they must hash to `key`. */
  private async decodeRow(key: Key, codec: string, data: Buffer | null, blob: string | null): Promise<Buffer> {
    const encoded = blob === null ? data! : await this.disk.readBytes(blob).catch((error: unknown) => {
      // Disk verifies a blob against its name
      if (error instanceof StorageCorruption) throw new StorageCorruption(key, null, `${this.name} (its blob ${blob})`, { cause: error });
      throw error;
    });
    if (encoded === null) throw new MissingBlob(blob!);
    return verifiedValue(key, encoded, this.name, storedEncoding(codec));
  }

  /** The store's fields of a put or removal whose caller waits for its commit (a put that fails gives its bytes back). */
  private waiting(weight: number, resolve: (seq: number) => void, reject: (error: unknown) => void): QueuedOp<number> {
    return {
      weight,
      acknowledged: false,
      resolve,
      reject: (error) => {
        this.storedBytes -= weight;
        reject(error);
      },
    };
  }

  /** Before the write lock is taken: puts acknowledged as plain bytes are encoded for this tier. */
  private prepareCommit(ops: Op[]): void {
    for (const op of ops) {
      if (op.kind !== 'put') continue;
      if (!op.deferred) op.stored = { encoded: op.encoded, codec: op.codec, blob: op.blob };
      else {
        const { encoded, codec } = this.encode(op.encoded);
        op.stored = { encoded, codec, blob: encoded.length > INLINE_LIMIT ? hash('sha256', encoded) : null };
      }
    }
  }

  /** Inside the write transaction: the rows of a batch, each with its sequence number. */
  private applyCommit(ops: Op[]): number[] {
    const seqs: number[] = [];
    const freed: string[] = [];
    // nobody else committed since our last look: our own sequence numbers can be skipped later
    const advance = (this.stmt.dataVersion.get() as number) === this.seenVersion;
    // unique and increasing within this file (we hold its write lock), close to time order across
    // tiers, and above every acknowledgement time given here (a replay skips what was committed)
    let seq = Math.max((this.stmt.maxSeq.get() as number) + 1, Date.now() * 1000, this.lastVer + 1);
    for (const op of ops) {
      const old = this.hasBlobs ? (this.stmt.blobOf.get(op.id) as string | null | undefined) : null;
      const put = op.kind === 'put' ? op.stored! : null;
      if (op.kind === 'put' && put) {
        if (put.blob !== null) this.ensureBlob(put.blob, put.encoded);
        const inline = put.blob === null ? put.encoded : null;
        this.stmt.put.run(seq, op.id, op.key, keyHead(op.key), op.size, put.encoded.length, put.codec, inline, put.blob, op.valueKind);
      } else {
        this.stmt.remove.run(op.id);
        if (op.kind === 'remove' && op.tombstone) this.stmt.tombstone.run(op.id, seq);
      }
      if (old && old !== (put ? put.blob : null)) freed.push(old);
      seqs.push(seq++);
    }
    this.committing = { seqs, freed, advance };
    return seqs;
  }

  /** After a commit: sequence numbers seen, committed puts out of `pending`, blobs no row names removed. */
  private afterCommit(ops: Op[]): void {
    const { seqs, freed, advance } = this.committing;
    const last = seqs[seqs.length - 1] ?? 0;
    if (advance) this.lastSeq = Math.max(this.lastSeq, last);
    this.lastVer = Math.max(this.lastVer, last);
    for (const op of ops) if (op.kind === 'put') this.dropPending(op.id, op);
    if (freed.length > 0) this.freeBlobs(freed);
  }

  /**
   * Removes blobs that no row names any more. Under the write lock: no process can commit a row
   * naming one of them meanwhile, and a process that commits one later finds the file missing
   * and writes it again (ensureBlob). A reader that read an old row retries (readEntries).
   */
  private freeBlobs(blobs: readonly string[]): void {
    try {
      this.db
        .transaction(() => {
          for (const blob of blobs) if (this.stmt.blobUsed.get(blob) === undefined) rmSync(this.disk.pathOf(blob), { force: true });
        })
        .immediate();
    } catch {
      // left for reclaim() (on the next open, or gc): an unused blob takes room but is never read
    }
  }

  /**
   * Removes what a killed writer left behind: blobs that no row names (written before a commit
   * that never came) and temp files of processes that no longer run. Under the write lock, as
   * freeBlobs. Returns what was removed.
   */
  reclaim(): { blobs: number; tempFiles: number; bytes: number } {
    this.recover(); // a killed writer's journal may name blobs not written yet
    const removed = { blobs: 0, tempFiles: 0, bytes: 0 };
    if (!existsSync(this.disk.root)) return removed;
    this.db
      .transaction(() => {
        const named = new Set(this.stmt.blobs.all() as string[]);
        for (const orphan of orphanFiles(this.disk.root, named)) {
          rmSync(orphan.path, { force: true });
          if (orphan.temp) removed.tempFiles++;
          else removed.blobs++;
          removed.bytes += orphan.size;
        }
      })
      .immediate();
    return removed;
  }

  /** Entries and bytes this tier holds for the store (every process's, as committed; this process's acknowledged puts are committed first). */
  stats(): { entries: number; bytes: number } {
    if (this.acknowledgesEarly && this.store.waiting > 0) this.store.commitAll();
    const [entries, bytes] = this.db.prepare(`SELECT count(*), total(stored) FROM entries WHERE substr(id, 1, 1) != '${LOOSE}'`).raw().get() as [number, number];
    return { entries, bytes };
  }

  /** Inside the write transaction: the blob a new row names must exist (another process may have removed it). */
  private ensureBlob(blob: Key, encoded: Buffer): void {
    const file = this.disk.pathOf(blob);
    if (existsSync(file)) return;
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`; // orphans.ts knows this name
    const fd = openSync(tmp, 'w', 0o444);
    try {
      for (let offset = 0; offset < encoded.length; ) offset += writeSync(fd, encoded, offset);
      if (this.resource.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }
}

/** How bytes stored with `codec` decode (none for values stored as they are). */
function storedEncoding(codec: string): StoredEncoding | undefined {
  return codec === 'none' ? undefined : { name: codec, decode: (bytes) => codecNamed(codec).decode(bytes) };
}

/** A row of `one` and `many`: id, key, codec, data, blob, kind. */
type EntryValueRow = [string, Key, string, Buffer | null, string | null, ValueKind];

/** The Disk blob a row names is gone (removed by a replace committed after the row was read). */
class MissingBlob extends Error {
  constructor(readonly blob: string) {
    super(`the blob ${blob} of a stored entry is missing`);
  }

  asLocationError(where: string): LocationError {
    return new LocationError(`${where}: ${this.message}`, where);
  }
}

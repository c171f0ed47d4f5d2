/**
 * The index of a smartCache folder (and of a cache beside a Disk lake): one SQLite file in WAL
 * mode, shared by every process that uses the folder.
 *
 * - Durability: `synchronous=NORMAL` in WAL mode commits without an fsync, yet a committed entry is
 *   in the file (the OS holds the page): it survives kill -9 of the process, not a power cut.
 *   `fsync: true` gives `synchronous=FULL`, which survives both.
 * - Several processes: SQLite's own locks, with a busy timeout so writers wait for each other.
 * - A fresh process reads only what it asks for (a B-tree lookup per call), never the whole index.
 * - Hits update `used` in batches (one transaction for many hits), flushed on close and at exit.
 * - `rm -rf` of the folder under a running process: before each use, the link count of the open
 *   file is checked (one fstat of a descriptor held for that, cheaper than a stat of the path); a
 *   file that was removed or replaced has none left, and the path is opened again, so the process
 *   never serves hits from, or writes into, an index nobody else can see.
 */
import { closeSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, LocationError } from '../errors.js';
import type { Key } from '../key.js';
import { openSqlite, type SqliteDatabase, type SqliteStatement } from '../sqlite.js';
import type { EntryIndex, EntryMeta, IndexedEntry } from './entry-index.js';

/** The layout of the file; another value is a file this version does not read. */
const SCHEMA = 1;
const BUSY_TIMEOUT = 10_000;
/** Uses are written after FLUSH_MS, or when this many wait (bounded memory; a write of 1000 uses takes milliseconds). */
const FLUSH_COUNT = 10_000;
const FLUSH_MS = 1000;
/** Rows per query while listing entries (memory stays bounded whatever the count). */
const PAGE = 500;

interface Statements {
  get: SqliteStatement;
  put: SqliteStatement;
  delete: SqliteStatement;
  touch: SqliteStatement;
  page: SqliteStatement;
  pageFn: SqliteStatement;
  digests: SqliteStatement;
}

interface Opened {
  db: SqliteDatabase;
  statements: Statements;
  /** A descriptor of the database file, to see whether it still has a name. */
  fd: number;
}

type Row = [Key, string, string, string, number, number, string];

/** Open indexes, so that uses waiting in memory are written when the process exits. */
const open = new Set<SqliteIndex>();
let exitHook = false;

export class SqliteIndex implements EntryIndex {
  readonly file: string;
  readonly name: string;
  private current: Opened | null = null;
  /** key → time of its latest hit, not written yet. */
  private readonly uses = new Map<Key, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    file: string,
    private readonly fsync = false,
  ) {
    this.file = resolve(file);
    this.name = `SqliteIndex(${this.file})`;
  }

  /** The database, opened again when the file was removed or replaced since. */
  private db(): Opened {
    const current = this.current;
    if (current !== null) {
      if (fstatSync(current.fd).nlink > 0) return current;
      // removed under us: what waits to be written belongs to the old file
      this.uses.clear();
      this.release(current);
    }
    this.current = this.openFile();
    return this.current;
  }

  private openFile(): Opened {
    let db: SqliteDatabase | null = null;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      db = openSqlite(this.file, { timeout: BUSY_TIMEOUT });
      const version = Number(db.pragma('user_version', { simple: true }));
      // before anything is written to a new file: freed pages can then be given back (compact())
      if (version === 0) db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.fsync ? 'FULL' : 'NORMAL'}`);
      // after a checkpoint the write-ahead log is cut back to this size instead of staying at its largest
      db.pragma(`journal_size_limit = ${1024 * 1024}`);
      if (version !== 0 && version !== SCHEMA) {
        throw new ConfigError(`${this.name} has layout ${version}, this version of cairn reads ${SCHEMA}: use another folder or remove this one`);
      }
      if (version === 0) {
        db.transaction(() => {
          db!.exec(`CREATE TABLE IF NOT EXISTS entries (
            key TEXT PRIMARY KEY NOT NULL,
            fn TEXT NOT NULL,
            digest TEXT NOT NULL,
            args TEXT NOT NULL,
            size INTEGER NOT NULL,
            used INTEGER NOT NULL,
            parts TEXT NOT NULL,
            bytes BLOB NOT NULL
          ) WITHOUT ROWID`);
          // no other index: each would be one more B-tree page written by every miss (about
          // twice the time of a miss with two), for what only clear(fn) and explain() would use
          db!.exec(`PRAGMA user_version = ${SCHEMA}`);
        }).immediate();
      }
      const columns = 'key, fn, digest, args, size, used, parts';
      const statements: Statements = {
        get: db.prepare('SELECT bytes FROM entries WHERE key = ?').pluck(),
        put: db.prepare('INSERT OR REPLACE INTO entries (key, fn, digest, args, size, used, parts, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
        delete: db.prepare('DELETE FROM entries WHERE key = ?'),
        // a use never moves back in time (another process may have recorded a later one)
        touch: db.prepare('UPDATE entries SET used = ? WHERE key = ? AND used < ?'),
        page: db.prepare(`SELECT ${columns} FROM entries WHERE key > ? ORDER BY key LIMIT ${PAGE}`).raw(),
        pageFn: db.prepare(`SELECT ${columns} FROM entries WHERE fn = ? AND key > ? ORDER BY key LIMIT ${PAGE}`).raw(),
        digests: db.prepare('SELECT digest, MAX(used) AS last FROM entries WHERE args = ? AND fn = ? GROUP BY digest ORDER BY last DESC').raw(),
      };
      const fd = openSync(this.file, 'r');
      if (!exitHook) {
        exitHook = true;
        process.once('exit', () => {
          for (const index of open) index.flushQuietly();
        });
      }
      open.add(this);
      return { db, statements, fd };
    } catch (error) {
      try {
        db?.close();
      } catch {
        // the error that matters is the one below
      }
      if (error instanceof ConfigError) throw error;
      throw this.fail('Cannot open', error);
    }
  }

  private release(current: Opened): void {
    this.current = null;
    closeSync(current.fd);
    try {
      current.db.close();
    } catch {
      // closing a database whose files are gone may fail: nothing is lost, it is gone
    }
  }

  private fail(what: string, error: unknown): LocationError {
    return new LocationError(`${what} ${this.name}: ${(error as Error).message}`, this.name, { cause: error });
  }

  getSync(key: Key): Buffer | null {
    const { statements } = this.db();
    try {
      return (statements.get.get(key) as Buffer | undefined) ?? null;
    } catch (error) {
      throw this.fail(`Cannot read ${key} in`, error);
    }
  }

  async get(key: Key): Promise<Buffer | null> {
    return this.getSync(key);
  }

  putSync(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): void {
    const { statements } = this.db();
    try {
      statements.put.run(key, meta.fn, meta.digest, meta.args, meta.size, Date.now(), parts.join(' '), bytes);
    } catch (error) {
      throw this.fail(`Cannot write ${key} in`, error);
    }
    this.uses.delete(key);
  }

  async put(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): Promise<void> {
    this.putSync(key, bytes, meta, parts);
  }

  async delete(key: Key): Promise<boolean> {
    const { statements } = this.db();
    this.uses.delete(key);
    try {
      return Number(statements.delete.run(key).changes) > 0;
    } catch (error) {
      throw this.fail(`Cannot delete ${key} in`, error);
    }
  }

  async *entries(fn?: string): AsyncIterable<IndexedEntry> {
    this.flush();
    let after = '';
    for (;;) {
      const { statements } = this.db();
      const rows = (fn === undefined ? statements.page.all(after) : statements.pageFn.all(fn, after)) as Row[];
      for (const [key, name, digest, args, size, used, parts] of rows) {
        yield { key, fn: name, digest, args, size, used, parts: parts === '' ? [] : parts.split(' ') };
      }
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]![0];
    }
  }

  async digestsFor(fn: string, args: string): Promise<string[]> {
    const { statements } = this.db();
    return (statements.digests.all(args, fn) as [string, number][]).map(([digest]) => digest);
  }

  /** Gives back the pages that removed entries left free (the log shrinks to journal_size_limit). */
  async compact(): Promise<void> {
    const { db } = this.db();
    try {
      db.pragma('incremental_vacuum');
      // PASSIVE: never waits for other processes (this runs on the caller's thread)
      db.pragma('wal_checkpoint(PASSIVE)');
      // then cut the log back now, not at some later write, unless another process is reading it
      // (no busy wait: a log that cannot be cut now is cut by a later checkpoint)
      const timeout = Number(db.pragma('busy_timeout', { simple: true }));
      db.pragma('busy_timeout = 0');
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        db.pragma(`busy_timeout = ${timeout}`);
      }
    } catch (error) {
      throw this.fail('Cannot compact', error);
    }
  }

  touch(key: Key): void {
    this.uses.set(key, Date.now());
    if (this.uses.size >= FLUSH_COUNT) this.flushQuietly();
    else if (this.timer === null) {
      this.timer = setTimeout(() => this.flushQuietly(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes the waiting uses in one transaction. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const current = this.current;
    if (this.uses.size === 0 || current === null) return;
    const uses = [...this.uses];
    this.uses.clear();
    // uses of a file removed since belong to it: never make the file again for them (at exit)
    if (fstatSync(current.fd).nlink === 0) return;
    const { db, statements } = current;
    try {
      db.transaction(() => {
        for (const [key, used] of uses) statements.touch.run(used, key, used);
      })();
    } catch (error) {
      throw this.fail('Cannot record uses in', error);
    }
  }

  /** A use not recorded only makes an entry look older to eviction: never worth failing a call. */
  private flushQuietly(): void {
    try {
      this.flush();
    } catch {
      // see above
    }
  }

  async close(): Promise<void> {
    this.flushQuietly();
    open.delete(this);
    if (this.current !== null) this.release(this.current);
  }
}

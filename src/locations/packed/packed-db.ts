import type { SqliteDatabase, SqliteStatement } from '../../sqlite.js';
import { type EmbeddedDatabaseOptions, openEmbeddedDatabase } from '../../storage/embedded/database.js';

/** The file of a packed store inside its folder (with SQLite's `-wal` and `-shm` beside it). */
export const PACKED_FILE = 'packed.db';

/**
 * 16 KiB pages: a leaf holds fifteen 1 KiB rows or three 4 KiB rows whole (a row of up to
 * page size - 35 bytes stays in its leaf), so the file stays close to the bytes stored; larger
 * pages would make every commit write more.
 */
const PAGE_SIZE = 16384;

/** The statements a packed store runs, prepared once per connection. */
export interface PackedStatements {
  /** data, used (ms), labels (JSON or null) of a key. */
  get: SqliteStatement;
  /** data, used (ms) of a key: what a read of the bytes needs. */
  getBytes: SqliteStatement;
  labelsOf: SqliteStatement;
  /** A new value, or an existing key's bytes rewritten (that heals a damaged copy) and marked as used; keeps its labels. */
  put: SqliteStatement;
  /** The same, with the labels given (already merged with the stored ones). */
  putLabelled: SqliteStatement;
  touch: SqliteStatement;
  /** Moves last use forward only (marks from reads may arrive after a newer touch). */
  mark: SqliteStatement;
  remove: SqliteStatement;
  /** A page of contents after a row id: id, key, size, used, labels. */
  page: SqliteStatement;
}

/** Keys `readBatch` looks up in one read transaction. */
export const MANY_KEYS = 64;

/**
 * Checkpoints (each syncs the files, even with NORMAL) run in a worker thread every 16 MiB of
 * values committed (about 32 MiB of WAL with the key index's pages); the connection's own
 * automatic checkpoint, at 8,192 pages (128 MiB), only bounds the WAL if the worker falls behind.
 * With SQLite's 1,000 pages on the main thread, that sync took about half a commit's time.
 */
export const PACKED_CHECKPOINT_BYTES = 16 * 1024 * 1024;
const WAL_PAGES = 8192;

/** How a packed store's file is opened (database.ts of the embedded store): WAL, FULL with fsync, NORMAL without. */
export function packedDatabaseOptions(fsync: boolean, lockTimeout: number): EmbeddedDatabaseOptions {
  return { fsync, lockTimeout, pageSize: PAGE_SIZE, cacheKiB: 32768, walAutocheckpoint: WAL_PAGES };
}

/**
 * One table: rows are appended in row id order (leaves fill up), the key (32 bytes) is a unique
 * index of its own, the value is the last column.
 */
export function createPackedTables(db: SqliteDatabase): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS packed_values (
      id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, size INTEGER NOT NULL,
      used INTEGER NOT NULL, labels TEXT, data BLOB NOT NULL);`);
}

/** Opens a packed store's database alone (what Packed opens, for tools and the bench's bare loop). */
export function openPackedDatabase(path: string, fsync: boolean, lockTimeout: number): SqliteDatabase {
  return openEmbeddedDatabase(path, packedDatabaseOptions(fsync, lockTimeout), createPackedTables);
}

export function preparePacked(db: SqliteDatabase): PackedStatements {
  const upsert = (labels: string) =>
    db.prepare(`INSERT INTO packed_values (key, size, used, labels, data) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(key) DO UPDATE SET size = excluded.size, used = excluded.used, data = excluded.data, labels = ${labels}`);
  return {
    get: db.prepare('SELECT data, used, labels FROM packed_values WHERE key = ?').raw(),
    getBytes: db.prepare('SELECT data, used FROM packed_values WHERE key = ?').raw(),
    labelsOf: db.prepare('SELECT labels FROM packed_values WHERE key = ?').pluck(),
    put: upsert('packed_values.labels'),
    putLabelled: upsert('excluded.labels'),
    touch: db.prepare('UPDATE packed_values SET used = ? WHERE key = ?'),
    mark: db.prepare('UPDATE packed_values SET used = ?1 WHERE key = ?2 AND used < ?1'),
    remove: db.prepare('DELETE FROM packed_values WHERE key = ?'),
    page: db.prepare('SELECT id, key, size, used, labels FROM packed_values WHERE id > ? ORDER BY id LIMIT ?').raw(),
  };
}

/** A row's labels column (JSON text) as labels; null when there are none or it is not a list. */
export function parseLabels(text: string | null | undefined): string[] | null {
  if (text === null || text === undefined) return null;
  try {
    const labels: unknown = JSON.parse(text);
    return Array.isArray(labels) ? labels.filter((label): label is string => typeof label === 'string') : null;
  } catch {
    return null;
  }
}

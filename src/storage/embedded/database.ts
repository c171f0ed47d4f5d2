import { openSqlite, type SqliteDatabase } from '../../sqlite.js';

export interface EmbeddedDatabaseOptions {
  /** FULL: each commit's WAL is fsynced (survives a power cut); NORMAL: a commit is in the OS when it returns (survives `kill -9`). */
  fsync: boolean;
  /** Milliseconds a commit waits for another process's write lock. */
  lockTimeout: number;
  /** Page cache of the connection, in KiB. */
  cacheKiB: number;
  /** Page size of a new file (bytes); an existing file keeps its own. */
  pageSize?: number;
  /** WAL pages before an automatic checkpoint (each syncs the files, even with NORMAL). */
  walAutocheckpoint?: number;
}

/**
 * Opens an embedded store's SQLite file: WAL (readers never wait for the writer, and several
 * processes of one machine share it), `synchronous` FULL or NORMAL, then `createTables` (which
 * may convert a file written with an older layout). The connection is closed again on failure.
 */
export function openEmbeddedDatabase(path: string, options: EmbeddedDatabaseOptions, createTables: (db: SqliteDatabase) => void): SqliteDatabase {
  const db = openSqlite(path, { timeout: options.lockTimeout });
  try {
    // page_size only applies to a database that has no table yet (and before WAL is chosen)
    if (options.pageSize !== undefined) db.pragma(`page_size = ${options.pageSize}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.fsync ? 'FULL' : 'NORMAL'}`);
    if (options.walAutocheckpoint !== undefined) db.pragma(`wal_autocheckpoint = ${options.walAutocheckpoint}`);
    db.pragma(`cache_size = -${options.cacheKiB}`);
    createTables(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** SQLITE_CORRUPT (11) or SQLITE_NOTADB (26), from either binding. */
export function isCorruptDatabase(error: unknown): boolean {
  const { code, errcode } = (error ?? {}) as { code?: unknown; errcode?: unknown };
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') return true;
  if (typeof errcode === 'number') return (errcode & 0xff) === 11 || (errcode & 0xff) === 26;
  return false;
}

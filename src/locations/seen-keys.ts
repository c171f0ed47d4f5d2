/**
 * The keys a listing over several locations has yielded already, so that each key is yielded once,
 * in memory that does not grow with their number: up to `inMemory` keys in a Set; past that, every
 * key goes into a temporary SQLite database (an anonymous one, a file SQLite removes itself, with a
 * small page cache). `cairn ls` of a Levels or Fanout of a million keys needs this. On Node 20
 * that database is better-sqlite3 (an optional dependency): without it the Set keeps growing.
 *
 * Why not ask the other locations (`has`) instead: that is a request per key and location on a
 * remote store, and a key written meanwhile would be listed by neither location or by both; the
 * record of what was yielded answers exactly what the Set did, whatever the locations are.
 */
import { MissingDependencyError } from '../errors.js';
import type { Key } from '../key.js';
import { openSqlite, type SqliteDatabase, type SqliteStatement } from '../sqlite.js';

const IN_MEMORY = 50_000;

export class SeenKeys {
  private memory: Set<Key> | null = new Set();
  private db: SqliteDatabase | null = null;
  private insert: SqliteStatement | null = null;
  /** The most keys the Set held at once (the bound, for tests). */
  peakInMemory = 0;
  /** True once the keys went into the temporary database. */
  spilled = false;

  constructor(private inMemory = IN_MEMORY) {}

  /** For each of `keys`, whether it is seen here for the first time (a key twice in `keys`: only its first); all are seen from now on. */
  firstSeen(keys: readonly Key[]): boolean[] {
    if (this.memory !== null && this.memory.size + keys.length > this.inMemory) this.spill();
    if (this.memory !== null) {
      const memory = this.memory;
      const fresh = keys.map((key) => {
        if (memory.has(key)) return false;
        memory.add(key);
        return true;
      });
      this.peakInMemory = Math.max(this.peakInMemory, memory.size);
      return fresh;
    }
    const insert = this.insert!;
    // a key is 64 lowercase hex digits: its 32 bytes stand for it one to one
    return this.db!.transaction(() => keys.map((key) => Number(insert.run(Buffer.from(key, 'hex')).changes) === 1))();
  }

  close(): void {
    this.memory = null;
    this.db?.close();
    this.db = null;
  }

  private spill(): void {
    let db: SqliteDatabase;
    try {
      db = openSqlite('');
    } catch (error) {
      // Node 20 without the optional better-sqlite3: the listing stays right, in a Set that grows
      if (!(error instanceof MissingDependencyError)) throw error;
      this.inMemory = Infinity;
      return;
    }
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -8192'); // 8 MiB of pages in memory, the rest in the temporary file
    db.exec('CREATE TABLE seen (key BLOB PRIMARY KEY) WITHOUT ROWID');
    this.db = db;
    this.insert = db.prepare('INSERT OR IGNORE INTO seen (key) VALUES (?)');
    const keys = [...this.memory!];
    this.memory = null;
    this.spilled = true;
    db.transaction(() => {
      for (const key of keys) this.insert!.run(Buffer.from(key, 'hex'));
    })();
  }
}

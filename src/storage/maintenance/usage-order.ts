/**
 * The values of a store in order of last use, oldest first, in memory that does not grow with
 * their number: up to IN_MEMORY entries are sorted in an array; past that they go into a
 * temporary SQLite database (an anonymous one: a file SQLite removes itself, with a small page
 * cache), read back a page at a time through an index. gc over a million keys needs this.
 */
import type { Eviction } from '../../locations/admin.js';
import { openSqlite, type SqliteDatabase, type SqliteStatement } from '../../sqlite.js';

const IN_MEMORY = 20_000;
const INSERT_BATCH = 4096;
const PAGE = 2048;

export class UsageOrder {
  count = 0;
  bytes = 0;
  private memory: Eviction[] | null = [];
  private db: SqliteDatabase | null = null;
  private insert: SqliteStatement | null = null;
  private waiting: Eviction[] = [];

  constructor(private readonly inMemory = IN_MEMORY) {}

  add(entry: Eviction): void {
    this.count++;
    this.bytes += entry.size;
    if (this.memory !== null) {
      this.memory.push(entry);
      if (this.memory.length > this.inMemory) this.spill();
      return;
    }
    this.waiting.push(entry);
    if (this.waiting.length >= INSERT_BATCH) this.flush();
  }

  /** Every entry added, oldest last use first (ties: by key). */
  async *oldestFirst(): AsyncIterable<Eviction> {
    if (this.memory !== null) {
      this.memory.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime() || (a.key < b.key ? -1 : 1));
      yield* this.memory;
      return;
    }
    this.flush();
    const db = this.db!;
    db.exec('CREATE INDEX IF NOT EXISTS by_use ON entries (used, key)');
    const page = db.prepare('SELECT key, size, used FROM entries WHERE (used, key) > (?, ?) ORDER BY used, key LIMIT ?').raw();
    let after: [number, Buffer] = [Number.MIN_SAFE_INTEGER, Buffer.alloc(0)];
    for (;;) {
      const rows = page.all(after[0], after[1], PAGE) as [Buffer, number, number][];
      for (const [key, size, used] of rows) yield { key: key.toString('hex'), size, lastUsed: new Date(used) };
      if (rows.length < PAGE) return;
      const last = rows[rows.length - 1]!;
      after = [last[2], last[0]];
    }
  }

  close(): void {
    this.memory = null;
    this.db?.close();
    this.db = null;
  }

  private spill(): void {
    const db = openSqlite('');
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -8192'); // 8 MiB of pages in memory, the rest in the temporary file
    db.exec('CREATE TABLE entries (key BLOB NOT NULL, size INTEGER NOT NULL, used INTEGER NOT NULL)');
    this.db = db;
    this.insert = db.prepare('INSERT INTO entries (key, size, used) VALUES (?, ?, ?)');
    this.waiting = this.memory!;
    this.memory = null;
    this.flush();
  }

  private flush(): void {
    if (this.waiting.length === 0) return;
    const rows = this.waiting;
    this.waiting = [];
    this.db!.transaction(() => {
      for (const entry of rows) this.insert!.run(Buffer.from(entry.key, 'hex'), entry.size, entry.lastUsed.getTime());
    })();
  }
}

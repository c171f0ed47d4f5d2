/**
 * A Packed store's administration view (admin.ts), in SQL on the store's own connection: a
 * listing a page at a time, hashes of the stored bytes without marking them used, quarantine (the
 * bad bytes to a file in `quarantine/`, the row removed), and gc deletes that are conditional on
 * the last use gc saw, so a value written or touched meanwhile (by any process) stays.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestBytes } from '../../digest.js';
import type { Key } from '../../key.js';
import type { SqliteDatabase, SqliteStatement } from '../../sqlite.js';
import type { AdminUsage, Collection, CollectOptions, Eviction, LakeAdmin, StoredItem, TidyReport } from '../admin.js';
import { folderUsage } from '../folder-usage.js';
import { PACKED_FILE, parseLabels } from './packed-db.js';
import type { Packed } from './packed.js';

/** What the store lends its admin view: its connection, and a way to commit what it holds in memory. */
export interface PackedInternals {
  db: SqliteDatabase;
  /** Commits the writes and read marks waiting in this process (journaled puts included). */
  flush(): void;
}

const PAGE = 1024;
/** gc compacts the file when at least this fraction of its pages are free. */
const VACUUM_FREE = 0.25;

export class PackedAdmin implements LakeAdmin {
  readonly folder: string;
  readonly sideFolder: string;
  private readonly page: SqliteStatement;
  private readonly data: SqliteStatement;
  private readonly sizeOf: SqliteStatement;
  private readonly labels: SqliteStatement;

  constructor(
    readonly location: Packed,
    private readonly internals: PackedInternals,
  ) {
    this.folder = location.dir;
    this.sideFolder = location.dir;
    const { db } = internals;
    this.page = db.prepare('SELECT id, key, size, used FROM packed_values WHERE id > ? ORDER BY id LIMIT ?').raw();
    this.data = db.prepare('SELECT data FROM packed_values WHERE key = ?').pluck();
    this.sizeOf = db.prepare('SELECT size FROM packed_values WHERE key = ?').pluck();
    this.labels = db.prepare('SELECT labels FROM packed_values WHERE key = ?').pluck();
  }

  async *items(): AsyncIterable<StoredItem> {
    this.internals.flush();
    let after = 0;
    for (;;) {
      // a page at a time: no statement stays open between pages (writers go on meanwhile)
      const rows = this.page.all(after, PAGE) as [number, Buffer, number, number][];
      for (const [id, key, size, used] of rows) {
        after = id;
        yield { key: key.toString('hex'), size, lastUsed: new Date(used) };
      }
      if (rows.length < PAGE) return;
    }
  }

  async usage(): Promise<AdminUsage> {
    return { quarantine: await folderUsage(join(this.folder, 'quarantine')), fileBytes: this.fileBytes() };
  }

  async hashStored(key: Key): Promise<string | null> {
    const data = this.data.get(Buffer.from(key, 'hex')) as Buffer | undefined;
    return data === undefined ? null : digestBytes(data);
  }

  async readStored(key: Key): Promise<Buffer | null> {
    return (this.data.get(Buffer.from(key, 'hex')) as Buffer | undefined) ?? null;
  }

  /** Writes the stored bytes to `quarantine/<key>.<time>.<random>` in the store's folder, then removes the row if it still holds them. */
  async quarantine(key: Key): Promise<string | null> {
    this.internals.flush();
    const id = Buffer.from(key, 'hex');
    const data = this.data.get(id) as Buffer | undefined;
    if (data === undefined) return null;
    const dir = join(this.folder, 'quarantine');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${key}.${Date.now()}.${randomBytes(3).toString('hex')}`);
    writeFileSync(file, data, { mode: 0o444 });
    // rewritten with the right bytes meanwhile: that row stays
    this.internals.db.prepare('DELETE FROM packed_values WHERE key = ? AND data = ?').run(id, data);
    return file;
  }

  async labelsOf(key: Key): Promise<string[] | null> {
    return parseLabels(this.labels.get(Buffer.from(key, 'hex')) as string | null | undefined);
  }

  async addLabels(key: Key, labels: readonly string[]): Promise<void> {
    if (labels.length === 0) return;
    const id = Buffer.from(key, 'hex');
    const { db } = this.internals;
    db.transaction(() => {
      const stored = this.labels.get(id) as string | null | undefined;
      if (stored === undefined) return;
      const merged = JSON.stringify([...new Set([...(parseLabels(stored) ?? []), ...labels])]);
      db.prepare('UPDATE packed_values SET labels = ? WHERE key = ?').run(merged, id);
    }).immediate();
  }

  async holds(key: Key, size: number): Promise<boolean> {
    return this.sizeOf.get(Buffer.from(key, 'hex')) === size;
  }

  filePath(): null {
    return null;
  }

  threadOpen(): null {
    return null;
  }

  async collect(options: CollectOptions): Promise<Collection> {
    return new PackedCollection(this, this.internals, options);
  }

  /** The database file and its write-ahead log. */
  fileBytes(): number {
    const file = join(this.folder, PACKED_FILE);
    return (statSync(file, { throwIfNoEntry: false })?.size ?? 0) + (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0);
  }
}

class PackedCollection implements Collection {
  private readonly remove: SqliteStatement;
  private removedAny = false;

  constructor(
    private readonly admin: PackedAdmin,
    private readonly internals: PackedInternals,
    private readonly options: CollectOptions,
  ) {
    // only the row gc saw: a write or touch since (it moves `used`) keeps the value
    this.remove = internals.db.prepare('DELETE FROM packed_values WHERE key = ? AND used = ?');
  }

  async evict(batch: readonly Eviction[]): Promise<{ removed: Eviction[]; restored: Eviction[] }> {
    if (this.options.dryRun) return { removed: [...batch], restored: [] };
    // this process's waiting writes and read marks first: they may move `used`
    this.internals.flush();
    const removed: Eviction[] = [];
    const restored: Eviction[] = [];
    this.internals.db.transaction(() => {
      for (const entry of batch) {
        const gone = Number(this.remove.run(Buffer.from(entry.key, 'hex'), entry.lastUsed.getTime()).changes) > 0;
        (gone ? removed : restored).push(entry);
      }
    }).immediate();
    if (removed.length > 0) this.removedAny = true;
    return { removed, restored };
  }

  /** Deleting frees pages inside the file: when a quarter or more are free, VACUUM gives them back to the filesystem. */
  async tidy(): Promise<TidyReport> {
    const { db } = this.internals;
    const free = Number(db.pragma('freelist_count', { simple: true }));
    const pages = Number(db.pragma('page_count', { simple: true }));
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    if (this.options.dryRun) return { tempFiles: [], reclaimedBytes: free >= pages * VACUUM_FREE ? free * pageSize : 0 };
    if (!this.removedAny && free < pages * VACUUM_FREE) return { tempFiles: [], reclaimedBytes: 0 };
    const before = this.admin.fileBytes();
    if (free >= pages * VACUUM_FREE && free > 0) db.exec('VACUUM');
    // the log holds the rewritten pages: cut it back (never waiting for other processes' readers)
    db.pragma('wal_checkpoint(TRUNCATE)');
    return { tempFiles: [], reclaimedBytes: Math.max(0, before - this.admin.fileBytes()) };
  }

  async finish(): Promise<void> {}
}


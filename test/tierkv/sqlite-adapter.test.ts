import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqlite, sqliteBackend, type SqliteDatabase } from '../../src/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'tierkv-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const major = Number(process.versions.node.split('.')[0]);

describe(`the SQLite adapter on Node ${process.versions.node}`, () => {
  it('uses node:sqlite from Node 24, better-sqlite3 on Node 20', () => {
    const backend = sqliteBackend();
    if (major <= 21) expect(backend).toBe('better-sqlite3');
    else if (major >= 24) expect(backend).toBe('node:sqlite');
    // Node 22 and 23: node:sqlite once it has rows as arrays and isTransaction (recent releases)
    else expect(['node:sqlite', 'better-sqlite3']).toContain(backend);
    process.stdout.write(`sqlite adapter: Node ${process.versions.node} uses ${backend}\n`);
  });

  let db: SqliteDatabase;
  let count = 0;
  beforeEach(() => {
    db = openSqlite(join(dir, `t${count++}.db`), { timeout: 1000 });
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, data BLOB)');
  });
  afterEach(() => {
    db.close();
  });

  it('runs statements and returns rows as objects, arrays (raw) or first columns (pluck)', () => {
    const insert = db.prepare('INSERT INTO t (id, name, data) VALUES (?, ?, ?)');
    expect(insert.run(1, 'one', null).changes).toBe(1);
    insert.run(2, 'two', null);
    const rows = db.prepare('SELECT id, name FROM t ORDER BY id');
    expect(rows.all().map((row) => ({ ...(row as object) }))).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    expect({ ...(rows.get() as object) }).toEqual({ id: 1, name: 'one' });
    expect(rows.raw().all()).toEqual([
      [1, 'one'],
      [2, 'two'],
    ]);
    expect(rows.raw().get()).toEqual([1, 'one']);
    expect(rows.pluck().all()).toEqual([1, 2]); // pluck turns raw off
    expect(rows.get()).toBe(1);
    expect(rows.pluck(false).get()).toMatchObject({ id: 1, name: 'one' });
    expect(db.prepare('SELECT total(id) FROM t').pluck().get()).toBe(3);
  });

  it('gives undefined when there is no row', () => {
    const one = db.prepare('SELECT name, data FROM t WHERE id = ?');
    expect(one.get(7)).toBeUndefined();
    expect(one.raw().get(7)).toBeUndefined();
    expect(one.pluck().get(7)).toBeUndefined();
    expect(one.all(7)).toEqual([]);
  });

  it('stores BLOBs and gives them back as Buffer, in every row shape', () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    db.prepare('INSERT INTO t (id, name, data) VALUES (?, ?, ?)').run(1, 'b', bytes);
    const object = db.prepare('SELECT data FROM t').get() as { data: unknown };
    const raw = db.prepare('SELECT name, data FROM t').raw().get() as [string, unknown];
    const plucked = db.prepare('SELECT data FROM t').pluck().all()[0];
    for (const value of [object.data, raw[1], plucked]) {
      expect(Buffer.isBuffer(value)).toBe(true);
      expect((value as Buffer).equals(bytes)).toBe(true);
    }
    expect(db.prepare('SELECT length(data) FROM t').pluck().get()).toBe(bytes.length);
  });

  it('commits a transaction, and rolls it back when its function throws', () => {
    const insert = db.prepare('INSERT INTO t (id, name) VALUES (?, ?)');
    const names = db.prepare('SELECT name FROM t ORDER BY id').pluck();
    const add = db.transaction((id: number, name: string) => {
      insert.run(id, name);
      return id * 10;
    });
    expect(add(1, 'a')).toBe(10);
    expect(add.immediate(2, 'b')).toBe(20);
    expect(names.all()).toEqual(['a', 'b']);

    const failing = db.transaction(() => {
      insert.run(3, 'c');
      throw new Error('no');
    });
    expect(() => failing.immediate()).toThrow('no');
    expect(() => failing()).toThrow('no');
    expect(names.all()).toEqual(['a', 'b']);
    // a failed statement inside rolls back the whole transaction too
    expect(() =>
      db.transaction(() => {
        insert.run(4, 'd');
        insert.run(4, 'duplicate');
      }).deferred(),
    ).toThrow();
    expect(names.all()).toEqual(['a', 'b']);
    // and the connection is usable again afterwards (no transaction left open)
    add(5, 'e');
    expect(names.all()).toEqual(['a', 'b', 'e']);
  });

  it('nests transactions as savepoints', () => {
    const insert = db.prepare('INSERT INTO t (id, name) VALUES (?, ?)');
    const inner = db.transaction((id: number) => {
      insert.run(id, 'inner');
      if (id < 0) throw new Error('inner fails');
    });
    db.transaction(() => {
      insert.run(1, 'outer');
      inner(2);
      expect(() => inner(-3)).toThrow('inner fails');
    }).immediate();
    expect(db.prepare('SELECT id FROM t ORDER BY id').pluck().all()).toEqual([1, 2]);
  });

  it('runs pragmas, simple or not', () => {
    expect(db.pragma('journal_mode = WAL', { simple: true })).toBe('wal');
    expect(db.pragma('journal_mode')).toEqual([expect.objectContaining({ journal_mode: 'wal' })]);
    db.pragma('cache_size = -2048');
    expect(db.pragma('cache_size', { simple: true })).toBe(-2048);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(1000);
    expect(typeof db.pragma('data_version', { simple: true })).toBe('number');
  });

  it('reports whether it is open, and closes once', () => {
    const other = openSqlite(join(dir, 'close.db'));
    expect(other.open).toBe(true);
    expect(other.pragma('busy_timeout', { simple: true })).toBe(5000);
    other.close();
    expect(other.open).toBe(false);
    expect(() => other.close()).not.toThrow();
  });
});

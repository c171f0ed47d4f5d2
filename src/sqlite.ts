/**
 * The part of a SQLite binding that a filesystem tier uses, with two backends:
 *
 * - `node:sqlite` (DatabaseSync), built into Node 22 and later, where the running Node has it
 *   unflagged and with the API used here (`setReturnArrays`, `isTransaction`);
 * - better-sqlite3 otherwise (Node 20). better-sqlite3 ≤ 12 aborts the process on Node 24 when a
 *   statement is destroyed (its ObjectWrap cleanup hook finds no environment), and 13 crashes on
 *   Node 20, so neither version serves both.
 *
 * The surface is better-sqlite3's, as far as a tier needs it: `prepare` with `run`/`get`/`all`,
 * `pluck()` and `raw()`; `exec`; `pragma(text, { simple })`; `transaction(fn)` (with
 * `.deferred`/`.immediate`/`.exclusive`); `close` and `open`; the `timeout` option. Both backends
 * give BLOBs back as Buffer and `undefined` for no row. Object rows from `node:sqlite` have no
 * prototype (property access, spread and JSON behave the same).
 *
 * Nothing is loaded until the first database opens: importing cairn loads neither backend.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { requireOptional } from './optional.js';

export type SqliteBackend = 'node:sqlite' | 'better-sqlite3';

export interface SqliteRunResult {
  changes: number | bigint;
  lastInsertRowid: number | bigint;
}

export interface SqliteStatement {
  run(...params: unknown[]): SqliteRunResult;
  /** The first row, or `undefined` when there is none. */
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  /** Rows are their first column's value from now on (`pluck(false)` undoes it). */
  pluck(toggle?: boolean): this;
  /** Rows are arrays of column values from now on (`raw(false)` undoes it). */
  raw(toggle?: boolean): this;
}

type Arguments<F> = F extends (...args: infer A) => unknown ? A : never;

export interface SqliteTransaction<F extends (...args: never[]) => unknown> {
  (...args: Arguments<F>): ReturnType<F>;
  deferred(...args: Arguments<F>): ReturnType<F>;
  immediate(...args: Arguments<F>): ReturnType<F>;
  exclusive(...args: Arguments<F>): ReturnType<F>;
}

export interface SqliteDatabase {
  readonly open: boolean;
  prepare(sql: string): SqliteStatement;
  exec(sql: string): this;
  /** `PRAGMA <text>`: every row, or with `simple` the first column of the first row. */
  pragma(text: string, options?: { simple?: boolean }): unknown;
  /** A function that runs `fn` in BEGIN … COMMIT (ROLLBACK when it throws); a savepoint when nested. */
  transaction<F extends (...args: never[]) => unknown>(fn: F): SqliteTransaction<F>;
  close(): this;
}

export interface SqliteOptions {
  /** Milliseconds to wait for a lock held by another connection (better-sqlite3's default: 5000). */
  timeout?: number;
}

// --- node:sqlite, typed here (the project's @types/node is Node 20's, which has no node:sqlite) --

interface NodeStatement {
  run(...params: unknown[]): SqliteRunResult;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  setReturnArrays(enabled: boolean): void;
}

interface NodeDatabase {
  readonly isTransaction: boolean;
  prepare(sql: string): NodeStatement;
  exec(sql: string): void;
  close(): void;
}

interface NodeSqliteModule {
  DatabaseSync: new (path: string, options?: { timeout?: number }) => NodeDatabase;
  StatementSync: { prototype: Partial<NodeStatement> };
}

type BetterSqliteConstructor = typeof BetterSqlite3;

let chosen: { backend: 'node:sqlite'; module: NodeSqliteModule } | { backend: 'better-sqlite3'; module: BetterSqliteConstructor } | null = null;

/** `node:sqlite` when this Node has it unflagged (and with `setReturnArrays`), else undefined. */
function loadNodeSqlite(): NodeSqliteModule | undefined {
  // Node 20 has getBuiltinModule (from 20.16) but no node:sqlite: it answers undefined
  const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (typeof getBuiltin !== 'function') return undefined;
  // Node 22 warns once per process that SQLite is experimental when node:sqlite is first loaded;
  // a library should not print that into its users' stderr, so that one warning is dropped here,
  // and every other warning passes through unchanged
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]): void {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    const name = typeof warning === 'string' ? type : warning.name;
    const message = typeof warning === 'string' ? warning : warning.message;
    if (name === 'ExperimentalWarning' && /\bSQLite\b/.test(message)) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  let module: NodeSqliteModule | undefined;
  try {
    module = getBuiltin.call(process, 'node:sqlite') as NodeSqliteModule | undefined;
  } catch {
    module = undefined; // behind a flag on this Node
  } finally {
    process.emitWarning = emitWarning;
  }
  // an early node:sqlite (early Node 22 releases) has neither rows as arrays nor `isTransaction`:
  // better-sqlite3 serves those Nodes
  if (typeof module?.DatabaseSync !== 'function' || typeof module.StatementSync?.prototype?.setReturnArrays !== 'function') return undefined;
  const probe = new module.DatabaseSync(':memory:'); // isTransaction is a property of each connection
  try {
    return 'isTransaction' in probe ? module : undefined;
  } finally {
    probe.close();
  }
}

function choose(): NonNullable<typeof chosen> {
  if (chosen) return chosen;
  const nodeSqlite = loadNodeSqlite();
  chosen = nodeSqlite
    ? { backend: 'node:sqlite', module: nodeSqlite }
    : // better-sqlite3 is a native addon: loaded when a database opens, not when cairn is imported
      { backend: 'better-sqlite3', module: requireOptional<BetterSqliteConstructor>('better-sqlite3', 'SQLite on Node 20 (TierKV filesystem tiers, smartCache folders)') };
  return chosen;
}

/** The backend that `openSqlite` uses on this Node (choosing it loads it). */
export function sqliteBackend(): SqliteBackend {
  return choose().backend;
}

/** Opens (creating it if needed) the SQLite database at `path`. */
export function openSqlite(path: string, options: SqliteOptions = {}): SqliteDatabase {
  const timeout = options.timeout ?? 5000;
  const backend = choose();
  if (backend.backend === 'better-sqlite3') return new backend.module(path, { timeout }) satisfies SqliteDatabase;
  return new NodeSqliteDatabase(new backend.module.DatabaseSync(path, { timeout }));
}

// --- node:sqlite behind better-sqlite3's surface --------------------------------------------------

/** node:sqlite gives BLOBs as Uint8Array: the same bytes as a Buffer (no copy). */
function asBuffer(value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
}

function fixRow(row: unknown): unknown {
  if (row === undefined || row === null) return row;
  if (Array.isArray(row)) {
    for (let i = 0; i < row.length; i++) if (row[i] instanceof Uint8Array) row[i] = asBuffer(row[i]);
  } else {
    const record = row as Record<string, unknown>;
    for (const name in record) if (record[name] instanceof Uint8Array) record[name] = asBuffer(record[name]);
  }
  return row;
}

class NodeSqliteStatement implements SqliteStatement {
  private mode: 'object' | 'pluck' | 'raw' = 'object';

  constructor(private readonly statement: NodeStatement) {}

  run(...params: unknown[]): SqliteRunResult {
    return this.statement.run(...params);
  }

  get(...params: unknown[]): unknown {
    const row = this.statement.get(...params);
    if (row === undefined) return undefined;
    return this.mode === 'pluck' ? asBuffer((row as unknown[])[0]) : fixRow(row);
  }

  all(...params: unknown[]): unknown[] {
    const rows = this.statement.all(...params);
    if (this.mode === 'pluck') return rows.map((row) => asBuffer((row as unknown[])[0]));
    for (const row of rows) fixRow(row);
    return rows;
  }

  pluck(toggle = true): this {
    return this.setMode('pluck', toggle);
  }

  raw(toggle = true): this {
    return this.setMode('raw', toggle);
  }

  /** As in better-sqlite3, pluck and raw exclude each other: turning one on turns the other off. */
  private setMode(mode: 'pluck' | 'raw', toggle: boolean): this {
    if (toggle) this.mode = mode;
    else if (this.mode === mode) this.mode = 'object';
    this.statement.setReturnArrays(this.mode !== 'object');
    return this;
  }
}

class NodeSqliteDatabase implements SqliteDatabase {
  private isOpen = true;
  private savepoints = 0;

  constructor(private readonly db: NodeDatabase) {}

  get open(): boolean {
    return this.isOpen;
  }

  prepare(sql: string): SqliteStatement {
    return new NodeSqliteStatement(this.db.prepare(sql));
  }

  exec(sql: string): this {
    this.db.exec(sql);
    return this;
  }

  pragma(text: string, options: { simple?: boolean } = {}): unknown {
    const statement = this.prepare(`PRAGMA ${text}`);
    return options.simple ? statement.pluck().get() : statement.all();
  }

  transaction<F extends (...args: never[]) => unknown>(fn: F): SqliteTransaction<F> {
    const run =
      (begin: string) =>
      (...args: Arguments<F>): ReturnType<F> => {
        // nested in an open transaction: a savepoint, as better-sqlite3 does
        const nested = this.db.isTransaction;
        const savepoint = `cairn_tx_${++this.savepoints}`;
        const [start, commit, undo] = nested
          ? [`SAVEPOINT ${savepoint}`, `RELEASE ${savepoint}`, `ROLLBACK TO ${savepoint}`]
          : [begin, 'COMMIT', 'ROLLBACK'];
        this.db.exec(start);
        try {
          const result = fn(...args) as ReturnType<F>;
          this.db.exec(commit);
          return result;
        } catch (error) {
          // some errors (a full disk, an interrupt) have already rolled the transaction back
          if (this.db.isTransaction) {
            this.db.exec(undo);
            if (nested) this.db.exec(commit);
          }
          throw error;
        } finally {
          this.savepoints--;
        }
      };
    return Object.assign(run('BEGIN'), {
      deferred: run('BEGIN DEFERRED'),
      immediate: run('BEGIN IMMEDIATE'),
      exclusive: run('BEGIN EXCLUSIVE'),
    });
  }

  close(): this {
    if (this.isOpen) this.db.close();
    this.isOpen = false;
    return this;
  }
}

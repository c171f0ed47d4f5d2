import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync, writevSync } from 'node:fs';
import { join } from 'node:path';
import { digestBytes, type Key } from '../key.js';
import { processAlive } from '../process-alive.js';

/** A put kept in a journal until the database holds it. */
export interface JournalPut {
  key: Key;
  labels: readonly string[] | null;
  bytes: Buffer;
}

/** `<pid base 36>.<random>.log`: the pid tells whether its writer still runs. */
const NAME = /^([0-9a-z]+)\.[0-9a-f]+\.log$/;
const HEADER = 8 + 32;
/** Journals open in this process (a dead journal with this process's pid is a previous process's that had the same pid). */
const OPEN = new Set<string>();

/**
 * A packed store's write-ahead journal, one file per process (when fsync is off): each put is
 * appended with one write before it is acknowledged, so that it survives `kill -9` from then on
 * (the OS has it) without a database commit per put; the puts reach SQLite in batches, and the
 * file is emptied after each commit. A killed process's journal is replayed by the next process
 * that opens the store, then removed.
 *
 * A record is `[u32 value length][u32 labels length][32-byte key][labels JSON][value]`. The key
 * is the sha256 of the value, so a record cut short or torn by the kill is recognised and dropped
 * (its put was never acknowledged).
 */
export class PackedJournal {
  private fd: number | null = null;
  readonly path: string;

  constructor(private readonly dir: string) {
    this.path = join(dir, `${process.pid.toString(36)}.${randomBytes(4).toString('hex')}.log`);
  }

  append(put: JournalPut): void {
    if (this.fd === null) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.path, 'a', 0o644);
      OPEN.add(this.path);
    }
    const labels = put.labels === null ? '' : JSON.stringify(put.labels);
    const labelsLength = Buffer.byteLength(labels);
    const header = Buffer.allocUnsafe(HEADER + labelsLength);
    header.writeUInt32LE(put.bytes.length, 0);
    header.writeUInt32LE(labelsLength, 4);
    header.write(put.key, 8, 'hex');
    header.write(labels, HEADER);
    const written = writevSync(this.fd, [header, put.bytes]);
    const total = header.length + put.bytes.length;
    if (written < total) {
      // a short write (rare on a local file): write the rest so that the record is whole
      const rest = Buffer.concat([header, put.bytes]).subarray(written);
      for (let offset = 0; offset < rest.length; ) offset += writeSync(this.fd, rest, offset);
    }
  }

  /** Everything appended is in the database: the file starts again empty. */
  clear(): void {
    if (this.fd !== null) ftruncateSync(this.fd, 0);
  }

  /** Closes and removes the file (only when everything appended is in the database). */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    rmSync(this.path, { force: true });
    OPEN.delete(this.path);
  }

  /** Closes the file but keeps it for a replay (a commit failed). */
  abandon(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    OPEN.delete(this.path);
  }
}

/** Journal files in `dir` whose writer no longer runs. */
export function deadJournals(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      const match = NAME.exec(name);
      if (match === null || OPEN.has(join(dir, name))) return false;
      const pid = parseInt(match[1]!, 36);
      return pid === process.pid || !processAlive(pid);
    })
    .map((name) => join(dir, name));
}

/** The whole, intact records of a journal file, in order; [] when it is gone. */
export function readJournal(path: string): JournalPut[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return [];
  }
  const puts: JournalPut[] = [];
  for (let at = 0; at + HEADER <= bytes.length; ) {
    const valueLength = bytes.readUInt32LE(at);
    const labelsLength = bytes.readUInt32LE(at + 4);
    const end = at + HEADER + labelsLength + valueLength;
    if (end > bytes.length) break;
    const key = bytes.toString('hex', at + 8, at + HEADER);
    const value = Buffer.from(bytes.subarray(at + HEADER + labelsLength, end));
    // a torn record: nothing after it was acknowledged either
    if (digestBytes(value) !== key) break;
    let labels: string[] | null = null;
    if (labelsLength > 0) {
      try {
        labels = JSON.parse(bytes.toString('utf8', at + HEADER, at + HEADER + labelsLength)) as string[];
      } catch {
        break;
      }
    }
    puts.push({ key, labels, bytes: value });
    at = end;
  }
  return puts;
}

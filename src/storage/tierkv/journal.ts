import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Key } from '../../key.js';
import type { ValueKind } from './value-kinds.js';
import { processAlive } from '../../process-alive.js';

/** A put as the journal keeps it until SQLite holds it. */
export interface JournalRecord {
  id: string;
  key: Key;
  size: number;
  codec: string;
  kind: ValueKind;
  /** When the set was acknowledged, on the scale of commit sequence numbers (µs): a replay never overwrites a newer commit. */
  ver: number;
  encoded: Buffer;
}

/** `<pid base 36>.<random>.log`: the pid tells whether its writer still runs. */
const NAME = /^([0-9a-z]+)\.[0-9a-f]+\.log$/;
/**
 * The journals this process has open (several stores may share a tier's folder in one process):
 * a journal with this process's pid that is not one of them is a previous process's that had
 * the same pid (a container's pid 1 after a restart).
 */
const OPEN = new Set<string>();

/**
 * A filesystem tier's write-ahead journal, one file per process: each set is appended with one
 * write() before it is acknowledged (in the OS page cache from then on: it survives `kill -9` of
 * the process, without an fsync), and SQLite receives the puts in batches. Once a batch is
 * committed the file is emptied. The journal of a process that was killed is replayed into
 * SQLite by the next process that opens the tier, then removed.
 *
 * A record is `[u32 header length][u32 value length][header JSON][encoded value]`; a record cut
 * short by the kill (the end of the file) is ignored: its set was never acknowledged.
 */
export class Journal {
  private fd: number | null = null;
  private readonly path: string;

  constructor(private readonly dir: string) {
    this.path = join(dir, `${process.pid.toString(36)}.${randomBytes(4).toString('hex')}.log`);
  }

  /** Appends a record with one write(); returns the value's bytes in the written record (a copy of `record.encoded`). */
  append(record: JournalRecord): Buffer {
    if (this.fd === null) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.path, 'a', 0o644);
      OPEN.add(this.path);
    }
    const header = JSON.stringify([record.id, record.key, record.size, record.codec, record.kind, record.ver]);
    const headerLength = Buffer.byteLength(header);
    const out = Buffer.allocUnsafe(8 + headerLength + record.encoded.length);
    out.writeUInt32LE(headerLength, 0);
    out.writeUInt32LE(record.encoded.length, 4);
    out.write(header, 8);
    out.set(record.encoded, 8 + headerLength);
    for (let offset = 0; offset < out.length; ) offset += writeSync(this.fd, out, offset);
    return out.subarray(8 + headerLength);
  }

  /** Everything appended is committed to SQLite: the file starts again empty. */
  clear(): void {
    if (this.fd !== null) ftruncateSync(this.fd, 0);
  }

  /** Closes and removes the file (call only when everything appended is committed). */
  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    rmSync(this.path, { force: true });
    OPEN.delete(this.path);
  }

  /** Closes the file but keeps it, for a replay (a commit failed). */
  abandon(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    OPEN.delete(this.path);
  }
}

/** Journal files in `dir` whose process no longer runs. */
export function deadJournals(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((name) => {
    const match = NAME.exec(name);
    if (match === null || OPEN.has(join(dir, name))) return false;
    const pid = parseInt(match[1]!, 36);
    return pid === process.pid || !processAlive(pid);
  }).map((name) => join(dir, name));
}

/** The complete records of a journal file (a cut-short last record is left out); [] when it is gone. */
export function readJournal(path: string): JournalRecord[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return [];
  }
  const records: JournalRecord[] = [];
  let at = 0;
  while (at + 8 <= bytes.length) {
    const headerLength = bytes.readUInt32LE(at);
    const valueLength = bytes.readUInt32LE(at + 4);
    const end = at + 8 + headerLength + valueLength;
    if (end > bytes.length) break;
    let header: [string, Key, number, string, ValueKind, number];
    try {
      header = JSON.parse(bytes.toString('utf8', at + 8, at + 8 + headerLength)) as typeof header;
    } catch {
      break; // not a whole record: what follows was never acknowledged
    }
    const [id, key, size, codec, kind, ver] = header;
    records.push({ id, key, size, codec, kind, ver, encoded: Buffer.from(bytes.subarray(at + 8 + headerLength, end)) });
    at = end;
  }
  return records;
}

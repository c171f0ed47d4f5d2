import { randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../../process-alive.js';

/** A journal record as it is read back: what its store wrote about the put, and the value. */
export interface JournalRecordBytes {
  meta: Buffer;
  value: Buffer;
}

/** `<pid base 36>.<random>.log`: the pid tells whether its writer still runs. */
const NAME = /^([0-9a-z]+)\.[0-9a-f]+\.log$/;
const FRAME = 8;
/**
 * The journals this process has open (several stores may share a folder in one process): a
 * journal with this process's pid that is not one of them is a previous process's that had the
 * same pid (a container's pid 1 after a restart).
 */
const OPEN = new Set<string>();

/**
 * An embedded store's write-ahead journal, one file per process: each put is appended with one
 * write() before it is acknowledged (in the OS page cache from then on: it survives `kill -9` of
 * the process, without an fsync), and the database receives the puts in batches. Once a batch
 * is committed the file is emptied. The journal of a process that was killed is replayed into
 * the database by the next process that opens the store, then removed.
 *
 * A record is `[u32 meta length][u32 value length][meta][value]`; what `meta` says is the
 * store's (TierKV: a JSON header; Packed: the key and labels). A record cut short by the kill
 * (the end of the file) is left out: its put was never acknowledged.
 */
export class ProcessJournal {
  private fd: number | null = null;
  /** Records of appendGrouped waiting for the end of this run of microtasks (encoded together then). */
  private group: GroupedRecord[] | null = null;
  readonly path: string;

  constructor(private readonly dir: string) {
    this.path = join(dir, `${process.pid.toString(36)}.${randomBytes(4).toString('hex')}.log`);
  }

  /**
   * Appends a record with one write(); returns the value's bytes inside the written record: a
   * copy the store may keep (the caller may reuse `value` once the put is acknowledged).
   */
  append(meta: string | Buffer, value: Uint8Array): Buffer {
    const { out, bytes } = encodeRecord(meta, value);
    this.writeAll(out);
    return bytes;
  }

  /**
   * Appends a record together with the others appended in the same run of microtasks (the puts
   * of concurrent callers): once that run ends they are encoded into one buffer and written with
   * one write(). `written` is called then, with null and the value's bytes inside the written
   * records (a copy the store may keep: the caller may reuse `value` once it is called), or with
   * the error of the write (the puts of the group are not acknowledged; records before the
   * failure may be whole in the file, and are replayed if the process dies before its next
   * commit: content-keyed values, so no wrong value). `flush` writes the group waiting at once.
   */
  appendGrouped(meta: Buffer, value: Uint8Array, written: (error: unknown, bytes: Buffer | null) => void): void {
    if (this.group === null) {
      this.group = [];
      queueMicrotask(() => this.flush());
    }
    this.group.push({ meta, value, written });
  }

  /** Writes the records appendGrouped holds, if any, and tells their callers. */
  flush(): void {
    const group = this.group;
    if (group === null) return;
    this.group = null;
    // one buffer for the group: each value is copied once, into the record that is written
    let length = 0;
    for (const record of group) length += FRAME + record.meta.length + record.value.length;
    const out = Buffer.allocUnsafe(length);
    const values: Buffer[] = [];
    let at = 0;
    for (const { meta, value } of group) {
      out.writeUInt32LE(meta.length, at);
      out.writeUInt32LE(value.length, at + 4);
      out.set(meta, at + FRAME);
      at += FRAME + meta.length;
      out.set(value, at);
      values.push(out.subarray(at, at + value.length));
      at += value.length;
    }
    let failure: unknown = null;
    try {
      this.writeAll(out);
    } catch (error) {
      failure = error;
    }
    for (let i = 0; i < group.length; i++) group[i]!.written(failure, failure === null ? values[i]! : null);
  }

  private writeAll(out: Buffer): void {
    if (this.fd === null) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.path, 'a', 0o644);
      OPEN.add(this.path);
    }
    for (let offset = 0; offset < out.length; ) offset += writeSync(this.fd, out, offset);
  }

  /** Everything appended is in the database: the file starts again empty. */
  clear(): void {
    if (this.fd !== null) ftruncateSync(this.fd, 0);
  }

  /** Closes and removes the file (only when everything appended is in the database). */
  close(): void {
    this.flush();
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    rmSync(this.path, { force: true });
    OPEN.delete(this.path);
  }

  /** Closes the file but keeps it, for a replay (a commit failed). */
  abandon(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    OPEN.delete(this.path);
  }
}

/** A record waiting in appendGrouped's group. */
interface GroupedRecord {
  meta: Buffer;
  value: Uint8Array;
  written: (error: unknown, bytes: Buffer | null) => void;
}

/** A record's bytes (`[u32 meta length][u32 value length][meta][value]`) and the value inside them. */
function encodeRecord(meta: string | Buffer, value: Uint8Array): { out: Buffer; bytes: Buffer } {
  const metaLength = typeof meta === 'string' ? Buffer.byteLength(meta) : meta.length;
  const out = Buffer.allocUnsafe(FRAME + metaLength + value.length);
  out.writeUInt32LE(metaLength, 0);
  out.writeUInt32LE(value.length, 4);
  if (typeof meta === 'string') out.write(meta, FRAME);
  else out.set(meta, FRAME);
  out.set(value, FRAME + metaLength);
  return { out, bytes: out.subarray(FRAME + metaLength) };
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

/**
 * The whole records of a journal file, in order, as `decode` reads them; [] when the file is
 * gone. The first record cut short, or that `decode` rejects (null: torn by the kill), ends the
 * list: nothing after it was acknowledged either.
 */
export function readJournal<R>(path: string, decode: (record: JournalRecordBytes) => R | null): R[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return [];
  }
  const records: R[] = [];
  for (let at = 0; at + FRAME <= bytes.length; ) {
    const metaLength = bytes.readUInt32LE(at);
    const valueLength = bytes.readUInt32LE(at + 4);
    const end = at + FRAME + metaLength + valueLength;
    if (end > bytes.length) break;
    const record = decode({ meta: bytes.subarray(at + FRAME, at + FRAME + metaLength), value: Buffer.from(bytes.subarray(at + FRAME + metaLength, end)) });
    if (record === null) break;
    records.push(record);
    at = end;
  }
  return records;
}

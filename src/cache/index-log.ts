/**
 * The index of a smartCache folder as one append-only file: each entry is a self-checking record
 * appended with a single write, so a miss creates no file (creating a file, and renaming it into
 * place, is what a miss used to spend most of its time on) and a hit is a single positioned read.
 *
 * A record is `MAGIC, length (u32 LE), key (32 bytes), checksum (16 bytes), value`; the checksum
 * (the first 16 bytes of a sha256) covers the length, the key and the value. A record of length 0
 * removes its key. The latest record of a key wins.
 *
 * Every process appends to the same file (O_APPEND: each record lands whole at the end) and keeps
 * an in-memory map key → offset of what it has scanned. A key it does not know makes it scan what
 * was appended since (one read when nothing was), so entries written by other processes are found.
 * A hit still reads the record from the file and checks it: the map holds positions, never values.
 * A torn record (a crash in the middle of a write, a full disk) or corrupted bytes are skipped by
 * the scan (it looks for the next record that checks), and a record that no longer checks when it is
 * read is a StorageCorruption, which smartCache treats as a miss to recompute: the new record then
 * supersedes the bad one.
 *
 * The file only grows: superseded records stay until the folder is removed.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { bufferBlob, type Source, type Value } from '../blob.js';
import { LocationError, StorageCorruption } from '../errors.js';
import { assertKey, type Key } from '../key.js';
import type { Entry, Location } from '../locations/interface.js';
import { readEach } from '../locations/interface.js';
import type { IndexFolder } from './index-folder.js';

/** The record layout's version is part of the magic: another layout is never parsed as this one. */
const MAGIC = Buffer.from('cairnIX1');
const SUM = 16;
const HEAD = MAGIC.length + 4 + 32 + SUM;
/** Values larger than this are refused (entries are small: big bodies and parts live in storage). */
export const MAX_RECORD = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;

interface Slot {
  offset: number;
  length: number;
}

function checksum(record: Buffer, length: number): Buffer {
  const hash = createHash('sha256');
  hash.update(record.subarray(MAGIC.length, MAGIC.length + 4 + 32));
  hash.update(record.subarray(HEAD, HEAD + length));
  return hash.digest().subarray(0, SUM);
}

/** Builds one record; `value` empty removes the key. */
export function logRecord(key: Key, value: Uint8Array): Buffer {
  const record = Buffer.allocUnsafe(HEAD + value.byteLength);
  MAGIC.copy(record, 0);
  record.writeUInt32LE(value.byteLength, MAGIC.length);
  record.write(key, MAGIC.length + 4, 32, 'hex');
  record.set(value, HEAD);
  checksum(record, value.byteLength).copy(record, MAGIC.length + 4 + 32);
  return record;
}

/** True when `buffer[at..]` holds a whole record whose checksum holds. */
function complete(buffer: Buffer, at: number, end: number): boolean {
  if (end - at < HEAD || buffer.compare(MAGIC, 0, MAGIC.length, at, at + MAGIC.length) !== 0) return false;
  const length = buffer.readUInt32LE(at + MAGIC.length);
  if (length > MAX_RECORD || at + HEAD + length > end) return false;
  const record = buffer.subarray(at, at + HEAD + length);
  return checksum(record, length).equals(record.subarray(MAGIC.length + 4 + 32, HEAD));
}

export class IndexLog implements Location {
  readonly file: string;
  readonly name: string;
  /** Key → its latest record, for what this process has scanned. */
  private readonly slots = new Map<string, Slot>();
  /** Keys named by records that are torn or fail their checksum (and have no good record since). */
  private readonly torn = new Set<string>();
  /** Where the next scan starts. */
  private scanned = 0;
  private fd = -1;
  private legacyChecked = false;
  /** This process appended since the last scan: the next scan must find something. */
  private wrote = false;
  /** The last record this process appended: found again by the next scan, it needs no checksum. */
  private own: Buffer | null = null;
  /** Reused by scans (slots keep offsets, never views of it). */
  private readonly chunk = Buffer.allocUnsafe(CHUNK);

  /**
   * @param legacy the folder index of earlier versions: entries found there (and not in the log)
   * are still read; new entries go to the log.
   */
  constructor(
    file: string,
    private readonly fsync = false,
    private legacy: IndexFolder | null = null,
  ) {
    this.file = resolve(file);
    this.name = `IndexLog(${this.file})`;
  }

  private fail(what: string, error: unknown): LocationError {
    return new LocationError(`${what} in ${this.name}: ${(error as Error).message}`, this.name, { cause: error });
  }

  private open(): number {
    if (this.fd !== -1) return this.fd;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      this.fd = openSync(this.file, 'a+', 0o666);
    } catch (error) {
      throw this.fail('Cannot open', error);
    }
    return this.fd;
  }

  private legacyIndex(): IndexFolder | null {
    if (!this.legacyChecked) {
      this.legacyChecked = true;
      // looked at once: a cache made by this version has no folder index to fall back on
      if (this.legacy !== null && statSync(this.legacy.root, { throwIfNoEntry: false }) === undefined) this.legacy = null;
    }
    return this.legacy;
  }

  /** Indexes what was appended since the last scan (by any process). */
  private catchUp(force = false): void {
    const fd = this.open();
    let buffer = this.chunk;
    let end: number;
    try {
      end = readSync(fd, buffer, 0, CHUNK, this.scanned);
      if (end === 0 && (this.wrote || force) && fstatSync(fd).size < this.scanned) {
        // the file was cut short behind our back: start over
        this.slots.clear();
        this.scanned = 0;
        end = readSync(fd, buffer, 0, CHUNK, 0);
      }
      this.wrote = false;
      if (end === 0) return;
      if (end === CHUNK) {
        const size = fstatSync(fd).size - this.scanned;
        if (size > CHUNK) {
          const whole = Buffer.allocUnsafe(size);
          buffer.copy(whole, 0, 0, CHUNK);
          while (end < size) {
            const got = readSync(fd, whole, end, size - end, this.scanned + end);
            if (got === 0) break;
            end += got;
          }
          buffer = whole;
        }
      }
    } catch (error) {
      throw this.fail('Cannot read', error);
    }
    let at = 0;
    const own = this.own;
    this.own = null;
    while (end - at >= HEAD) {
      // usually the scan after a miss finds just the record this process appended
      const mine = at === 0 && own !== null && end >= own.length && buffer.compare(own, 0, own.length, 0, own.length) === 0;
      if (mine || complete(buffer, at, end)) {
        const length = buffer.readUInt32LE(at + MAGIC.length);
        const key = buffer.toString('hex', at + MAGIC.length + 4, at + MAGIC.length + 4 + 32);
        if (length === 0) this.slots.delete(key);
        else this.slots.set(key, { offset: this.scanned + at, length });
        this.torn.delete(key);
        at += HEAD + length;
        continue;
      }
      const length = buffer.compare(MAGIC, 0, MAGIC.length, at, at + MAGIC.length) === 0 ? buffer.readUInt32LE(at + MAGIC.length) : -1;
      // its key, when the header is there, so that reading it says the entry is damaged
      if (length >= 0) this.torn.add(buffer.toString('hex', at + MAGIC.length + 4, at + MAGIC.length + 4 + 32));
      // a record still being written (or torn at the very end) may complete later
      const pending = length >= 0 && length <= MAX_RECORD && at + HEAD + length > end;
      // not a good record here: skip to the next one that checks, if any
      let next = buffer.indexOf(MAGIC, at + 1);
      while (next !== -1 && !complete(buffer, next, end)) next = buffer.indexOf(MAGIC, next + 1);
      if (next !== -1) {
        at = next;
        continue;
      }
      if (pending) break;
      const magic = buffer.indexOf(MAGIC, at + 1);
      if (magic !== -1) {
        at = magic;
        continue;
      }
      // garbage up to the end: keep only what could be the start of a record
      at = Math.max(at + 1, end - MAGIC.length + 1);
      break;
    }
    // a header cut short at the very end still names its key
    if (end - at >= MAGIC.length + 4 + 32 && end - at < HEAD && buffer.compare(MAGIC, 0, MAGIC.length, at, at + MAGIC.length) === 0) {
      this.torn.add(buffer.toString('hex', at + MAGIC.length + 4, at + MAGIC.length + 4 + 32));
    }
    this.scanned += at;
  }

  /** Reads and checks the record of `slot`; null when it does not hold `key` any more. */
  private record(key: Key, slot: Slot): Buffer | null {
    const record = Buffer.allocUnsafe(HEAD + slot.length);
    let got: number;
    try {
      got = readSync(this.open(), record, 0, record.length, slot.offset);
    } catch (error) {
      throw this.fail(`Cannot read ${key}`, error);
    }
    if (got !== record.length || !complete(record, 0, record.length) || record.toString('hex', MAGIC.length + 4, MAGIC.length + 4 + 32) !== key) return null;
    return record.subarray(HEAD);
  }

  /** The latest value of `key`; a record that fails its checksum is a StorageCorruption. */
  readBytesSync(key: Key): Buffer | null {
    assertKey(key);
    return this.readEntrySync(key)?.bytes ?? null;
  }

  /**
   * The latest value of `key` (a valid key: not checked again), and whether its bytes were checked
   * by this log's checksum (they are not when they come from the folder index of earlier versions).
   */
  readEntrySync(key: Key): { bytes: Buffer; checked: boolean } | null {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      this.catchUp();
      slot = this.slots.get(key);
      if (slot === undefined) {
        if (this.torn.has(key)) throw new StorageCorruption(key, null, `${this.name} (the record is truncated or fails its checksum)`);
        const legacy = this.legacyIndex()?.readBytesSync(key) ?? null;
        return legacy === null ? null : { bytes: legacy, checked: false };
      }
    }
    const value = this.record(key, slot);
    if (value !== null) return { bytes: value, checked: true };
    // corrupted since it was scanned: a newer record (another process's repair) may exist
    this.slots.delete(key);
    this.catchUp(true);
    const newer = this.slots.get(key);
    const again = newer === undefined ? null : this.record(key, newer);
    if (again !== null) return { bytes: again, checked: true };
    // damaged until a good record of the key appears
    this.torn.add(key);
    throw new StorageCorruption(key, null, `${this.name} (the record is truncated or fails its checksum)`);
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    return this.readBytesSync(key);
  }

  async read(key: Key): Promise<Value | null> {
    const bytes = this.readBytesSync(key);
    return bytes === null ? null : { key, ...bufferBlob(bytes), labels: async () => null };
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  /** Appends a record for `key` (empty `bytes`: removes it). */
  writeSync(key: Key, bytes: Uint8Array): void {
    assertKey(key);
    if (bytes.byteLength > MAX_RECORD) throw new LocationError(`Cannot write ${key} in ${this.name}: an entry of ${bytes.byteLength} bytes is too large`, this.name);
    const record = logRecord(key, bytes);
    const fd = this.open();
    let written: number;
    try {
      written = writeSync(fd, record);
      if (this.fsync) fsyncSync(fd);
    } catch (error) {
      throw this.fail(`Cannot write ${key}`, error);
    }
    // a short write leaves a torn record, which every scan skips
    if (written !== record.length) throw new LocationError(`Cannot write ${key} in ${this.name}: short write (${written} of ${record.length} bytes)`, this.name);
    // the next read of this key scans again and finds the new record
    this.slots.delete(key);
    this.wrote = true;
    this.own = record;
  }

  async write(key: Key, source: Source): Promise<boolean> {
    this.writeSync(key, await source.bytes());
    return true;
  }

  async delete(key: Key): Promise<boolean> {
    let had: boolean;
    try {
      had = this.readBytesSync(key) !== null;
    } catch {
      had = true; // a damaged record is there
    }
    this.writeSync(key, new Uint8Array(0));
    if (this.legacyIndex()) await this.legacy!.delete(key);
    return had;
  }

  async touch(key: Key): Promise<boolean> {
    return this.readBytesSync(key) !== null;
  }

  async *contents(): AsyncIterable<Entry> {
    this.catchUp();
    for (const [key, slot] of [...this.slots].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      yield { key, location: this, meta: { labels: null, lastUsed: null, size: slot.length } };
    }
  }

  async close(): Promise<void> {
    if (this.fd !== -1) closeSync(this.fd);
    this.fd = -1;
  }
}

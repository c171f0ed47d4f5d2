/**
 * The index of a smartCache folder as earlier versions kept it (IndexLog, one append-only file,
 * replaces it; entries found here are still read): small entries keyed by the call's key (not by their own
 * hash, so a Disk lake, which verifies content against keys, does not fit). Each entry carries
 * its own checksum (store.ts), so this location only has to publish files atomically.
 *
 * Entries are a few hundred bytes: synchronous calls (microseconds on a local disk) beat a trip
 * to libuv's thread pool, which is what a miss spends most of its time on otherwise.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, promises as fsp, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bufferBlob, type Source, type Value } from '../blob.js';
import { LocationError } from '../errors.js';
import { assertKey, type Key } from '../key.js';
import type { Entry, Location } from '../locations/interface.js';
import { readEach } from '../locations/interface.js';

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

export class IndexFolder implements Location {
  readonly root: string;
  readonly name: string;
  private readonly tmp: string;
  private readonly known = new Set<string>();

  constructor(
    root: string,
    private readonly fsync = false,
  ) {
    this.root = resolve(root);
    this.name = `IndexFolder(${this.root})`;
    this.tmp = join(this.root, '.tmp');
  }

  private path(key: Key): string {
    assertKey(key);
    return join(this.root, key.slice(0, 2), key.slice(2));
  }

  private fail(what: string, error: unknown): LocationError {
    return new LocationError(`${what} in ${this.name}: ${(error as Error).message}`, this.name, { cause: error });
  }

  readBytesSync(key: Key): Buffer | null {
    try {
      return readFileSync(this.path(key));
    } catch (error) {
      if (errno(error) === 'ENOENT') return null;
      throw this.fail(`Cannot read ${key}`, error);
    }
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    return this.readBytesSync(key);
  }

  async read(key: Key): Promise<Value | null> {
    const bytes = await this.readBytes(key);
    return bytes === null ? null : { key, ...bufferBlob(bytes), labels: async () => null };
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  private dir(path: string): void {
    if (this.known.has(path)) return;
    mkdirSync(path, { recursive: true });
    this.known.add(path);
  }

  async write(key: Key, source: Source): Promise<boolean> {
    const file = this.path(key);
    const bytes = await source.bytes();
    const tmp = join(this.tmp, `${key.slice(0, 16)}.${randomBytes(6).toString('hex')}`);
    let fd = -1;
    try {
      this.dir(this.tmp);
      this.dir(join(this.root, key.slice(0, 2)));
      fd = openSync(tmp, 'wx', 0o666);
      for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
      if (this.fsync) fsyncSync(fd);
      closeSync(fd);
      fd = -1;
      // a rename publishes the whole entry at once: readers see the old one or the new one
      renameSync(tmp, file);
      return true;
    } catch (error) {
      if (fd !== -1) closeSync(fd);
      rmSync(tmp, { force: true });
      throw this.fail(`Cannot write ${key}`, error);
    }
  }

  async delete(key: Key): Promise<boolean> {
    try {
      unlinkSync(this.path(key));
      return true;
    } catch (error) {
      if (errno(error) === 'ENOENT') return false;
      throw this.fail(`Cannot delete ${key}`, error);
    }
  }

  async touch(key: Key): Promise<boolean> {
    try {
      const now = new Date();
      utimesSync(this.path(key), now, now);
      return true;
    } catch (error) {
      if (errno(error) === 'ENOENT') return false;
      throw this.fail(`Cannot touch ${key}`, error);
    }
  }

  async *contents(): AsyncIterable<Entry> {
    let top: string[];
    try {
      top = await fsp.readdir(this.root);
    } catch (error) {
      if (errno(error) === 'ENOENT') return;
      throw this.fail('Cannot list', error);
    }
    for (const prefix of top.sort()) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const rest of (await fsp.readdir(join(this.root, prefix))).sort()) {
        if (!/^[0-9a-f]{62}$/.test(rest)) continue;
        const stat = await fsp.stat(join(this.root, prefix, rest)).catch(() => null);
        if (stat === null) continue;
        yield { key: prefix + rest, location: this, meta: { labels: null, lastUsed: stat.mtime, size: stat.size } };
      }
    }
  }
}

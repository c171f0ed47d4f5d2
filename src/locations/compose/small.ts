import { bufferBlob, readUpTo, type Source, type Value } from '../../blob.js';
import type { Key } from '../../key.js';
import { parseSize, type Size } from '../../size.js';
import { type Entry, hasKey, type Location, type LocationLike } from '../interface.js';
import { resolveLocation } from '../resolve.js';

export interface SmallOptions {
  /** Largest value accepted, in bytes or '100KiB'; larger ones are declined. */
  maxSize: Size;
}

/** Wraps a location so that it only takes values up to `maxSize` (Redis in front of a disk, say). */
export class Small implements Location {
  readonly location: Location;
  readonly maxSize: number;
  readonly name: string;

  constructor(location: LocationLike, options: SmallOptions) {
    this.location = resolveLocation(location);
    this.maxSize = parseSize(options.maxSize, 'maxSize');
    this.name = `Small(${this.location.name}, ${this.maxSize})`;
  }

  read(key: Key): Promise<Value | null> {
    return this.location.read(key);
  }

  readBytes(key: Key): Promise<Buffer | null> {
    return this.location.readBytes ? this.location.readBytes(key) : this.location.read(key).then((value) => value?.bytes() ?? null);
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return this.location.readBatch(keys);
  }

  has(key: Key): Promise<boolean> {
    return hasKey(this.location, key);
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    if (source.size !== null) {
      if (source.size > this.maxSize) return null;
      return this.location.write(key, source, labels);
    }
    // unknown size: read just enough to tell, then hand over the bytes
    const bytes = await readUpTo(source, this.maxSize);
    if (bytes === null) return null;
    return this.location.write(key, { ...bufferBlob(bytes), verified: source.verified }, labels);
  }

  delete(key: Key): Promise<boolean> {
    return this.location.delete(key);
  }

  touch(key: Key): Promise<boolean> {
    return this.location.touch(key);
  }

  contents(): AsyncIterable<Entry> {
    return this.location.contents();
  }

  stagingDir(): string | null {
    return this.location.stagingDir?.() ?? null;
  }

  async close(): Promise<void> {
    await this.location.close?.();
  }
}

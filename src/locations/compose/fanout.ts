import type { Source, Value } from '../../blob.js';
import type { Key } from '../../key.js';
import { type Entry, hasKey, type Location, type LocationLike, uniqueEntries } from '../interface.js';
import { resolveLocation } from '../resolve.js';

/**
 * Several locations used as one: reads search them in order; a write goes to the first one that
 * accepts it, so the second disk is used once the first is full.
 */
export class Fanout implements Location {
  readonly locations: readonly Location[];
  readonly name: string;

  constructor(...locations: LocationLike[]) {
    this.locations = locations.map((location) => resolveLocation(location));
    this.name = `Fanout(${this.locations.map((location) => location.name).join(', ')})`;
  }

  async read(key: Key): Promise<Value | null> {
    for (const location of this.locations) {
      const value = await location.read(key);
      if (value !== null) return value;
    }
    return null;
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    for (const location of this.locations) {
      const bytes = location.readBytes ? await location.readBytes(key) : await (await location.read(key))?.bytes();
      if (bytes !== null && bytes !== undefined) return bytes;
    }
    return null;
  }

  /** Every key once: the first location's hits, then the next one's among the keys still missing, and so on. */
  async *readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    let remaining = [...new Set(keys)];
    for (const location of this.locations) {
      if (remaining.length === 0) return;
      const missing: Key[] = [];
      for await (const [key, value] of location.readBatch(remaining)) {
        if (value === null) missing.push(key);
        else yield [key, value];
      }
      remaining = missing;
    }
    for (const key of remaining) yield [key, null];
  }

  /** True when some location holds the key (nothing is read or marked as used). */
  async has(key: Key): Promise<boolean> {
    for (const location of this.locations) if (await hasKey(location, key)) return true;
    return false;
  }

  /** The value stored by the first location that accepts it, or null when all decline. */
  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    for (const location of this.locations) {
      const stored = await location.write(key, source, labels);
      if (stored !== null) return stored;
    }
    return null;
  }

  async delete(key: Key): Promise<boolean> {
    let deleted = false;
    for (const location of this.locations) if (await location.delete(key)) deleted = true;
    return deleted;
  }

  async touch(key: Key): Promise<boolean> {
    let touched = false;
    for (const location of this.locations) if (await location.touch(key)) touched = true;
    return touched;
  }

  /** Every key once, with the meta of the first location that holds it. */
  contents(): AsyncIterable<Entry> {
    return uniqueEntries(this.locations);
  }

  stagingDir(): string | null {
    for (const location of this.locations) {
      const dir = location.stagingDir?.();
      if (dir) return dir;
    }
    return null;
  }

  async close(): Promise<void> {
    await Promise.all(this.locations.map((location) => location.close?.()));
  }
}

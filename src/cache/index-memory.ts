/**
 * An index held in this process's memory, for a cache whose storage is a Memory location: both
 * live and die with the process.
 */
import type { Key } from '../key.js';
import type { EntryIndex, EntryMeta, IndexedEntry } from './entry-index.js';

interface Held extends IndexedEntry {
  bytes: Buffer;
}

export class MemoryIndex implements EntryIndex {
  readonly name = 'MemoryIndex';
  private readonly held = new Map<Key, Held>();

  getSync(key: Key): Buffer | null {
    return this.held.get(key)?.bytes ?? null;
  }

  async get(key: Key): Promise<Buffer | null> {
    return this.getSync(key);
  }

  putSync(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): void {
    // a copy: the caller may reuse its buffer
    this.held.set(key, { key, fn: meta.fn, digest: meta.digest, args: meta.args, size: meta.size, used: Date.now(), parts: [...parts], bytes: Buffer.from(bytes) });
  }

  async put(key: Key, bytes: Buffer, meta: EntryMeta, parts: readonly Key[]): Promise<void> {
    this.putSync(key, bytes, meta, parts);
  }

  async delete(key: Key): Promise<boolean> {
    return this.held.delete(key);
  }

  async *entries(fn?: string): AsyncIterable<IndexedEntry> {
    // a snapshot: removing while listing is allowed
    for (const { bytes: _bytes, ...entry } of [...this.held.values()]) {
      if (fn === undefined || entry.fn === fn) yield entry;
    }
  }

  async digestsFor(fn: string, args: string): Promise<string[]> {
    const found = [...this.held.values()].filter((entry) => entry.fn === fn && entry.args === args).sort((a, b) => b.used - a.used);
    return [...new Set(found.map((entry) => entry.digest))];
  }

  touch(key: Key): void {
    const entry = this.held.get(key);
    if (entry) entry.used = Date.now();
  }

  async close(): Promise<void> {}
}

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { asSource, bufferBlob, type Source, type Value } from '../blob.js';
import { debugLog } from '../debug.js';
import { StorageCorruption } from '../errors.js';
import type { Key } from '../key.js';
import { type Entry, type Location, type LocationLike, readEach, uniqueEntries } from './interface.js';
import { isLocation, resolveLocation } from './resolve.js';

export interface LevelOptions {
  /** Writes may go to this level. @default true */
  write?: boolean;
  /** A value found in a lower level is copied into this one. @default true */
  replicate?: boolean;
  /** A read served by an upper level still updates this level's last-used time. @default false */
  touch?: boolean;
  /** A name for events and errors. @default the location's name */
  name?: string;
}

/** One level of a Levels hierarchy: a location and how it takes part. */
export class Level {
  readonly location: Location;
  readonly write: boolean;
  readonly replicate: boolean;
  readonly touch: boolean;
  readonly name: string;

  constructor(location: LocationLike, options: LevelOptions = {}) {
    this.location = resolveLocation(location);
    this.write = options.write ?? true;
    this.replicate = options.replicate ?? true;
    this.touch = options.touch ?? false;
    this.name = options.name ?? this.location.name;
  }
}

export interface LevelsOptions {
  /**
   * Treat a level that fails (server down, timeout, corrupted copy) as a miss and go on to the
   * next one. Every such skip is reported through the 'skip' event. So that a corrupted copy can
   * be passed over by `read()` too, a value that no upper level copied (and so checked) is read
   * and hashed once before it is returned, when there are levels below it. @default false: failures throw
   */
  skipFailing?: boolean;
}

/** Counters of one level, since the Levels was made (or since `resetStats()`). */
export interface LevelStats {
  name: string;
  /** Reads this level answered. */
  hits: number;
  /** Reads this level was asked and did not hold the key. */
  misses: number;
  /** Bytes of the values this level served (their size when known). */
  bytes: number;
  /** Failures of this level (thrown or skipped). */
  errors: number;
}

/** What the 'skip' event reports. */
export interface SkipEvent {
  level: string;
  operation: 'read' | 'write' | 'replicate' | 'touch' | 'delete';
  key: Key | null;
  error: unknown;
}

/** What the 'stat:hit' and 'stat:miss' events report: a read that a level answered or did not hold. */
export interface LevelStatEvent {
  level: string;
  key: Key;
  /** The value's size (hits only). */
  bytes?: number;
}

/** What the 'promote' event reports: a value found in a lower level copied into an upper one. */
export interface PromoteEvent {
  key: Key;
  from: string;
  to: string;
}

const log = debugLog('levels');

/** Reads a value once, hashing it: StorageCorruption when its bytes are not its key's. */
async function checkValue(value: Value, where: string): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of value.stream()) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== value.key) throw new StorageCorruption(value.key, actual, where);
}

function isOptions(value: unknown): value is LevelsOptions {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype && !isLocation(value);
}

/**
 * A cache hierarchy with copy-on-read, as tarn's Levels: reads search the levels in order and copy
 * a value found in a lower level into the upper levels that replicate (verifying the bytes as they
 * are copied); writes go to the first writable level that accepts.
 *
 * Emits 'skip' (SkipEvent) when `skipFailing` lets a failing level be passed over, 'stat:hit' and
 * 'stat:miss' (LevelStatEvent) per level asked on a read, and 'promote' (PromoteEvent) when a
 * value is copied up. The same are logged with `DEBUG=cairn:levels` (see debug.ts).
 */
export class Levels extends EventEmitter implements Location {
  readonly levels: readonly Level[];
  readonly name: string;
  private readonly skipFailing: boolean;
  private readonly counters: LevelStats[];

  constructor(...items: (Level | LocationLike | LevelsOptions)[]) {
    super();
    const options = items.length > 0 && isOptions(items[items.length - 1]) ? (items.pop() as LevelsOptions) : {};
    this.levels = (items as (Level | LocationLike)[]).map((item) => (item instanceof Level ? item : new Level(item)));
    this.skipFailing = options.skipFailing ?? false;
    this.name = `Levels(${this.levels.map((level) => level.name).join(', ')})`;
    this.counters = this.levels.map((level) => ({ name: level.name, hits: 0, misses: 0, bytes: 0, errors: 0 }));
  }

  /** Per level hits, misses, bytes served and errors (a copy). */
  stats(): LevelStats[] {
    return this.counters.map((counter) => ({ ...counter }));
  }

  resetStats(): void {
    for (const counter of this.counters) Object.assign(counter, { hits: 0, misses: 0, bytes: 0, errors: 0 });
  }

  private count(index: number, found: number | null, key: Key): void {
    const counter = this.counters[index]!;
    if (found === null) {
      counter.misses++;
      if (this.listenerCount('stat:miss') > 0) this.emit('stat:miss', { level: counter.name, key } satisfies LevelStatEvent);
      if (log.enabled) log(`miss ${counter.name} ${key}`);
    } else {
      counter.hits++;
      counter.bytes += found;
      if (this.listenerCount('stat:hit') > 0) this.emit('stat:hit', { level: counter.name, key, bytes: found } satisfies LevelStatEvent);
      if (log.enabled) log(`hit ${counter.name} ${key} (${found} bytes)`);
    }
  }

  async read(key: Key): Promise<Value | null> {
    for (let index = 0; index < this.levels.length; index++) {
      const level = this.levels[index]!;
      let value: Value | null;
      try {
        value = await level.location.read(key);
      } catch (error) {
        this.skipOrThrow(level, 'read', key, error);
        continue;
      }
      this.count(index, value === null ? null : value.size ?? 0, key);
      if (value === null) continue;
      let copy: Value | null;
      try {
        copy = await this.replicate(key, asSource(value, false), await this.labelsOf(value, level), index);
      } catch (error) {
        // the copy found its bytes corrupted: this level's value is bad, look further down
        this.skipOrThrow(level, 'read', key, error);
        continue;
      }
      if (copy === null && this.skipFailing && index < this.levels.length - 1) {
        // nothing copied it, so nothing checked it: once a stream is handed out, a corruption
        // found at its end can no longer fall back to the level below, so check it here
        try {
          await checkValue(value, level.name);
        } catch (error) {
          this.skipOrThrow(level, 'read', key, error);
          continue;
        }
      }
      await this.touchBelow(key, index);
      return copy ?? value;
    }
    return null;
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    for (let index = 0; index < this.levels.length; index++) {
      const level = this.levels[index]!;
      let bytes: Buffer | null;
      let labels: string[] | null = null;
      try {
        if (level.location.readBytes) {
          bytes = await level.location.readBytes(key);
          if (bytes !== null && index > 0) labels = await this.labelsOfKey(level, key);
        } else {
          const value = await level.location.read(key);
          bytes = value === null ? null : await value.bytes();
          if (value !== null && index > 0) labels = await value.labels();
        }
      } catch (error) {
        this.skipOrThrow(level, 'read', key, error);
        continue;
      }
      this.count(index, bytes === null ? null : bytes.length, key);
      if (bytes === null) continue;
      if (index > 0) {
        try {
          await this.replicate(key, asSource(bufferBlob(bytes), false), labels, index);
        } catch (error) {
          this.skipOrThrow(level, 'read', key, error);
          continue;
        }
      }
      await this.touchBelow(key, index);
      return bytes;
    }
    return null;
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    for (const level of this.levels) {
      if (!level.write) continue;
      try {
        const stored = await level.location.write(key, source, labels);
        if (stored !== null) return stored;
      } catch (error) {
        this.skipOrThrow(level, 'write', key, error);
      }
    }
    return null;
  }

  async delete(key: Key): Promise<boolean> {
    let deleted = false;
    for (const level of this.levels) {
      try {
        if (await level.location.delete(key)) deleted = true;
      } catch (error) {
        this.skipOrThrow(level, 'delete', key, error);
      }
    }
    return deleted;
  }

  async touch(key: Key): Promise<boolean> {
    let touched = false;
    for (const level of this.levels) {
      try {
        if (await level.location.touch(key)) touched = true;
      } catch (error) {
        this.skipOrThrow(level, 'touch', key, error);
      }
    }
    return touched;
  }

  /** Every key once, with the meta of the highest level that holds it. */
  contents(): AsyncIterable<Entry> {
    return uniqueEntries(this.levels.map((level) => level.location));
  }

  stagingDir(): string | null {
    for (const level of this.levels) {
      const dir = level.write ? level.location.stagingDir?.() : null;
      if (dir) return dir;
    }
    return null;
  }

  async close(): Promise<void> {
    await Promise.all(this.levels.map((level) => level.location.close?.()));
  }

  /**
   * Copies a value found at `index` into every upper level that replicates. Each writer verifies
   * the bytes while it copies, so a corrupted value is never promoted. Returns the copy in the
   * highest level that took it, or null.
   */
  private async replicate(key: Key, source: Source, labels: string[] | null, index: number): Promise<Value | null> {
    let top: Value | null = null;
    for (let upper = index - 1; upper >= 0; upper--) {
      const level = this.levels[upper]!;
      if (!level.replicate) continue;
      let copy: Value | null;
      try {
        if ((await level.location.write(key, source, labels)) === null) continue;
        copy = await level.location.read(key);
      } catch (error) {
        // corruption is the source's fault, not this level's: the caller skips the source level
        if (error instanceof StorageCorruption) throw error;
        this.skipOrThrow(level, 'replicate', key, error);
        continue;
      }
      if (copy !== null) {
        const event: PromoteEvent = { key, from: this.levels[index]!.name, to: level.name };
        this.emit('promote', event);
        if (log.enabled) log(`promote ${key} from ${event.from} to ${event.to}`);
        top = copy;
        // further copies are made from this one: nearer, and already verified
        source = asSource(copy, false);
      }
    }
    return top;
  }

  private async touchBelow(key: Key, index: number): Promise<void> {
    for (let lower = index + 1; lower < this.levels.length; lower++) {
      const level = this.levels[lower]!;
      if (!level.touch) continue;
      try {
        await level.location.touch(key);
      } catch (error) {
        this.skipOrThrow(level, 'touch', key, error);
      }
    }
  }

  private async labelsOf(value: Value, level: Level): Promise<string[] | null> {
    try {
      return await value.labels();
    } catch (error) {
      this.skipOrThrow(level, 'read', value.key, error);
      return null;
    }
  }

  private async labelsOfKey(level: Level, key: Key): Promise<string[] | null> {
    const value = await level.location.read(key);
    return value === null ? null : value.labels();
  }

  private skipOrThrow(level: Level, operation: SkipEvent['operation'], key: Key | null, error: unknown): void {
    const counter = this.counters[this.levels.indexOf(level)];
    if (counter) counter.errors++;
    if (!this.skipFailing) throw error;
    const event: SkipEvent = { level: level.name, operation, key, error };
    if (log.enabled) log(`skip ${level.name} ${operation} ${key ?? ''}: ${(error as Error)?.message ?? error}`);
    this.emit('skip', event);
  }
}

import { EventEmitter } from 'node:events';
import { asSource, bufferBlob, type Source, type Value } from '../../blob.js';
import { debugLog } from '../../debug.js';
import { ConfigError, StorageCorruption } from '../../errors.js';
import { checkDigest, hashStream } from '../../digest.js';
import type { Key } from '../../key.js';
import { type Entry, hasKey, type Location, type LocationLike, uniqueEntries } from '../interface.js';
import { isLocation, resolveLocation } from '../resolve.js';

export interface LevelOptions {
  /** Writes may go to this level. @default true */
  write?: boolean;
  /** A value found in a lower level is copied into this one. @default true */
  replicate?: boolean;
  /** A read served by an upper level still updates this level's last-used time. @default false */
  touch?: boolean;
  /**
   * Every write is stored in this level too, even when an upper level took it: for a level shared
   * by several machines (`Levels(Disk(local), Level(S3(shared), { writeThrough: true }))`), so
   * that what one machine writes the others find. The write is copied from the upper level's
   * stored value once that level has it; when this level declines, the write is declined (null),
   * so that a write the other machines cannot see is never reported as stored. Implies `write`.
   * @default false: as tarn, a write goes to the first writable level that accepts, and only there
   */
  writeThrough?: boolean;
  /** A name for events and errors. @default the location's name */
  name?: string;
}

/** One level of a Levels hierarchy: a location and how it takes part. */
export class Level {
  readonly location: Location;
  readonly write: boolean;
  readonly replicate: boolean;
  readonly touch: boolean;
  readonly writeThrough: boolean;
  readonly name: string;

  constructor(location: LocationLike, options: LevelOptions = {}) {
    this.location = resolveLocation(location);
    this.writeThrough = options.writeThrough ?? false;
    if (this.writeThrough && options.write === false) throw new ConfigError('Level: writeThrough needs write (a write-through level is written)');
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
  /**
   * readBatch asks the levels for this many keys at a time: each level's own readBatch gets the
   * keys still missing (one pipeline on Redis), and the answers come back in the order asked.
   * @default 1024
   */
  batchSize?: number;
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
  operation: 'read' | 'write' | 'replicate' | 'touch' | 'delete' | 'has';
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
  checkDigest(value.key, await hashStream(value.stream()), where);
}

function isOptions(value: unknown): value is LevelsOptions {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype && !isLocation(value);
}

/**
 * Runs `task` on every item, at most `limit` at once. After a failure no new task starts; the
 * first failure is thrown once every task already started has finished (none is left running).
 */
async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      try {
        await task(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/** Copies up from one level's batch answer run this many at once (Redis sends what one tick queued in one write). */
const COPIES_IN_FLIGHT = 16;

/**
 * A cache hierarchy with copy-on-read, as tarn's Levels: reads search the levels in order and copy
 * a value found in a lower level into the upper levels that replicate (verifying the bytes as they
 * are copied); writes go to the first writable level that accepts, and to every `writeThrough`
 * level below it.
 *
 * Emits 'skip' (SkipEvent) when `skipFailing` lets a failing level be passed over, 'stat:hit' and
 * 'stat:miss' (LevelStatEvent) per level asked on a read, and 'promote' (PromoteEvent) when a
 * value is copied up. The same are logged with `DEBUG=cairn:levels` (see debug.ts).
 */
export class Levels extends EventEmitter implements Location {
  readonly levels: readonly Level[];
  readonly name: string;
  private readonly skipFailing: boolean;
  private readonly batchSize: number;
  private readonly counters: LevelStats[];
  /** Per level: whether some level above it replicates (else a value found there is not copied anywhere). */
  private readonly copiedUpFrom: boolean[];
  /** Per level: whether a value found there is served as it is (nothing to copy it into, check or touch). */
  private readonly servedAsFound: boolean[];

  constructor(...items: (Level | LocationLike | LevelsOptions)[]) {
    super();
    const options = items.length > 0 && isOptions(items[items.length - 1]) ? (items.pop() as LevelsOptions) : {};
    this.levels = (items as (Level | LocationLike)[]).map((item) => (item instanceof Level ? item : new Level(item)));
    this.skipFailing = options.skipFailing ?? false;
    const batchSize = options.batchSize ?? 1024;
    if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new ConfigError(`Levels: batchSize must be a positive integer, not ${batchSize}`);
    this.batchSize = batchSize;
    this.name = `Levels(${this.levels.map((level) => level.name).join(', ')})`;
    this.counters = this.levels.map((level) => ({ name: level.name, hits: 0, misses: 0, bytes: 0, errors: 0 }));
    this.copiedUpFrom = this.levels.map((_, index) => this.levels.slice(0, index).some((level) => level.replicate));
    this.servedAsFound = this.levels.map(
      (_, index) =>
        !this.copiedUpFrom[index] &&
        !(this.skipFailing && index < this.levels.length - 1) &&
        !this.levels.slice(index + 1).some((level) => level.touch),
    );
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
      const served = await this.serve(value, index);
      if (served !== null) return served;
    }
    return null;
  }

  /**
   * A value found in level `index`: copied into the upper levels, checked when nothing else checks
   * it, the levels below touched. What the read returns, or null when this level's copy turned out
   * bad and was skipped (the search goes on below).
   */
  private async serve(value: Value, index: number): Promise<Value | null> {
    const level = this.levels[index]!;
    const key = value.key;
    let copy: Value | null = null;
    if (this.copiedUpFrom[index]) {
      try {
        copy = await this.replicate(key, asSource(value, false), await this.labelsOf(value, level), index);
      } catch (error) {
        // the copy found its bytes corrupted: this level's value is bad, look further down
        this.skipOrThrow(level, 'read', key, error);
        return null;
      }
    }
    if (copy === null && this.skipFailing && index < this.levels.length - 1) {
      // nothing copied it, so nothing checked it: once a stream is handed out, a corruption
      // found at its end can no longer fall back to the level below, so check it here
      try {
        await checkValue(value, level.name);
      } catch (error) {
        this.skipOrThrow(level, 'read', key, error);
        return null;
      }
    }
    await this.touchBelow(key, index);
    return copy ?? value;
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    for (let index = 0; index < this.levels.length; index++) {
      const level = this.levels[index]!;
      const copied = this.copiedUpFrom[index]!;
      let bytes: Buffer | null;
      let labels: string[] | null = null;
      try {
        if (level.location.readBytes && !copied) {
          bytes = await level.location.readBytes(key);
        } else {
          // a value to copy up needs its labels too: one read gives both (one round trip on Redis),
          // where readBytes and then read would fetch the value twice
          const value = await level.location.read(key);
          bytes = value === null ? null : await value.bytes();
          if (value !== null && copied) labels = await value.labels();
        }
      } catch (error) {
        this.skipOrThrow(level, 'read', key, error);
        continue;
      }
      this.count(index, bytes === null ? null : bytes.length, key);
      if (bytes === null) continue;
      if (copied) {
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

  /** True when some level holds the key; nothing is read, copied or marked as used. */
  async has(key: Key): Promise<boolean> {
    for (const level of this.levels) {
      try {
        if (await hasKey(level.location, key)) return true;
      } catch (error) {
        this.skipOrThrow(level, 'has', key, error);
      }
    }
    return false;
  }

  /**
   * Every key once, in the order asked. `batchSize` keys at a time, each level's own readBatch is
   * asked for the keys still missing (so a Redis level answers them in one pipeline), and the
   * values found below are copied up as `read` copies them.
   */
  async *readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    const seen = new Set<Key>();
    let chunk: Key[] = [];
    for (const key of keys) {
      if (seen.has(key)) continue;
      seen.add(key);
      chunk.push(key);
      if (chunk.length >= this.batchSize) {
        yield* await this.readChunk(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) yield* await this.readChunk(chunk);
  }

  /** The values of `keys` (distinct), asking the levels one after another for those still missing. */
  private async readChunk(keys: readonly Key[]): Promise<[Key, Value | null][]> {
    const found = new Map<Key, Value>();
    let remaining = keys;
    for (let index = 0; index < this.levels.length && remaining.length > 0; index++) {
      const level = this.levels[index]!;
      const hits: Value[] = [];
      let answering = true;
      try {
        for await (const [key, value] of level.location.readBatch(remaining)) {
          answering = false;
          this.count(index, value === null ? null : value.size ?? 0, key);
          if (value !== null) hits.push(value);
          answering = true;
        }
      } catch (error) {
        if (!answering) throw error;
        // the level failed part way: what it answered is kept, the rest is asked of the levels below
        this.skipOrThrow(level, 'read', null, error);
      }
      if (this.servedAsFound[index]) for (const value of hits) found.set(value.key, value);
      else {
        await eachLimited(hits, this.copiedUpFrom[index] ? COPIES_IN_FLIGHT : 1, async (value) => {
          const served = await this.serve(value, index);
          if (served !== null) found.set(value.key, served);
        });
      }
      remaining = remaining.filter((key) => !found.has(key));
    }
    return keys.map((key): [Key, Value | null] => [key, found.get(key) ?? null]);
  }

  /**
   * Stores the value in the first writable level that accepts it, then in every `writeThrough`
   * level below that one (copied from the stored value). The value stored in the first level, or
   * null when every level declined or a write-through level did.
   */
  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    for (let index = 0; index < this.levels.length; index++) {
      const level = this.levels[index]!;
      if (!level.write) continue;
      let stored: Value | null;
      try {
        stored = await level.location.write(key, source, labels);
      } catch (error) {
        this.skipOrThrow(level, 'write', key, error);
        continue;
      }
      if (stored === null) {
        // a write the machines sharing this level could not see is not a stored write
        if (level.writeThrough) return null;
        continue;
      }
      return (await this.writeThrough(key, stored, labels, index)) ? stored : null;
    }
    return null;
  }

  /**
   * Copies a value just stored in level `index` into every write-through level below it, from the
   * stored value (the copy just made in that level, verified again as it is copied): the source is
   * not held past the write that took it. False when one of them declined.
   */
  private async writeThrough(key: Key, stored: Value, labels: readonly string[] | null | undefined, index: number): Promise<boolean> {
    for (let lower = index + 1; lower < this.levels.length; lower++) {
      const level = this.levels[lower]!;
      if (!level.writeThrough) continue;
      let copy: Value | null;
      try {
        copy = await level.location.write(key, asSource(stored, false), labels);
      } catch (error) {
        this.skipOrThrow(level, 'write', key, error);
        continue;
      }
      if (copy === null) return false;
    }
    return true;
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
   * highest level that took it (what its write returned: nothing is read back), or null.
   */
  private async replicate(key: Key, source: Source, labels: string[] | null, index: number): Promise<Value | null> {
    let top: Value | null = null;
    for (let upper = index - 1; upper >= 0; upper--) {
      const level = this.levels[upper]!;
      if (!level.replicate) continue;
      let copy: Value | null;
      try {
        copy = await level.location.write(key, source, labels);
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

  private skipOrThrow(level: Level, operation: SkipEvent['operation'], key: Key | null, error: unknown): void {
    const counter = this.counters[this.levels.indexOf(level)];
    if (counter) counter.errors++;
    if (!this.skipFailing) throw error;
    const event: SkipEvent = { level: level.name, operation, key, error };
    if (log.enabled) log(`skip ${level.name} ${operation} ${key ?? ''}: ${(error as Error)?.message ?? error}`);
    this.emit('skip', event);
  }
}

/**
 * A tarn lake over any transport: the format is implemented here once (config.yml, the layout,
 * publishing through a temp file, the integrity rule for a blob already in place, labels,
 * last-used marks, the contents walk, tarn's old folder blobs), and a transport (LakeFiles) only
 * moves files. SFTP, SCP and Nginx are this location over their transport.
 */
import type { Readable } from 'node:stream';
import type { Source, Value } from '../../blob.js';
import { checkDigest, createDigest, type Digest, digestStream, hashStream, verifyBytes } from '../../digest.js';
import { AuthenticationError, ConfigError, ConnectionError, LocationError, StorageCorruption, TimeoutError } from '../../errors.js';
import { assertKey, type Key } from '../../key.js';
import { type Entry, type Location, type LocationReadOptions, readEach } from '../interface.js';
import { KeyQueue } from '../key-queue.js';
import { CONFIG_NAME, DEFAULT_LEVELS, type LakeSettings, lakeConfigText, lakeSettings } from './config.js';
import { type FileInfo, type LakeFiles, type LakeListing, type LakeWriter, WrongLength } from './files.js';
import { labelsText, mergeLabels, parseLabels } from './labels.js';
import { withLabelsLock } from './labels-lock.js';
import { LEGACY_DATA, TEMP_FOLDER, TOOL_MODE } from './layout.js';
import { TouchThrottle } from './touch-throttle.js';

export interface LakeOptions {
  /**
   * Folder layout used when the lake is created (an empty or missing folder); an existing lake's
   * config.yml decides, and must agree when this is given. @default [1, -1]
   */
  levels?: number[];
  /** A key's last-used mark is updated by reads at most once per this many ms per process. @default 60000 */
  touchInterval?: number;
}

/** Where a blob's bytes are: its path, or `<path>/data` for a folder blob of an old tarn lake. */
interface Found {
  path: string;
  size: number | null;
}

export class LakeLocation implements Location {
  private settingsPromise: Promise<LakeSettings> | null = null;
  private readonly writes = new KeyQueue();
  private readonly throttle: TouchThrottle;

  constructor(
    readonly name: string,
    private readonly files: LakeFiles,
    private readonly lakeOptions: LakeOptions = {},
    /** How config.yml is named in errors (a remote path, a URL). */
    private readonly configWhere = `${name}/${CONFIG_NAME}`,
  ) {
    this.throttle = new TouchThrottle(lakeOptions.touchInterval);
  }

  /** The path of `key`'s blob relative to the lake root (whether or not it exists). */
  protected async blobPath(key: Key): Promise<string> {
    assertKey(key);
    return (await this.settings()).layout.blob(key);
  }

  async read(key: Key, options?: LocationReadOptions): Promise<Value | null> {
    assertKey(key);
    const settings = await this.settings();
    const found = await this.find(key, settings, options?.use !== false);
    return found === null ? null : this.valueAt(key, found);
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    assertKey(key);
    const settings = await this.settings();
    const path = settings.layout.blob(key);
    let bytes: Buffer | null;
    try {
      bytes = await this.readBlob(key, path, null);
    } catch (error) {
      // a folder blob of an old tarn lake cannot be read as a file (a server that is down is not one)
      if (!(await this.isFolderBlob(path, error))) throw error;
      bytes = await this.readBlob(key, `${path}/${LEGACY_DATA}`, null);
    }
    if (bytes === null) return null;
    verifyBytes(key, bytes, this.name);
    const writer = this.files.writer;
    if (writer && settings.keepUsage && this.throttle.due(key)) await writer.touch(settings.layout.mark(key), new Date());
    return bytes;
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  async has(key: Key): Promise<boolean> {
    assertKey(key);
    return (await this.find(key, await this.settings(), false)) !== null;
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    assertKey(key);
    const writer = this.files.writer;
    if (!writer) return null; // read-only: declined
    const settings = await this.settings();
    const found = await this.writes.run(key, () => this.writeOnce(key, settings, writer, source));
    this.throttle.record(key);
    if (labels && labels.length > 0 && settings.keepLabels) await this.addLabels(key, settings, writer, labels);
    // a source of unknown size costs a stat (a download is paced by the size)
    const size = found.size ?? source.size ?? (await this.files.stat(found.path))?.size;
    if (size === undefined) throw new LocationError(`${this.name}: ${key} vanished right after it was written`, this.name, { code: 'ERR_VANISHED' });
    return this.valueAt(key, { path: found.path, size });
  }

  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    const writer = this.files.writer;
    if (!writer) return false; // read-only: nothing is deleted
    const { layout } = await this.settings();
    const path = layout.blob(key);
    const tools = [layout.mark(key), layout.labels(key)];
    // one round trip where the transport can: the blob, then its mark and labels
    const outcome = writer.removeBlob ? await writer.removeBlob(path, tools) : null;
    if (outcome === 'missing') return false;
    if (outcome !== 'removed' && !(await this.removeBlobFile(writer, path))) return false;
    this.throttle.forget(key);
    if (outcome !== 'removed') await Promise.all(tools.map((tool) => writer.remove(tool)));
    return true;
  }

  async touch(key: Key): Promise<boolean> {
    assertKey(key);
    const writer = this.files.writer;
    if (!writer) return false; // read-only: marks are not updated
    const settings = await this.settings();
    const path = settings.layout.blob(key);
    const mark = settings.keepUsage ? settings.layout.mark(key) : null;
    const now = new Date();
    const info = await this.statAndTouch(writer, path, mark, now);
    if (info === null) return false;
    this.throttle.record(key, now.getTime());
    return true;
  }

  async *contents(): AsyncIterable<Entry> {
    const settings = await this.settings();
    yield* this.files.listLake ? this.entriesOf(await this.files.listLake(), settings) : this.walk(settings);
  }

  async close(): Promise<void> {
    await this.files.close();
  }

  /** Reads (or creates, as tarn does) config.yml, once; a failure (server down) is not remembered. */
  protected settings(): Promise<LakeSettings> {
    if (!this.settingsPromise) {
      this.settingsPromise = this.loadSettings();
      this.settingsPromise.catch(() => (this.settingsPromise = null));
    }
    return this.settingsPromise;
  }

  private async loadSettings(): Promise<LakeSettings> {
    const writer = this.files.writer;
    await writer?.prepare();
    let text = await this.files.readText(CONFIG_NAME);
    if (text === null) {
      if (!writer) throw new ConfigError(`${this.name}: there is no ${CONFIG_NAME} at ${this.configWhere}: is it the root of a lake?`);
      const draft = lakeConfigText(this.lakeOptions.levels ?? DEFAULT_LEVELS);
      const tmp = `${TEMP_FOLDER}/config.${process.pid}.${Date.now()}`;
      await writer.writeText(tmp, draft, 0o644);
      // never replaces: when another client created the config first, theirs wins
      if (await writer.publish(tmp, CONFIG_NAME, null)) text = draft;
      else {
        await writer.remove(tmp);
        text = await this.files.readText(CONFIG_NAME);
        if (text === null) throw new LocationError(`${this.name}: cannot create ${this.configWhere}`, this.name);
      }
    }
    return lakeSettings(text, this.configWhere, this.lakeOptions.levels);
  }

  /** Where the bytes of `key` are, or null; a read that is a use moves the mark (throttled). */
  private async find(key: Key, settings: LakeSettings, use: boolean): Promise<Found | null> {
    const { layout } = settings;
    const path = layout.blob(key);
    const writer = this.files.writer;
    const now = Date.now();
    const mark = writer && use && settings.keepUsage && this.throttle.due(key, now) ? layout.mark(key) : null;
    const info = mark !== null ? await this.statAndTouch(writer!, path, mark, new Date(now)) : await this.files.stat(path);
    if (info === null) {
      if (mark !== null) this.throttle.forget(key);
      return null;
    }
    if (!info.isDirectory) return { path, size: info.size };
    const legacy = `${path}/${LEGACY_DATA}`;
    const data = await this.files.stat(legacy);
    return data === null ? null : { path: legacy, size: data.size };
  }

  /** Removes a blob's file, or a folder blob of an old tarn lake; false when there was neither. */
  private async removeBlobFile(writer: LakeWriter, path: string): Promise<boolean> {
    let removed: boolean;
    try {
      removed = await writer.remove(path);
    } catch (error) {
      if (!(await this.isFolderBlob(path, error))) throw error;
      removed = false;
    }
    if (!removed && (await this.files.stat(path))?.isDirectory) {
      removed = await writer.remove(`${path}/${LEGACY_DATA}`);
      await writer.removeDir(path);
    }
    return removed;
  }

  /** True when `error` came from treating a folder blob of an old tarn lake as a file. */
  private async isFolderBlob(path: string, error: unknown): Promise<boolean> {
    if (error instanceof ConnectionError || error instanceof TimeoutError || error instanceof AuthenticationError) return false;
    return (await this.files.stat(path).catch(() => null))?.isDirectory === true;
  }

  private async statAndTouch(writer: LakeWriter, path: string, mark: string | null, time: Date, digest = false): Promise<FileInfo | null> {
    if (writer.statAndTouch) return writer.statAndTouch(path, mark, time, digest);
    const info = await this.files.stat(path);
    if (info !== null && mark !== null) await writer.touch(mark, time);
    return info;
  }

  /**
   * Stores the bytes unless an intact copy is in place. The one integrity rule: a blob in place
   * counts only when its bytes hash to the key (whatever its size); a corrupted one is replaced.
   */
  private async writeOnce(key: Key, settings: LakeSettings, writer: LakeWriter, source: Source): Promise<Found> {
    const { layout } = settings;
    const path = layout.blob(key);
    const mark = settings.keepUsage ? layout.mark(key) : null;
    const now = new Date();
    let existing = await this.statAndTouch(writer, path, mark, now, true);
    if (existing?.isDirectory) {
      const legacy = `${path}/${LEGACY_DATA}`;
      if (await this.isIntact(key, legacy, writer)) return { path: legacy, size: null };
      // a corrupted folder blob: its place goes to a plain blob
      await writer.remove(legacy);
      await writer.removeDir(path);
      existing = null;
    } else if (existing !== null) {
      const intact = existing.digest !== undefined ? existing.digest === key : await this.isIntact(key, path, writer, existing.size);
      if (intact) return { path, size: existing.size };
    }
    const tmp = layout.tmp(key.slice(0, 16));
    try {
      await this.putVerified(key, tmp, writer, source);
      if (existing !== null) await writer.replace(tmp, path, mark);
      else if (!(await writer.publish(tmp, path, mark))) {
        // another writer published it meanwhile: theirs counts when intact
        if (await this.isIntact(key, path, writer)) await writer.remove(tmp);
        else await writer.replace(tmp, path, mark);
      }
    } catch (error) {
      await writer.remove(tmp).catch(() => undefined);
      throw error;
    }
    return { path, size: null };
  }

  /** Streams the source into `tmp`, hashing it on the way unless it is known to hash to the key. */
  private async putVerified(key: Key, tmp: string, writer: LakeWriter, source: Source): Promise<void> {
    const hash = source.verified ? null : createDigest();
    const stream = source.stream();
    try {
      await writer.putTemp(tmp, hashedPieces(stream, hash), source.size);
    } catch (error) {
      if (!(error instanceof WrongLength)) throw error;
      if (hash) throw new StorageCorruption(key, null, `a copy into ${this.name} (${error.message})`, { cause: error });
      throw new LocationError(`${this.name}: ${error.message}`, this.name, { cause: error });
    } finally {
      stream.destroy();
    }
    if (hash) checkDigest(key, hash.digest(), `a copy into ${this.name}`);
  }

  /** True when the file at `path` hashes to `key`: computed where it is when the transport can, else here from a stream. */
  private async isIntact(key: Key, path: string, writer: LakeWriter, size: number | null = null): Promise<boolean> {
    const remote = await writer.digest?.(path);
    if (remote !== undefined) return remote === key;
    const known = size ?? (await this.files.stat(path))?.size;
    if (known === undefined) return false;
    const stream = this.files.openRead(path, known);
    try {
      return (await hashStream(stream)) === key;
    } catch (error) {
      if (error instanceof WrongLength) return false;
      throw error;
    } finally {
      stream.destroy();
    }
  }

  /** A Value of `key` whose bytes are read (and checked against the key) only when used. */
  private valueAt(key: Key, found: Found): Value {
    const { name } = this;
    const where = (error: unknown) => this.corruptionOf(key, error);
    return {
      key,
      size: found.size,
      path: null,
      stream: () => {
        const check = digestStream({ expect: key, where: name });
        const raw: Readable = this.files.openRead(found.path, found.size);
        raw.on('error', (error) => check.destroy(where(error)));
        check.on('close', () => raw.destroy());
        return raw.pipe(check);
      },
      bytes: async () => {
        const bytes = await this.readBlob(key, found.path, found.size);
        if (bytes === null) throw new LocationError(`${name}: ${key} vanished while it was read`, name, { code: 'ERR_VANISHED' });
        verifyBytes(key, bytes, name);
        return bytes;
      },
      labels: () => this.readLabels(key),
    };
  }

  private async readBlob(key: Key, path: string, size: number | null): Promise<Buffer | null> {
    try {
      return await this.files.readFile(path, size);
    } catch (error) {
      throw this.corruptionOf(key, error);
    }
  }

  /** A body of the wrong length is a corrupted value; other errors pass as they are. */
  private corruptionOf(key: Key, error: unknown): Error {
    if (error instanceof WrongLength) return new StorageCorruption(key, null, `${this.name} (${error.message})`, { cause: error });
    return error as Error;
  }

  private async readLabels(key: Key): Promise<string[] | null> {
    const settings = await this.settings();
    if (!settings.keepLabels) return null;
    const text = await this.files.readText(settings.layout.labels(key));
    return text === null ? null : parseLabels(text, this.name);
  }

  /**
   * Adds labels to the key's set (tarn's JsonLabels keeps the union), replacing the file
   * atomically; the read-merge-write holds the key's labels lock, so no other writer's labels are lost.
   */
  private async addLabels(key: Key, settings: LakeSettings, writer: LakeWriter, labels: readonly string[]): Promise<void> {
    // most writes repeat labels already stored: no lock needed to see that
    if (mergeLabels(await this.readLabels(key), labels) === null) return;
    const path = settings.layout.labels(key);
    const io = { createExclusive: writer.createExclusive.bind(writer), remove: writer.remove.bind(writer), readText: this.files.readText.bind(this.files) };
    await withLabelsLock(io, path, async () => {
      const merged = mergeLabels(await this.readLabels(key), labels);
      if (merged !== null) await writer.writeText(path, labelsText(merged), TOOL_MODE, TOOL_MODE);
    });
  }

  /** The contents from a listing of the whole lake. */
  private async *entriesOf(listing: LakeListing, settings: LakeSettings): AsyncIterable<Entry> {
    const { layout } = settings;
    const found: [Key, number][] = [];
    for (const { path, size } of listing.files) {
      const key = layout.keyOf(path.split('/'));
      if (key !== null) found.push([key, size]);
    }
    found.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    for (const [key, size] of found) {
      const labels = settings.keepLabels ? listing.labels.get(layout.labels(key)) : undefined;
      yield {
        key,
        location: this,
        meta: {
          size,
          labels: labels === undefined ? null : parseLabels(labels, this.name),
          lastUsed: settings.keepUsage ? (listing.marks.get(layout.mark(key)) ?? null) : null,
        },
      };
    }
  }

  /**
   * The contents by walking the folders, one listing per folder; marks and labels are listed once
   * per prefix folder. A name from the server goes into the next path only when it is a part of
   * the layout (hex of the level's width): never `..`, a path or another host.
   */
  private async *walk(settings: LakeSettings): AsyncIterable<Entry> {
    const { layout } = settings;
    const marks = new Map<string, Map<string, Date>>();
    const labelled = new Map<string, Set<string>>();
    const marksIn = async (prefix: string) => {
      let found = marks.get(prefix);
      if (!found) {
        found = new Map();
        if (settings.keepUsage) {
          for (const entry of await this.files.list(`tools/usage/${prefix}`)) if (entry.mtime) found.set(entry.name, entry.mtime);
        }
        marks.set(prefix, found);
      }
      return found;
    };
    const labelledIn = async (prefix: string) => {
      let found = labelled.get(prefix);
      if (!found) {
        found = new Set(settings.keepLabels ? (await this.files.list(`tools/labels/${prefix}`)).map((entry) => entry.name) : []);
        labelled.set(prefix, found);
      }
      return found;
    };
    const walkDir = async function* (this: LakeLocation, dir: string, parts: string[]): AsyncIterable<Entry> {
      const entries = (await this.files.list(dir)).sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const entry of entries) {
        if (typeof entry.name !== 'string' || !layout.isPart(parts.length, entry.name)) continue;
        const next = [...parts, entry.name];
        if (next.length < layout.levels.length) {
          if (entry.isDirectory) yield* walkDir.call(this, dir === '' ? entry.name : `${dir}/${entry.name}`, next);
          continue;
        }
        const key = layout.keyOf(next);
        if (key === null || !entry.isFile) continue;
        const prefix = key.slice(0, 2);
        const rest = key.slice(2);
        const labels = (await labelledIn(prefix)).has(`${rest}.json`) ? await this.readLabels(key) : null;
        yield { key, location: this, meta: { size: entry.size, labels, lastUsed: (await marksIn(prefix)).get(rest) ?? null } };
      }
    };
    yield* walkDir.call(this, '', []);
  }
}

/** The pieces of a stream as Buffers, each hashed as it is taken (when `hash` is given). */
async function* hashedPieces(stream: Readable, hash: Digest | null): AsyncIterable<Buffer> {
  for await (const piece of stream as AsyncIterable<Uint8Array>) {
    const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    hash?.update(bytes);
    yield bytes;
  }
}

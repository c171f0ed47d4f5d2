import { randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  existsSync,
  constants as fsConstants,
  createReadStream,
  fstatSync,
  fdatasync as fdatasyncCallback,
  mkdirSync,
  openSync,
  promises as fsp,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { PassThrough } from 'node:stream';
import { type Source, type Value, verifyBytes, verifyingStream } from '../../blob.js';
import { ConfigError, LocationError, StorageCorruption, storageErrorCode } from '../../errors.js';
import { assertKey, type Key } from '../../key.js';
import { parseFraction, parseSize, type Size } from '../../size.js';
import { trackTempFolder } from '../../storage/temp-cleanup.js';
import type { Administered, LakeAdmin } from '../admin.js';
import { DiskAdmin, QUARANTINE } from './disk-admin.js';
import { CONFIG_NAME, DEFAULT_LEVELS } from '../lake/config.js';
import { createDiskConfig, readDiskConfig } from './disk-config.js';
import { deadRunsLeft, undoDeadRuns } from './disk-gc-run.js';
import { type SizeCounter, sizeCounterFor } from './disk-size.js';
import { pinInRuns, readRuns, type RunsView, runsFolder, sameNames } from './disk-gc-runs.js';
import { hashFile, syncDir, writeStreamTo } from './disk-io.js';
import { mergeLabelsFile } from './disk-labels.js';
import { leftByDeadProcess, PROCESS_TAG } from './disk-liveness.js';
import { ensureToolDir, MarkQueue, markPath, markSync, ownToolFile } from './disk-marks.js';
import { parseLabels } from '../lake/labels.js';
import { LakeLayout, TOOL_MODE } from '../lake/layout.js';
import { TouchThrottle } from '../lake/touch-throttle.js';
import { Owner } from './disk-owner.js';
import { promisify } from 'node:util';
import { type Entry, type Location, type LocationReadOptions, type Meta, readEach } from '../interface.js';
import { KeyQueue } from '../key-queue.js';

export interface DiskOptions {
  /**
   * tarn's folder layout: bytes of the digest per folder level, -1 for the rest.
   * Used when the lake is created; an existing lake's config.yml must agree.
   * @default [1, -1]  (`ab/cdef…`)
   */
  levels?: number[];
  /** Writes are declined once the lake holds this many bytes (a number or '500GB'). @default no limit (or tarn's `max_size`) */
  maxSize?: Size;
  /** Writes are declined when they would leave less free space on the filesystem. @default 0 (or tarn's `free_disk_size`) */
  minFree?: Size;
  /** Writes are declined when this fraction of the filesystem would be in use (the seed's `limit=0.9`). @default 1 */
  maxUsage?: number;
  /**
   * Flush each blob before it is renamed into place, and its folder after, so an acknowledged write
   * survives a power cut. @default true
   */
  fsync?: boolean;
  /** Hash what `bytes()` and `stream()` read and fail with StorageCorruption on a mismatch. @default true */
  verifyReads?: boolean;
  /** A key's last-used mark is updated at most once per this many milliseconds per process. @default 60000 */
  touchInterval?: number;
  /**
   * Read and write values up to 64 KiB with synchronous calls (fsync still runs off the main
   * thread). On a local filesystem these take microseconds, less than a trip to libuv's thread
   * pool; turn it off for a network mount whose calls can stall. @default true
   */
  syncSmallIo?: boolean;
  /**
   * A group (name or gid) given to every file and folder this process creates in the lake, for a
   * lake shared by a group. Files and folders of other users are never changed.
   * @default none: files get the folder's group (the root's, when it is setgid)
   */
  group?: string | number;
  /**
   * Folders this process creates are group-writable and setgid (new files inherit their group);
   * labels and last-used marks are group-writable, so every member can label, touch and evict.
   * Blobs stay read-only. @default true when the lake's root folder is group-writable
   */
  groupWritable?: boolean;
  /**
   * Create a key's last-used mark when its blob is written. Off, a new blob has no mark until it
   * is read or touched, and its mtime stands for its last use (`lastUsed()`, `contents()` and gc
   * read it so): a write creates one file instead of two. tarn and the listings of remote readers
   * (Nginx, Scp, Sftp) see no last use for such a key. Writing a value already stored refreshes its
   * mark either way. @default true
   */
  markOnWrite?: boolean;
}

const SPACE_CHECK_MS = 500;
/** Values up to this size take the synchronous path when `syncSmallIo` is on. */
const SYNC_LIMIT = 64 * 1024;
const fdatasyncFd = promisify(fdatasyncCallback);
/** Values up to this size are written and compared from memory. */
const SMALL_VALUE = 1024 * 1024;
/** tarn's oldest layout kept each blob as `data` inside a folder named by its key; tarn 0.14 still reads it. */
const LEGACY_DATA = 'data';

/**
 * Temp files are named `<key prefix>.<this tag><counter>`: unique per process and thread without
 * random bytes per write, and naming their process, so that the next open removes those of a
 * killed one at once.
 */
const TEMP_TAG = `${PROCESS_TAG}.`;
/** Names in `.tmp/` made by this process (any of its threads: the tag's last part is per thread): removed when it is interrupted. */
const OWN_TEMP = new RegExp(`^[^.]+\\.${PROCESS_TAG.replace(/-[0-9a-f]{6}$/, '')}-[0-9a-f]{6}\\.[0-9a-z]+$`);
let tempCount = 0;

/** What a write did: stored a new blob or found the value already stored (with the blob's size), or declined it. */
type WriteOutcome = { stored: 'new' | 'present'; size: number; legacy?: true } | 'declined';

/** Errors that mean "this lake is read-only for us": usage marks are then not kept. */
const READ_ONLY_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/** The error of checking that `dir` is writable, or null when it is. */
function writeProblem(dir: string): unknown {
  try {
    accessSync(dir, fsConstants.W_OK);
    return null;
  } catch (error) {
    return error;
  }
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * A folder on a local (or mounted) filesystem, laid out as tarn lays out its lakes:
 * `config.yml` at the root, blobs at `ab/cdef…` (read-only files), temp files under `.tmp/`,
 * last-used marks under `tools/usage/` and labels under `tools/labels/`.
 */
export class Disk implements Location, Administered {
  readonly root: string;
  readonly name: string;
  readonly levels: readonly number[];
  readonly tmpDir: string;
  private readonly rootSlash: string;

  private readonly fileMode: number;
  private readonly fsync: boolean;
  private readonly verifyReads: boolean;
  private readonly maxSize: number | null;
  private readonly minFree: number;
  private readonly maxUsage: number;
  private readonly syncSmallIo: boolean;
  private keepUsage: boolean;
  private readonly keepLabels: boolean;
  private readonly markOnWrite: boolean;

  private readonly owner: Owner;
  private readonly usageRoot: string;
  private readonly marks: MarkQueue;
  private readonly throttle: TouchThrottle;
  private readonly layout: LakeLayout;
  private readonly writes = new KeyQueue();
  private readonly labelWrites = new KeyQueue();
  private readonly gcRuns: string;
  /** The names in the gc runs folder when a write last read them (see write()). */
  private runsSeen: RunsView;
  /** Putting back what a killed gc had moved aside (started by the constructor when one is found). */
  private recovery: Promise<void> | null = null;
  private usedBytes: Promise<number> | null = null;
  /** tarn's size tool of config.yml (RedisSize), kept up to date by every write and delete; null for none. */
  private readonly sizeCounter: SizeCounter | null;
  /** Why `.tmp/` could not be created (a lake this process may only read), or null. */
  private noTmp: unknown = null;
  private space: { at: number; free: number; total: number } | null = null;
  private adminView: DiskAdmin | null = null;

  /** The options this Disk was made with (another thread or process opens the same lake with them). */
  readonly options: Readonly<DiskOptions>;

  constructor(root: string, options: DiskOptions = {}) {
    this.root = resolve(root);
    this.options = { ...options };
    this.name = `Disk(${this.root})`;
    this.rootSlash = this.root.endsWith(sep) ? this.root : this.root + sep;
    try {
      mkdirSync(this.root, { recursive: true });
    } catch (error) {
      throw new LocationError(`Cannot create the lake folder ${this.root}`, this.name, { cause: error });
    }
    const rootMode = statSync(this.root).mode & 0o777;
    let config = readDiskConfig(this.root);
    if (config === null) {
      createDiskConfig(this.root, options.levels ?? DEFAULT_LEVELS, rootMode);
      config = readDiskConfig(this.root)!;
    }
    if (options.levels && JSON.stringify(options.levels) !== JSON.stringify(config.levels)) {
      throw new ConfigError(
        `The levels option ${JSON.stringify(options.levels)} does not match ${JSON.stringify(config.levels)} ` +
          `in ${join(this.root, CONFIG_NAME)}`,
      );
    }
    this.levels = config.levels;
    this.layout = new LakeLayout(config.levels);
    this.sizeCounter = sizeCounterFor(config.size, join(this.root, CONFIG_NAME), this.name);
    this.keepUsage = config.usage === 'StatUsage';
    this.keepLabels = config.labels === 'JsonLabels';
    this.maxSize = options.maxSize !== undefined ? parseSize(options.maxSize, 'maxSize') : config.maxSize;
    this.minFree = options.minFree !== undefined ? parseSize(options.minFree, 'minFree') : config.freeDiskSize;
    this.maxUsage = options.maxUsage !== undefined ? parseFraction(options.maxUsage, 'maxUsage') : 1;
    this.fsync = options.fsync ?? true;
    this.verifyReads = options.verifyReads ?? true;
    this.throttle = new TouchThrottle(options.touchInterval);
    this.syncSmallIo = options.syncSmallIo ?? true;
    this.markOnWrite = options.markOnWrite ?? true;
    const gid = options.group === undefined ? null : groupId(options.group);
    const shared = options.groupWritable ?? (rootMode & 0o020) !== 0;
    const dirMode = shared ? rootMode | 0o2070 : rootMode;
    this.owner = new Owner({ gid, shared, dirMode });
    this.fileMode = rootMode & 0o444;
    if (gid !== null || shared) {
      // only a root we own is changed: never chmod another user's folder
      if (statSync(this.root).uid === process.getuid?.()) this.owner.own(this.root, dirMode);
      const config = join(this.root, CONFIG_NAME);
      if (statSync(config).uid === process.getuid?.()) this.owner.own(config, null);
    }
    this.tmpDir = join(this.root, '.tmp');
    try {
      this.owner.ensureDirSync(this.tmpDir);
      trackTempFolder(this.tmpDir, OWN_TEMP);
    } catch (error) {
      // a lake we may only read (another user's, a read-only mount, a tarn lake without .tmp/):
      // reading needs no .tmp/, and a write reports why there is none (a recursive mkdir on a
      // read-only mount says ENOENT: access() tells EROFS or EACCES)
      if (!existsSync(this.root)) throw this.failure(`Cannot open the lake`, error);
      this.noTmp = writeProblem(this.root) ?? error;
    }
    this.usageRoot = join(this.root, 'tools', 'usage');
    this.makeToolFolders();
    removeLeftTempFiles(this.tmpDir);
    this.gcRuns = runsFolder(this.root);
    this.runsSeen = readRuns(this.gcRuns, null, false);
    // a gc killed midway holds blobs in its folder: put them back now, not at the next gc
    // (on a lake this process may not write, recover() warns and leaves it to the next gc)
    if (deadRunsLeft(this.root)) this.recovery = this.recover();
    this.marks = new MarkQueue(this.usageRoot, this.owner.ownership, (error) => this.backgroundUsageFailed(error));
  }

  /**
   * Moves the blob of `key` out of the layout into `folder` (a folder of the lake such as
   * `.quarantine`, relative to the root, or an absolute path inside the lake), under `name` (by
   * default a new unique name), and returns its new path; null when it is not stored.
   * Its last-used mark is kept (gc checks it after the move). The move is a rename: nothing is copied or deleted.
   */
  async moveAside(key: Key, folder: string, name?: string): Promise<string | null> {
    const file = this.pathOf(key);
    const dir = resolve(this.root, folder);
    const target = join(dir, name ?? `${key}.${Date.now()}.${randomBytes(3).toString('hex')}`);
    let size: number;
    try {
      await this.owner.ensureDir(dir);
      size = (await fsp.stat(file)).size;
      await fsp.rename(file, target);
    } catch (error) {
      // the blob is gone (not a folder that could not be made: on a read-only mount that says ENOENT too)
      if (errno(error) === 'ENOENT' && (error as NodeJS.ErrnoException).syscall !== 'mkdir') return null;
      throw this.failure(`Cannot move ${key} aside`, error);
    }
    if (this.usedBytes) this.usedBytes = this.usedBytes.then((used) => used - size);
    await this.countBytes(-size);
    return target;
  }

  /** Puts back a blob moved aside (unless the key was written again meanwhile); true when put back. */
  async restore(key: Key, movedTo: string): Promise<boolean> {
    const file = this.pathOf(key);
    try {
      await fsp.link(movedTo, file);
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw this.failure(`Cannot restore ${key}`, error);
      await fsp.rm(movedTo, { force: true });
      return false;
    }
    await fsp.rm(movedTo, { force: true });
    const size = (await fsp.stat(file)).size;
    this.account(size, null);
    await this.countBytes(size);
    return true;
  }

  /** Removes the last-used mark and labels of a key whose blob is gone. */
  async forget(key: Key): Promise<void> {
    if ((await this.statOrNull(this.pathOf(key))) !== null) return;
    this.throttle.forget(key);
    await Promise.all([fsp.rm(markPath(this.usageRoot, key), { force: true }), fsp.rm(this.labelsPath(key), { force: true })]);
  }

  /**
   * When `key` was last used: its last-used mark, else the blob's mtime (its write: with
   * `markOnWrite: false` a new blob has no mark until it is used); null when neither exists.
   */
  async lastUsed(key: Key): Promise<Date | null> {
    const mark = this.keepUsage ? await this.statOrNull(markPath(this.usageRoot, key)) : null;
    return mark?.mtime ?? (await this.statOrNull(this.pathOf(key)))?.mtime ?? null;
  }

  /**
   * The labels stored with `key` (null when none), without marking the key as used. Synchronous:
   * a labels file is a few bytes, read in microseconds (bulk copies call this once per key). Right
   * after a Disk is opened on a lake a killed gc left, await `recovered()` first: until then the
   * labels it held aside are not back (a Value's `labels()` waits by itself).
   */
  labelsOf(key: Key): string[] | null {
    assertKey(key);
    if (!this.keepLabels) return null;
    const file = this.labelsPath(key);
    // most keys have no labels: a stat that does not throw is cheaper than a failed open
    if (statSync(file, { throwIfNoEntry: false }) === undefined) return null;
    try {
      return parseLabels(readFileSync(file, 'utf8'), this.name);
    } catch (error) {
      if (errno(error) === 'ENOENT') return null;
      throw this.failure(`Cannot read the labels of ${key}`, error);
    }
  }

  /**
   * Moves a blob that does not match its key into `tools/quarantine/` (where tarn's walk of the
   * lake never looks); returns its new path, or null.
   */
  quarantine(key: Key): Promise<string | null> {
    return this.moveAside(key, QUARANTINE);
  }

  /** The view maintenance uses (du, verify, gc, migrate): see admin.ts and disk-admin.ts. */
  admin(): LakeAdmin {
    return (this.adminView ??= new DiskAdmin(this));
  }

  /** The files in `.tmp/`: writes in progress, and leftovers of writers that crashed. */
  async tempFiles(): Promise<{ path: string; size: number; mtime: Date }[]> {
    const files: { path: string; size: number; mtime: Date }[] = [];
    // no .tmp/ (a lake this process may only read): no writes in progress
    const names = await fsp.readdir(this.tmpDir).catch((error: unknown) => {
      if (errno(error) === 'ENOENT') return [];
      throw this.failure('Cannot list the temp files', error);
    });
    for (const name of names) {
      const stat = await this.statOrNull(join(this.tmpDir, name));
      if (stat !== null) files.push({ path: join(this.tmpDir, name), size: stat.size, mtime: stat.mtime });
    }
    return files;
  }

  /** The file that holds `key` (whether or not it exists). */
  pathOf(key: Key): string {
    assertKey(key);
    // the root is resolved and the parts are hex: joining by hand gives what path.join would, faster
    return this.rootSlash + this.layout.parts(key).join(sep);
  }

  stagingDir(): string {
    return this.tmpDir;
  }

  async read(key: Key, options?: LocationReadOptions): Promise<Value | null> {
    // taken before the look: a recovery that ends during it may have put this blob back after it
    const recovery = this.recovery;
    let file = this.pathOf(key);
    let size: number;
    try {
      let stat = await fsp.stat(file);
      if (stat.isDirectory()) {
        // tarn's oldest layout: the blob is `data` in a folder named by the key
        file = join(file, LEGACY_DATA);
        stat = await fsp.stat(file);
      }
      size = stat.size;
    } catch (error) {
      // a miss while a killed gc's blobs are put back may be one of them: look again after
      if (errno(error) === 'ENOENT') return recovery ? recovery.then(() => this.read(key, options)) : null;
      throw this.failure(`Cannot read ${key}`, error);
    }
    // a read that is not a use (verify, migrate, has) leaves the last-used mark where it was
    if (options?.use !== false) {
      const backlog = this.noteUse(key);
      if (backlog) await backlog;
    }
    return this.fileValue(key, file, size);
  }

  /** True when the key is stored: one stat, without reading the value or marking it used. */
  async has(key: Key): Promise<boolean> {
    assertKey(key);
    const recovery = this.recovery; // taken before the look, as in read()
    if ((await this.blobStat(key)) !== null) return true;
    // a blob that a killed gc moved aside is back once the recovery is done
    if (recovery === null) return false;
    await recovery;
    return (await this.blobStat(key)) !== null;
  }

  /** The value in the blob `file` of `size` bytes: reads it lazily (verified when `verifyReads`). */
  private fileValue(key: Key, file: string, size: number): Value {
    const verify = this.verifyReads;
    return {
      key,
      size,
      path: file,
      stream: () => {
        const stream = createReadStream(file, { highWaterMark: 1024 * 1024 });
        const check = verify ? verifyingStream(key, this.name) : new PassThrough();
        stream.on('error', (error) => check.destroy(this.readFailure(key, error)));
        // a reader that stops early (an abort, a break) closes the file too, not only the check
        check.on('close', () => stream.destroy());
        return stream.pipe(check);
      },
      bytes: async () => {
        const bytes = await fsp.readFile(file).catch((error: unknown) => {
          throw this.readFailure(key, error);
        });
        if (verify) verifyBytes(key, bytes, this.name);
        return bytes;
      },
      // labels a killed gc held aside are back once the recovery is done
      labels: async () => {
        await this.recovery;
        return this.readLabels(key);
      },
    };
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    const recovery = this.recovery; // taken before the look, as in read()
    const file = this.pathOf(key);
    let bytes: Buffer | null;
    try {
      bytes = await this.readBlob(file).catch((error: unknown) => {
        // tarn's oldest layout: the blob is `data` in a folder named by the key
        if (errno(error) === 'EISDIR') return this.readBlob(join(file, LEGACY_DATA));
        throw error;
      });
    } catch (error) {
      if (errno(error) === 'ENOENT') return recovery ? recovery.then(() => this.readBytes(key)) : null;
      throw this.failure(`Cannot read ${key}`, error);
    }
    if (this.verifyReads) verifyBytes(key, bytes, this.name);
    const backlog = this.noteUse(key);
    if (backlog) await backlog;
    return bytes;
  }

  private async readBlob(file: string): Promise<Buffer> {
    return (this.syncSmallIo ? readSmallSync(file) : null) ?? (await fsp.readFile(file));
  }

  /** The stat of the blob of `key`: its file, or the `data` file of tarn's oldest layout; null when it is not stored. */
  private async blobStat(key: Key): Promise<{ size: number; mtime: Date } | null> {
    const stat = await this.statOrNull(this.pathOf(key));
    return stat?.isDirectory() ? this.statOrNull(join(this.pathOf(key), LEGACY_DATA)) : stat;
  }

  /**
   * A key stored in tarn's oldest layout (a folder holding `data`) that is written again: intact
   * when its data is; else the folder is removed, for the new blob to take its place. `size`: the
   * bytes its data holds.
   */
  private async settleLegacy(key: Key, folder: string): Promise<{ intact: boolean; size: number }> {
    const data = join(folder, LEGACY_DATA);
    const stat = await this.statOrNull(data);
    if (stat !== null && (await this.isIntact(key, data, stat))) return { intact: true, size: stat.size };
    try {
      await fsp.rm(folder, { recursive: true, force: true });
    } catch (error) {
      throw this.failure(`Cannot replace the corrupted ${key} (a folder of tarn's old layout)`, error);
    }
    return { intact: false, size: stat?.size ?? 0 };
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    const file = this.pathOf(key);
    const wanted = labels && labels.length > 0 && this.keepLabels ? labels : null;
    // the gc protocol of disk-gc-runs.ts: pin the key in every running gc, write, then settle
    const pinned = new Set<string>();
    // the last read of the runs, by any write of this Disk: it was made before this write began,
    // which is all the protocol asks of the read it compares with (one read per write, not two)
    let seen = this.runsSeen;
    pinInRuns(this.gcRuns, seen.names, key, pinned);
    let stored = await this.writeAndMark(key, file, source);
    if (stored === null) return null;
    if (wanted) await this.updateLabels(key, wanted);
    for (;;) {
      const now = readRuns(this.gcRuns, seen, this.syncSmallIo);
      this.runsSeen = now;
      // the blob now in place, read lazily like any read of it
      if (now === seen || sameNames(now.names, seen.names)) return this.fileValue(key, stored.file, stored.size);
      seen = now;
      pinInRuns(this.gcRuns, seen.names, key, pinned);
      // a gc that started meanwhile may have moved the blob or its labels aside before our pin
      if (statOrNullSync(file) === null) {
        stored = await this.writeAndMark(key, file, source);
        if (stored === null) return null;
      }
      if (wanted) await this.updateLabels(key, wanted);
    }
  }

  /** Stores the blob (unless it is there) and marks the key as used; its file and size, or null when declined. */
  private async writeAndMark(key: Key, file: string, source: Source): Promise<{ file: string; size: number } | null> {
    const outcome = await this.writes.run(key, () => this.writeOnce(key, file, source));
    if (outcome === 'declined') return null;
    // writing a value already stored is a use of it; a new blob's mtime is its last use
    if (outcome.stored === 'present' || this.markOnWrite) await this.markNow(key, outcome.stored === 'new');
    else await this.refreshOldMark(key);
    // an intact blob of tarn's oldest layout stays where it is, in its folder
    return { file: outcome.legacy ? join(file, LEGACY_DATA) : file, size: outcome.size };
  }

  private async writeOnce(key: Key, file: string, source: Source): Promise<WriteOutcome> {
    if (this.syncSmallIo && source.size !== null && source.size <= SYNC_LIMIT && !source.movable) {
      return this.writeSmall(key, file, await source.bytes(), source.verified);
    }
    let existing: { size: number; isDirectory?(): boolean } | null = await this.statOrNull(file);
    if (existing?.isDirectory?.()) {
      const legacy = await this.settleLegacy(key, file);
      if (legacy.intact) return { stored: 'present', size: legacy.size, legacy: true };
      existing = legacy;
    } else if (existing !== null) {
      if (await this.isIntact(key, file, existing)) return { stored: 'present', size: existing.size };
      // a blob that does not match its key is replaced below, never kept
    }
    if (!(await this.hasRoom(source.size))) return 'declined';
    const created = await this.owner.ensureDir(dirname(file));
    const size =
      source.movable && source.verified && source.path !== null && (await this.adopt(source.path, file))
        ? (source.size ?? (await fsp.stat(file)).size)
        : await this.copyIn(key, file, source);
    try {
      await this.syncNames(file, created);
    } catch (error) {
      throw this.failure(`Cannot write ${key}`, error);
    }
    this.account(size, existing);
    await this.countBytes(size - (existing?.size ?? 0));
    return { stored: 'new', size };
  }

  /** Writes the source to a temp file, then renames it to `file`; returns its size. */
  private async copyIn(key: Key, file: string, source: Source): Promise<number> {
    const tmp = this.tempPath(key.slice(0, 16));
    try {
      const size = await this.writeTemp(key, tmp, source);
      await fsp.rename(tmp, file);
      return size;
    } catch (error) {
      if (error instanceof StorageCorruption) throw error;
      throw this.failure(`Cannot write ${key}`, error);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  /**
   * In a durable lake (`fsync`), makes the name of a blob just renamed into place survive a power
   * cut: fsyncs its folder, and the parents of the folders this write created (`created`: the
   * first of them). The blob's bytes were flushed before the rename.
   */
  private async syncNames(file: string, created: string | undefined): Promise<void> {
    if (!this.fsync) return;
    const folders = [dirname(file)];
    for (let dir = dirname(file); created !== undefined && dir.length >= created.length; dir = dirname(dir)) {
      folders.push(dirname(dir));
    }
    await Promise.all(folders.map(syncDir));
  }

  /**
   * The write path for small values: synchronous calls (microseconds each on a local disk); the
   * flushes of a durable lake run in the thread pool.
   */
  private async writeSmall(key: Key, file: string, bytes: Buffer, verified: boolean): Promise<WriteOutcome> {
    if (!verified) verifyBytes(key, bytes, `a copy into ${this.name}`);
    let existing: { size: number; isDirectory?(): boolean } | null = null;
    const tmp = this.tempPath(key.slice(0, 16));
    let fd = -1;
    try {
      existing = statOrNullSync(file);
      if (existing?.isDirectory?.()) {
        const legacy = await this.settleLegacy(key, file);
        if (legacy.intact) return { stored: 'present', size: legacy.size, legacy: true };
        existing = legacy;
      }
      // the blob may vanish between the two calls (gc moved it aside): then it is written anew
      if (existing !== null && existing.size === bytes.length && sameBytes(readSmallSyncOrNull(file), bytes)) return { stored: 'present', size: bytes.length };
      if (!(await this.hasRoom(bytes.length))) return 'declined';
      const created = this.owner.ensureDirSync(dirname(file));
      fd = openSync(tmp, 'wx', this.fileMode);
      this.owner.ownFile(tmp);
      for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
      if (this.fsync) await fdatasyncFd(fd);
      closeSync(fd);
      fd = -1;
      renameSync(tmp, file);
      await this.syncNames(file, created);
    } catch (error) {
      if (fd !== -1) closeSync(fd);
      await fsp.rm(tmp, { force: true });
      throw this.failure(`Cannot write ${key}`, error);
    }
    this.account(bytes.length, existing);
    await this.countBytes(bytes.length - (existing?.size ?? 0));
    return { stored: 'new', size: bytes.length };
  }

  /** A new temp file name in `.tmp/`: unique without asking for random bytes each time. */
  private tempPath(prefix: string): string {
    return join(this.tmpDir, `${prefix}.${TEMP_TAG}${(tempCount++).toString(36)}`);
  }

  /** Writes the source to `tmp` (verified against `key` unless already verified); returns its size. */
  private async writeTemp(key: Key, tmp: string, source: Source): Promise<number> {
    if (source.size !== null && source.size <= SMALL_VALUE) {
      const bytes = await source.bytes();
      if (!source.verified) verifyBytes(key, bytes, `a copy into ${this.name}`);
      const handle = await fsp.open(tmp, 'wx', this.fileMode);
      this.owner.ownFile(tmp);
      try {
        await handle.writeFile(bytes);
        if (this.fsync) await handle.datasync();
      } finally {
        await handle.close();
      }
      return bytes.length;
    }
    if (source.path !== null) {
      // copy in the kernel (a reflink where the filesystem can), then hash the copy if needed
      await fsp.copyFile(source.path, tmp, fsConstants.COPYFILE_FICLONE);
      await fsp.chmod(tmp, this.fileMode);
      this.owner.ownFile(tmp);
      if (!source.verified) {
        const actual = await hashFile(tmp);
        if (actual !== key) throw new StorageCorruption(key, actual, `a copy into ${this.name}`);
      }
      if (this.fsync) await syncFile(tmp);
      return (await fsp.stat(tmp)).size;
    }
    const size = await writeStreamTo(tmp, this.fileMode, source.stream(), {
      expectedKey: source.verified ? null : key,
      where: `a copy into ${this.name}`,
      fsync: this.fsync,
    });
    this.owner.ownFile(tmp);
    return size;
  }

  /**
   * Puts a staged file in place without copying it; false when it cannot (another filesystem). A
   * hard link, not a rename: the staged file stays readable (its owner removes it), so that a
   * write whose blob a concurrent gc took can put it in place again.
   */
  private async adopt(staged: string, file: string): Promise<boolean> {
    try {
      if (this.fsync) await syncFile(staged);
      await fsp.chmod(staged, this.fileMode);
      this.owner.ownFile(staged);
      try {
        await fsp.link(staged, file);
      } catch (error) {
        // a blob that does not match its key is there (replace it), or no hard links here
        if (!['EEXIST', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes(errno(error) ?? '')) throw error;
        await fsp.copyFile(staged, `${staged}.copy`, fsConstants.COPYFILE_FICLONE);
        await fsp.rename(`${staged}.copy`, file).finally(() => fsp.rm(`${staged}.copy`, { force: true }));
      }
      return true;
    } catch (error) {
      if (errno(error) === 'EXDEV') return false;
      throw this.failure(`Cannot move a staged value into ${file}`, error);
    }
  }

  private async isIntact(key: Key, file: string, stat: { size: number }): Promise<boolean> {
    try {
      if (stat.size <= SMALL_VALUE) {
        const bytes = await fsp.readFile(file);
        verifyBytes(key, bytes, this.name);
        return true;
      }
      return (await hashFile(file)) === key;
    } catch (error) {
      if (error instanceof StorageCorruption || errno(error) === 'ENOENT') return false;
      throw this.failure(`Cannot check the stored ${key}`, error);
    }
  }

  async delete(key: Key): Promise<boolean> {
    const file = this.pathOf(key);
    let size: number;
    try {
      const stat = await fsp.stat(file);
      if (stat.isDirectory()) {
        // tarn's oldest layout: a folder holding `data`
        size = (await this.statOrNull(join(file, LEGACY_DATA)))?.size ?? 0;
        await fsp.rm(file, { recursive: true });
      } else {
        size = stat.size;
        await fsp.unlink(file);
      }
    } catch (error) {
      if (errno(error) === 'ENOENT') return false;
      throw this.failure(`Cannot delete ${key}`, error);
    }
    if (this.usedBytes) this.usedBytes = this.usedBytes.then((used) => used - size);
    await this.countBytes(-size);
    this.throttle.forget(key);
    await Promise.all([fsp.rm(markPath(this.usageRoot, key), { force: true }), fsp.rm(this.labelsPath(key), { force: true })]);
    return true;
  }

  async touch(key: Key): Promise<boolean> {
    if ((await this.statOrNull(this.pathOf(key))) === null) return false;
    await this.markNow(key, false);
    return true;
  }

  async *contents(): AsyncIterable<Entry> {
    for await (const key of this.keys()) {
      const file = this.pathOf(key);
      if (this.syncSmallIo) {
        // a stat or a labels file is microseconds on a local filesystem: three trips to the thread
        // pool per key (and an error per key without labels) cost more than the work
        let stat = statSync(file, { throwIfNoEntry: false });
        // tarn's oldest layout: a folder holding the blob as `data`
        if (stat?.isDirectory()) stat = statSync(join(file, LEGACY_DATA), { throwIfNoEntry: false });
        if (stat === undefined) continue; // deleted while we walked
        yield { key, location: this, meta: this.metaSync(key, stat) };
        continue;
      }
      const stat = await this.blobStat(key);
      if (stat === null) continue; // deleted while we walked
      yield { key, location: this, meta: await this.meta(key, stat) };
    }
  }

  /** Every stored key, by walking the folder layout (config, tools and temp files are skipped). */
  async *keys(): AsyncIterable<Key> {
    const walk = async function* (this: Disk, dir: string, depth: number, prefix: string): AsyncIterable<Key> {
      let names: string[];
      try {
        names = await fsp.readdir(dir);
      } catch (error) {
        if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return;
        throw this.failure(`Cannot list ${dir}`, error);
      }
      for (const name of names.sort()) {
        if (!this.layout.isPart(depth, name)) continue;
        if (depth === this.levels.length - 1) yield prefix + name;
        else yield* walk.call(this, join(dir, name), depth + 1, prefix + name);
      }
    };
    yield* walk.call(this, this.root, 0, '');
  }

  /** Bytes held by the blobs of this lake (walked once, then kept up to date by this process). */
  async usage(): Promise<number> {
    if (this.usedBytes === null) {
      this.usedBytes = (async () => {
        let total = 0;
        for await (const key of this.keys()) total += (await this.blobStat(key))?.size ?? 0;
        return total;
      })();
    }
    return this.usedBytes;
  }

  /** A key's labels, size and last use (its mark, else its blob's mtime, in a lake that keeps usage). */
  private async meta(key: Key, blob: { size: number; mtime: Date }): Promise<Meta> {
    const [labels, mark] = await Promise.all([
      this.readLabels(key),
      this.keepUsage ? this.statOrNull(markPath(this.usageRoot, key)) : null,
    ]);
    return { labels, lastUsed: this.keepUsage ? (mark?.mtime ?? blob.mtime) : null, size: blob.size };
  }

  /** meta() with synchronous calls (syncSmallIo): a stat of the mark, a stat of the labels file and its read when there is one. */
  private metaSync(key: Key, blob: { size: number; mtime: Date }): Meta {
    const mark = this.keepUsage ? statSync(markPath(this.usageRoot, key), { throwIfNoEntry: false }) : undefined;
    return { labels: this.labelsOf(key), lastUsed: this.keepUsage ? (mark?.mtime ?? blob.mtime) : null, size: blob.size };
  }

  private labelsPath(key: Key): string {
    return join(this.root, this.layout.labels(key));
  }

  /**
   * A read of `key`: queues a refresh of its last-used mark, at most once per `touchInterval`, for
   * the worker thread of disk-marks.ts. Returns a promise to wait for when the marks fall far behind.
   */
  private noteUse(key: Key): Promise<void> | null {
    if (!this.keepUsage) return null;
    if (!this.throttle.due(key)) return null;
    return this.marks.add(key);
  }

  /** Creates or refreshes the mark of `key` before returning (a write, `touch()`). */
  private async markNow(key: Key, likelyNew: boolean): Promise<void> {
    if (!this.keepUsage) return;
    this.throttle.record(key);
    try {
      if (this.syncSmallIo) markSync(this.owner, markPath(this.usageRoot, key), new Date(), likelyNew);
      else await this.marks.now(key);
    } catch (error) {
      this.usageFailed(error);
    }
  }

  /**
   * A new blob written without a mark: its mtime is its last use, unless an old mark of the key
   * is left (gc or verify moved an earlier blob aside, marks kept): that one is refreshed, or the
   * new value would look long unused.
   */
  private async refreshOldMark(key: Key): Promise<void> {
    if (!this.keepUsage) return;
    this.throttle.record(key); // reads within touchInterval need not mark it
    const mark = markPath(this.usageRoot, key);
    const old = this.syncSmallIo ? statOrNullSync(mark) : await this.statOrNull(mark);
    if (old !== null) await this.markNow(key, false);
  }

  /** Waits for the last-used marks still queued by reads, and for the recovery of a killed gc. */
  async close(): Promise<void> {
    await this.marks.idle();
    await this.recovered();
    await this.sizeCounter?.close();
  }

  /** Resolves once what a killed gc left (found when this Disk was opened) is put back. */
  async recovered(): Promise<void> {
    await this.recovery;
  }

  private async recover(): Promise<void> {
    try {
      await undoDeadRuns(this);
    } catch (error) {
      // a lake we may not write: the next gc (by someone who may) puts them back
      process.emitWarning(`${this.name}: cannot put back what a killed gc left: ${(error as Error).message}`, { code: 'CAIRN_GC_RECOVERY' });
    } finally {
      this.recovery = null;
    }
  }

  /** A refresh queued by a read failed: the read went well, so this is only a warning. */
  private backgroundUsageFailed(error: NodeJS.ErrnoException): void {
    try {
      this.usageFailed(error);
    } catch (failure) {
      process.emitWarning(failure as Error, { code: 'CAIRN_USAGE_MARK' });
    }
  }

  private usageFailed(error: unknown): void {
    // a lake we may read but not write (shared, read-only mount): reads go on, usage is not kept
    if (READ_ONLY_CODES.has(errno(error) ?? '')) {
      this.keepUsage = false;
      return;
    }
    throw this.failure('Cannot update a last-used mark', error);
  }

  private async readLabels(key: Key): Promise<string[] | null> {
    if (!this.keepLabels) return null;
    try {
      return parseLabels(await fsp.readFile(this.labelsPath(key), 'utf8'), this.name);
    } catch (error) {
      if (errno(error) === 'ENOENT') return null;
      throw this.failure(`Cannot read the labels of ${key}`, error);
    }
  }

  /**
   * Adds labels to the key's set (tarn's JsonLabels keeps the union) without storing a value: for
   * maintenance (migrate, gc putting back what it moved aside). Nothing happens when the lake
   * keeps no labels.
   */
  addLabels(key: Key, labels: readonly string[]): Promise<void> {
    assertKey(key);
    return this.updateLabels(key, labels);
  }

  /** The files of a key besides its blob: its last-used mark and its labels (whether or not they exist). */
  sidecars(key: Key): { mark: string; labels: string } {
    assertKey(key);
    return { mark: markPath(this.usageRoot, key), labels: this.labelsPath(key) };
  }

  /** The folders of last-used marks (`tools/usage`) and labels (`tools/labels`), each a folder per key prefix. */
  sidecarRoots(): { marks: string; labels: string } {
    return { marks: this.usageRoot, labels: join(this.root, 'tools', 'labels') };
  }

  /** Creates a folder of the lake (and its parents) with the lake's group and mode. */
  async makeFolder(dir: string): Promise<void> {
    try {
      await this.owner.ensureDir(dir);
    } catch (error) {
      throw this.failure(`Cannot create ${dir}`, error);
    }
  }

  /**
   * Adds labels to the key's set, atomically, under the key's label lock (disk-labels.ts): writers
   * in other threads and processes never drop each other's labels.
   */
  private async updateLabels(key: Key, labels: readonly string[]): Promise<void> {
    if (!this.keepLabels || labels.length === 0) return;
    const file = this.labelsPath(key);
    const writeAtomically = async (text: string) => {
      const tmp = this.tempPath('labels');
      try {
        await fsp.writeFile(tmp, text, { mode: TOOL_MODE });
        ownToolFile(this.owner, tmp, dirname(file));
        await fsp.rename(tmp, file);
      } finally {
        await fsp.rm(tmp, { force: true });
      }
    };
    const ensureDir = async () => {
      this.owner.forget(dirname(file));
      ensureToolDir(this.owner, dirname(file));
    };
    try {
      const tempPath = () => this.tempPath('lock');
      await this.labelWrites.run(key, () => mergeLabelsFile(file, labels, { ensureDir, writeAtomically, tempPath }));
    } catch (error) {
      throw this.failure(`Cannot store the labels of ${key}`, error);
    }
  }

  private async hasRoom(size: number | null): Promise<boolean> {
    const incoming = size ?? 0;
    if (this.maxSize !== null) {
      // with tarn's size tool, the count every writer of the lake shares (tarn checks max_size against it)
      const used = this.sizeCounter ? await this.countedBytes() : await this.usage();
      if (used + incoming > this.maxSize) return false;
    }
    if (this.minFree > 0 || this.maxUsage < 1) {
      const now = Date.now();
      if (this.space === null || now - this.space.at > SPACE_CHECK_MS) {
        const stats = await fsp.statfs(this.root);
        this.space = { at: now, free: stats.bavail * stats.bsize, total: stats.blocks * stats.bsize };
      }
      const free = this.space.free - incoming;
      if (free < this.minFree) return false;
      if ((this.space.total - free) / this.space.total > this.maxUsage) return false;
      this.space.free = free; // later writes before the next check see this one
    }
    return true;
  }

  /** Adds `delta` bytes to tarn's size counter (config.yml's `size:` tool), when the lake has one. */
  private async countBytes(delta: number): Promise<void> {
    if (this.sizeCounter === null || delta === 0) return;
    await this.sizeCounter.add(delta);
  }

  private countedBytes(): Promise<number> {
    return this.sizeCounter!.get();
  }

  /**
   * Creates `tools/usage` and `tools/labels` as tarn does when it opens a lake: tarn (as another
   * user, say) fails to open a lake where it must make them and may not. Skipped where this process
   * may only read.
   */
  private makeToolFolders(): void {
    for (const tool of ['usage', 'labels']) {
      try {
        this.owner.ensureDirSync(join(this.root, 'tools', tool));
      } catch (error) {
        if (!READ_ONLY_CODES.has(errno(error) ?? '') && errno(error) !== 'ENOENT') throw this.failure(`Cannot create tools/${tool}`, error);
      }
    }
  }

  private account(size: number, replaced: { size: number } | null): void {
    if (this.usedBytes) this.usedBytes = this.usedBytes.then((used) => used + size - (replaced?.size ?? 0));
  }

  private async statOrNull(file: string): Promise<{ size: number; mtime: Date; isDirectory(): boolean } | null> {
    try {
      return await fsp.stat(file);
    } catch (error) {
      if (errno(error) === 'ENOENT') return null;
      throw this.failure(`Cannot stat ${file}`, error);
    }
  }

  private failure(message: string, cause: unknown): LocationError {
    cause = this.realCause(cause);
    return new LocationError(`${this.name}: ${message}: ${(cause as Error)?.message ?? cause}`, this.name, {
      cause,
      code: storageErrorCode(cause),
    });
  }

  /**
   * The reason behind an ENOENT that hides one: a recursive mkdir on a read-only mount, or a temp
   * file in the `.tmp/` this process could not create, say ENOENT where the cause is EROFS or EACCES.
   */
  private realCause(cause: unknown): unknown {
    if (errno(cause) !== 'ENOENT') return cause;
    const { syscall, path } = cause as { syscall?: string; path?: string };
    if (syscall === 'mkdir') return writeProblem(this.root) ?? cause;
    if (this.noTmp !== null && String(path).startsWith(this.tmpDir)) return this.noTmp;
    return cause;
  }

  /** A failed read of a value found a moment before: deleted since (ERR_VANISHED), or another failure. */
  private readFailure(key: Key, cause: unknown): LocationError {
    if (errno(cause) !== 'ENOENT') return this.failure(`Cannot read ${key}`, cause);
    return new LocationError(`${this.name}: ${key} vanished while it was read (deleted by gc or another process)`, this.name, {
      cause,
      code: 'ERR_VANISHED',
    });
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await fsp.open(path, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Removes the temp files that killed processes of this host left in `.tmp/` (their names carry
 * the process: see disk-liveness.ts); those of live writers and of other hosts are left to gc's
 * age rule. A lake we may not write is left as it is.
 */
function removeLeftTempFiles(tmpDir: string): void {
  if (!existsSync(tmpDir)) return;
  let names: string[];
  try {
    names = readdirSync(tmpDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!leftByDeadProcess(name)) continue;
    try {
      rmSync(join(tmpDir, name), { force: true, recursive: true });
    } catch (error) {
      if (!READ_ONLY_CODES.has(errno(error) ?? '')) throw error;
    }
  }
}

function statOrNullSync(file: string): { size: number; isDirectory(): boolean } | null {
  // no exception for a missing file: most writes are of new keys, and an Error costs microseconds
  return statSync(file, { throwIfNoEntry: false }) ?? null;
}

/** Reads a file of at most SYNC_LIMIT bytes synchronously; null when it is larger (read it async). */
function readSmallSync(file: string): Buffer | null {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > SYNC_LIMIT) return null;
    const bytes = Buffer.allocUnsafe(size);
    let offset = 0;
    while (offset < size) {
      const read = readSync(fd, bytes, offset, size - offset, offset);
      if (read === 0) break;
      offset += read;
    }
    return offset === size ? bytes : bytes.subarray(0, offset);
  } finally {
    closeSync(fd);
  }
}

function readSmallSyncOrNull(file: string): Buffer | null {
  try {
    return readSmallSync(file);
  } catch (error) {
    if (errno(error) === 'ENOENT') return null;
    throw error;
  }
}

function sameBytes(stored: Buffer | null, bytes: Buffer): boolean {
  return stored !== null && stored.equals(bytes);
}

/** A group's id from its id or name (read from /etc/group: Node has no getgrnam). */
function groupId(group: string | number): number {
  if (typeof group === 'number' || /^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    // no group database: the name cannot be resolved
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new ConfigError(`Unknown group ${JSON.stringify(group)} (give its name, as in /etc/group, or its gid)`);
}

/**
 * The local-filesystem transport of a lake: the port of lake/files.ts over a folder, with the fast
 * calls a local filesystem allows (synchronous small I/O, a hard link that publishes without
 * replacing, hashing a file where it is, the file's own path for a value). The lake format itself
 * is LakeLocation's; what a Disk decides beyond it (limits, gc pins, marks queue) is Disk's.
 */
import {
  accessSync,
  closeSync,
  constants as fsConstants,
  createReadStream,
  fdatasync as fdatasyncCallback,
  fstatSync,
  linkSync,
  openSync,
  promises as fsp,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { promisify } from 'node:util';
import { LocationError, storageErrorCode } from '../../errors.js';
import type { FileInfo, LakeFiles, LakeWriter, ListedFile } from '../lake/files.js';
import { TEMP_FOLDER, TOOL_MODE } from '../lake/layout.js';
import { hashFile, syncDir } from './disk-io.js';
import { ensureToolDir, markSync, ownToolFile } from './disk-marks.js';
import { PROCESS_TAG } from './disk-liveness.js';
import type { Owner } from './disk-owner.js';

/** Files up to this size are read and written with synchronous calls when `syncSmallIo` is on. */
export const SYNC_LIMIT = 64 * 1024;
const fdatasyncFd = promisify(fdatasyncCallback);
/** Errors that mean "this lake is read-only for us": last-used marks are then not kept. */
export const READ_ONLY_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);
/** Codes of a file system without hard links here: publishing then checks, then renames. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'EXDEV']);
let tempCount = 0;

export interface LocalFilesOptions {
  /** Group and modes of what is created (disk-owner.ts). */
  owner: Owner;
  /** Mode of a new blob (read-only). */
  fileMode: number;
  /** Flush each file before it is published, and its folder after. */
  fsync: boolean;
  /** Small files with synchronous calls (see DiskOptions.syncSmallIo). */
  syncSmallIo: boolean;
}

/** The error of checking that `dir` is writable, or null when it is. */
export function writeProblem(dir: string): unknown {
  try {
    accessSync(dir, fsConstants.W_OK);
    return null;
  } catch (error) {
    return error;
  }
}

function isErrno(error: unknown): boolean {
  return typeof (error as NodeJS.ErrnoException | undefined)?.syscall === 'string';
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** A lake's files in a local (or mounted) folder. Paths are relative to `root`. */
export class LocalFiles implements LakeFiles, LakeWriter {
  readonly writer: LakeWriter = this;
  private readonly rootSlash: string;
  private readonly tmpDir: string;
  /** Why `.tmp/` could not be created (a lake this process may only read), or null: see realCause(). */
  noTmp: unknown = null;
  /** False once a mark could not be written for lack of rights: see moveMark(). */
  marksWritable = true;

  constructor(
    readonly root: string,
    readonly name: string,
    private readonly options: LocalFilesOptions,
  ) {
    this.rootSlash = root.endsWith(sep) ? root : root + sep;
    this.tmpDir = this.at(TEMP_FOLDER);
  }

  /** A failed filesystem call as the typed error a user sees: its code says what went wrong (ERR_PERMISSION, ERR_NO_SPACE…). */
  failure(message: string, cause: unknown): LocationError {
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

  /** The local path of a lake path: the root joined by hand (the parts are the layout's, never `..`). */
  at(path: string): string {
    return path === '' ? this.root : this.rootSlash + (sep === '/' ? path : path.split('/').join(sep));
  }

  localPath(path: string): string {
    return this.at(path);
  }

  async stat(path: string): Promise<FileInfo | null> {
    const file = this.at(path);
    try {
      // no exception for a missing file when synchronous: an Error costs microseconds
      const stats = this.options.syncSmallIo ? statSync(file, { throwIfNoEntry: false }) : await fsp.stat(file);
      return stats === undefined ? null : { size: stats.size, isDirectory: stats.isDirectory() };
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return null;
      throw this.failure(`Cannot stat ${path}`, error);
    }
  }

  openRead(path: string, _size: number | null): Readable {
    const raw = createReadStream(this.at(path), { highWaterMark: 1024 * 1024 });
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    raw.on('error', (error) => out.destroy(this.readFailure(path, error)));
    // a reader that stops early (an abort, a break) closes the file too
    out.on('close', () => raw.destroy());
    return raw.pipe(out);
  }

  async readFile(path: string, _size: number | null): Promise<Buffer | null> {
    const file = this.at(path);
    try {
      return (this.options.syncSmallIo ? readSmallSync(file) : null) ?? (await fsp.readFile(file));
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return null;
      if (errno(error) === 'EISDIR') throw error; // a folder blob: the lake reads its `data`
      throw this.failure(`Cannot read ${path}`, error);
    }
  }

  async readText(path: string): Promise<string | null> {
    try {
      return this.options.syncSmallIo ? readFileSync(this.at(path), 'utf8') : await fsp.readFile(this.at(path), 'utf8');
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return null;
      throw this.failure(`Cannot read ${path}`, error);
    }
  }

  async list(dir: string): Promise<ListedFile[]> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(this.at(dir), { withFileTypes: true });
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return [];
      throw this.failure(`Cannot list ${dir || '/'}`, error);
    }
    const listed: ListedFile[] = [];
    for (const entry of entries) {
      const isFile = entry.isFile();
      // sizes and times of files only: a folder's are of no use to the lake
      const stats = isFile ? statSync(join(this.at(dir), entry.name), { throwIfNoEntry: false }) : undefined;
      if (isFile && stats === undefined) continue; // removed while listed
      listed.push({ name: entry.name, isFile, isDirectory: entry.isDirectory(), size: stats?.size ?? null, mtime: stats?.mtime ?? null });
    }
    return listed;
  }

  async close(): Promise<void> {}

  async prepare(): Promise<void> {
    try {
      this.options.owner.ensureDirSync(this.at(TEMP_FOLDER));
    } catch (error) {
      throw this.failure(`Cannot create ${TEMP_FOLDER}`, error);
    }
  }

  /** A new temp file name in `.tmp/`, naming this process (disk-liveness.ts) without random bytes per write. */
  tempName(prefix: string): string {
    return `${TEMP_FOLDER}/${prefix}.${PROCESS_TAG}.${(tempCount++).toString(36)}`;
  }

  async putTemp(tmp: string, pieces: AsyncIterable<Buffer>, size: number | null): Promise<void> {
    const file = this.at(tmp);
    const { fileMode, fsync, owner } = this.options;
    try {
      if (this.options.syncSmallIo && size !== null && size <= SYNC_LIMIT) {
        // a small value is in memory already: write it with one synchronous call, flush in the pool
        const fd = openSync(file, 'wx', fileMode);
        try {
          owner.ownFile(file);
          for await (const piece of pieces) for (let offset = 0; offset < piece.length; ) offset += writeSync(fd, piece, offset);
          if (fsync) await fdatasyncFd(fd);
        } finally {
          closeSync(fd);
        }
        return;
      }
      const handle = await fsp.open(file, 'wx', fileMode);
      try {
        owner.ownFile(file);
        for await (const piece of pieces) await writeAll(handle, piece);
        if (fsync) await handle.datasync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      await fsp.rm(file, { force: true });
      // a failure of the source passes as it is; one of the filesystem becomes a typed error
      throw isErrno(error) ? this.failure(`Cannot write ${tmp}`, error) : error;
    }
  }

  async publish(tmp: string, target: string, mark: string | null): Promise<boolean> {
    const from = this.at(tmp);
    const to = this.at(target);
    try {
      const created = this.options.owner.ensureDirSync(dirname(to));
      try {
        // a hard link never replaces: EEXIST says another writer was first
        if (this.options.syncSmallIo) {
          linkSync(from, to);
          unlinkSync(from);
        } else {
          await fsp.link(from, to);
          await fsp.unlink(from);
        }
      } catch (error) {
        if (errno(error) === 'EEXIST') return false;
        if (!NO_LINKS.has(errno(error) ?? '')) throw error;
        if ((await this.stat(target)) !== null) return false;
        await fsp.rename(from, to);
      }
      await this.syncNames(to, created);
    } catch (error) {
      throw this.failure(`Cannot store ${target}`, error);
    }
    // a new blob's mark is usually new too: creating it first spares a failing call
    if (mark !== null) this.moveMark(mark, new Date(), true);
    return true;
  }

  async replace(tmp: string, target: string, mark: string | null): Promise<void> {
    const to = this.at(target);
    try {
      const created = this.options.owner.ensureDirSync(dirname(to));
      await fsp.rename(this.at(tmp), to);
      await this.syncNames(to, created);
    } catch (error) {
      throw this.failure(`Cannot store ${target}`, error);
    }
    if (mark !== null) this.moveMark(mark, new Date(), false);
  }

  async remove(path: string): Promise<boolean> {
    try {
      await fsp.unlink(this.at(path));
      return true;
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return false;
      throw this.failure(`Cannot delete ${path}`, error);
    }
  }

  async removeDir(path: string): Promise<boolean> {
    try {
      await fsp.rmdir(this.at(path));
      return true;
    } catch (error) {
      if (errno(error) === 'ENOENT') return false;
      throw this.failure(`Cannot delete ${path}`, error);
    }
  }

  async writeText(path: string, text: string, mode: number, dirMode?: number): Promise<void> {
    const file = this.at(path);
    const tmp = this.at(this.tempName('text'));
    const { owner } = this.options;
    try {
      if (dirMode === TOOL_MODE) ensureToolDir(owner, dirname(file));
      else owner.ensureDirSync(dirname(file));
      await fsp.writeFile(tmp, text, { mode, flag: 'wx' });
      if (mode === TOOL_MODE) ownToolFile(owner, tmp, dirname(file));
      else owner.ownFile(tmp);
      await fsp.rename(tmp, file);
    } catch (error) {
      throw this.failure(`Cannot store ${path}`, error);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async createExclusive(path: string, text: string): Promise<boolean> {
    const file = this.at(path);
    const tmp = this.at(this.tempName('lock'));
    try {
      ensureToolDir(this.options.owner, dirname(file));
      await fsp.writeFile(tmp, text, { mode: TOOL_MODE, flag: 'wx' });
      // a hard link appears whole and never replaces: EEXIST says the lock is held
      await fsp.link(tmp, file);
      return true;
    } catch (error) {
      if (errno(error) === 'EEXIST') return false;
      throw this.failure(`Cannot create ${path}`, error);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async touch(path: string, time: Date): Promise<void> {
    this.moveMark(path, time, false);
  }

  /**
   * Creates or refreshes a last-used mark. In a lake this process may read but not write (shared,
   * a read-only mount) reads go on and marks are no longer kept: `marksWritable` turns false.
   */
  private moveMark(path: string, time: Date, likelyNew: boolean): void {
    if (!this.marksWritable) return;
    try {
      markSync(this.options.owner, this.at(path), time, likelyNew);
    } catch (error) {
      if (READ_ONLY_CODES.has(errno(error) ?? '')) {
        this.marksWritable = false;
        return;
      }
      throw this.failure('Cannot update a last-used mark', error);
    }
  }

  async putCopy(tmp: string, source: string): Promise<void> {
    const file = this.at(tmp);
    try {
      await fsp.copyFile(source, file, fsConstants.COPYFILE_FICLONE | fsConstants.COPYFILE_EXCL);
      await fsp.chmod(file, this.options.fileMode);
      this.options.owner.ownFile(file);
      if (this.options.fsync) await syncFile(file);
    } catch (error) {
      await fsp.rm(file, { force: true });
      throw this.failure(`Cannot write ${tmp}`, error);
    }
  }

  /**
   * A hard link, not a rename: the staged file stays readable (its owner removes it), so that a
   * write whose blob a concurrent gc took can put it in place again.
   */
  async adopt(source: string, target: string, mark: string | null): Promise<boolean> {
    const to = this.at(target);
    try {
      if (this.options.fsync) await syncFile(source);
      await fsp.chmod(source, this.options.fileMode);
      this.options.owner.ownFile(source);
      const created = await this.options.owner.ensureDir(dirname(to));
      try {
        await fsp.link(source, to);
      } catch (error) {
        // a blob that does not match its key is there (replace it), or no hard links here
        if (errno(error) !== 'EEXIST' && !NO_LINKS.has(errno(error) ?? '')) throw error;
        if (errno(error) === 'EXDEV') return false;
        const copy = `${source}.copy`;
        await fsp.copyFile(source, copy, fsConstants.COPYFILE_FICLONE);
        await fsp.rename(copy, to).finally(() => fsp.rm(copy, { force: true }));
      }
      await this.syncNames(to, created);
    } catch (error) {
      if (errno(error) === 'EXDEV') return false;
      throw this.failure(`Cannot move a staged value into ${target}`, error);
    }
    if (mark !== null) this.moveMark(mark, new Date(), true);
    return true;
  }

  /** The sha256 of a file, read where it is: no stream through the lake (a small one with one synchronous read). */
  async digest(path: string): Promise<string | null> {
    try {
      const small = this.options.syncSmallIo ? readSmallSync(this.at(path)) : null;
      if (small !== null) return createHash('sha256').update(small).digest('hex');
      return await hashFile(this.at(path));
    } catch (error) {
      if (errno(error) === 'ENOENT' || errno(error) === 'EISDIR') return null;
      throw this.failure(`Cannot check ${path}`, error);
    }
  }

  /**
   * In a durable lake (`fsync`), makes the name of a file just put in place survive a power cut:
   * fsyncs its folder, and the parents of the folders this publish created (`created`: the first).
   * The file's bytes were flushed before.
   */
  private async syncNames(file: string, created: string | undefined): Promise<void> {
    if (!this.options.fsync) return;
    const folders = [dirname(file)];
    for (let dir = dirname(file); created !== undefined && dir.length >= created.length; dir = dirname(dir)) folders.push(dirname(dir));
    await Promise.all(folders.map(syncDir));
  }

  /** A failed read of a file found a moment before: deleted since (ERR_VANISHED), or another failure. */
  private readFailure(path: string, cause: unknown): Error {
    if (errno(cause) !== 'ENOENT') return this.failure(`Cannot read ${path}`, cause);
    return new LocationError(`${this.name}: ${path} vanished while it was read (deleted by gc or another process)`, this.name, {
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

/** Reads a file of at most SYNC_LIMIT bytes synchronously; null when it is larger (read it async). */
export function readSmallSync(file: string): Buffer | null {
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

/** FileHandle.write may write less than asked; this writes everything. */
async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) offset += (await handle.write(bytes, offset, bytes.length - offset)).bytesWritten;
}

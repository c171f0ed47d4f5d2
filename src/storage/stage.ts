import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fsp, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { bufferBlob, fileBlob, type Source } from '../blob.js';
import { InvalidValueError, LocationError, storageErrorCode } from '../errors.js';
import { digestBytes, hashFile } from '../digest.js';
import type { Key } from '../key.js';
import { streamToFile } from '../locations/disk/disk-io.js';
import { leftByDeadProcess, PROCESS_TAG } from '../locations/disk/disk-liveness.js';
import { trackTempFile } from './temp-cleanup.js';

/**
 * What `HashKeyStorage.write` accepts: bytes (a Buffer, any TypedArray or DataView: its bytes as
 * they lie in memory, or an ArrayBuffer), a file path, or a stream of bytes.
 */
export type WriteInput = ArrayBufferView | ArrayBuffer | string | Readable | AsyncIterable<Uint8Array>;

/** A value ready to be written: its key, and a source that can be read any number of times. */
export interface Staged {
  key: Key;
  source: Source;
  /** Removes the staged temp file, if one was made and nobody moved it into place. */
  dispose(): Promise<void>;
}

/** Files up to this size are read into memory rather than staged. */
const READ_WHOLE = 1024 * 1024;

const nothing = async (): Promise<void> => undefined;

/** Staged copies are readable by their owner only: the values may be private. */
const STAGED_MODE = 0o400;

let privateDir: Promise<string> | null = null;

/**
 * Where values are staged for a storage without a local folder (Memory, Redis, S3):
 * `$TMPDIR/cairn-stage-<uid>`, a folder only this user may enter. The first use in a process
 * removes what killed processes left there (their names carry the process: disk-liveness.ts).
 */
export function privateStagingDir(): Promise<string> {
  privateDir ??= (async () => {
    const dir = join(tmpdir(), `cairn-stage-${process.getuid?.() ?? 'user'}`);
    await fsp.mkdir(dir, { mode: 0o700, recursive: true });
    const stat = await fsp.lstat(dir);
    // another user could have made the folder first, to read what we stage: refuse it
    if (!stat.isDirectory() || (process.getuid !== undefined && stat.uid !== process.getuid())) {
      throw new LocationError(`Cannot stage values in ${dir}: not a folder of this user`, `staging(${dir})`);
    }
    if ((stat.mode & 0o077) !== 0) await fsp.chmod(dir, 0o700);
    for (const name of await fsp.readdir(dir)) {
      if (leftByDeadProcess(name)) await fsp.rm(join(dir, name), { force: true });
    }
    return dir;
  })().catch((error: unknown) => {
    privateDir = null;
    throw error;
  });
  return privateDir;
}

/** A new staged file's name in `folder`: it names this process, so that leftovers of a killed one are found. */
function stagedPath(folder: string): string {
  return join(folder, `stage.${PROCESS_TAG}.${randomBytes(6).toString('hex')}`);
}

/**
 * Hashes the input in one pass. Bytes are hashed in place; a file or a stream is copied into a
 * temp file in `dir` while it is hashed (a location on the same filesystem then moves that file
 * into place instead of copying it again); without `dir`, in a folder private to the user.
 */
export async function stage(input: WriteInput, dir: string | null): Promise<Staged> {
  if (ArrayBuffer.isView(input) || input instanceof ArrayBuffer) {
    const bytes = Buffer.isBuffer(input)
      ? input
      : input instanceof ArrayBuffer
        ? Buffer.from(input)
        : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    return { key: digestBytes(bytes), source: { ...bufferBlob(bytes), verified: true }, dispose: nothing };
  }
  if (typeof input === 'string') return stageFile(input, dir);
  if (isAsyncIterable(input)) return stageStream(input, dir);
  throw new InvalidValueError(
    `Cannot write ${Object.prototype.toString.call(input)}: expected bytes (a Buffer or TypedArray), a file path, a Readable or an AsyncIterable<Uint8Array>`,
  );
}

async function stageFile(path: string, dir: string | null): Promise<Staged> {
  const before = await statFile(path);
  if (before.size <= READ_WHOLE) return stage(await fsp.readFile(path), dir);
  const folder = dir ?? (await privateStagingDir());
  const staged = stagedPath(folder);
  const untrack = trackTempFile(staged);
  const dispose = () => fsp.rm(staged, { force: true }).finally(untrack);
  try {
    // the kernel copies (a reflink where the filesystem can) while this thread hashes the source:
    // two cores, one pass each, instead of reading, hashing and writing in turn
    let [key] = await Promise.all([hashFile(path), fsp.copyFile(path, staged, fsConstants.COPYFILE_FICLONE)]);
    const after = await statFile(path);
    // the file changed while we read it: the key must be that of the bytes we hold
    if (!sameVersion(before, after)) key = await hashFile(staged);
    await fsp.chmod(staged, STAGED_MODE);
    return { key, source: { ...fileBlob(staged, (await fsp.stat(staged)).size), verified: true, movable: true }, dispose };
  } catch (error) {
    await dispose();
    throw new LocationError(`Cannot stage ${path} in ${folder}: ${(error as Error).message}`, `staging(${folder})`, { cause: error, code: storageErrorCode(error) });
  }
}

async function statFile(path: string): Promise<Stats> {
  let stat: Stats;
  try {
    stat = await fsp.stat(path);
  } catch (error) {
    throw new InvalidValueError(`Cannot read the file ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (!stat.isFile()) throw new InvalidValueError(`Cannot write ${path}: not a regular file`);
  return stat;
}

function sameVersion(a: Stats, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.ctimeMs === b.ctimeMs;
}

async function stageStream(input: AsyncIterable<Uint8Array>, dir: string | null): Promise<Staged> {
  const folder = dir ?? (await privateStagingDir());
  const path = stagedPath(folder);
  const untrack = trackTempFile(path);
  const dispose = () => fsp.rm(path, { force: true }).finally(untrack);
  try {
    const { size, key } = await streamToFile(path, STAGED_MODE, input, false);
    return { key, source: { ...fileBlob(path, size), verified: true, movable: true }, dispose };
  } catch (error) {
    await dispose();
    if ((error as NodeJS.ErrnoException).syscall === undefined) throw error;
    throw new LocationError(`Cannot stage the value in ${folder}: ${(error as Error).message}`, `staging(${folder})`, { cause: error, code: storageErrorCode(error) });
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

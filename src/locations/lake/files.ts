/**
 * The port a lake location runs over: the few file operations that differ between transports
 * (a local folder, SFTP, shell commands over SSH, HTTP). Paths are relative to the lake's root,
 * with POSIX separators, as LakeLayout makes them; each transport resolves them against its root.
 * Every failure is a typed CairnError; a missing file is null (or false, or []), never an error.
 */
import type { Readable } from 'node:stream';
import { LocationError } from '../../errors.js';

export interface FileInfo {
  /** null when the transport cannot tell without reading (an HTTP server that sends no length). */
  size: number | null;
  isDirectory: boolean;
  /** The file's sha256, when it was asked for and the transport computed it where the file is. */
  digest?: string;
}

export interface ListedFile {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
  size: number | null;
  mtime: Date | null;
}

/** A whole lake listed at once (a transport that can do it in one round trip). Paths relative to the root. */
export interface LakeListing {
  files: { path: string; size: number }[];
  /** mark path (`tools/usage/ab/…`) → its mtime */
  marks: Map<string, Date>;
  /** labels path (`tools/labels/ab/….json`) → the file's text */
  labels: Map<string, string>;
}

/**
 * Thrown by a transport whose server sent a body of another length than the file has: the lake
 * turns it into StorageCorruption. Typed already, so the net layer passes it on and never retries it.
 */
export class WrongLength extends LocationError {
  constructor(message: string, where: string) {
    super(message, where, { code: 'ERR_STORAGE_CORRUPTION' });
  }
}

/** Reading: what every transport offers. */
export interface LakeFiles {
  readonly name: string;
  stat(path: string): Promise<FileInfo | null>;
  /** A stream of the file's raw bytes (checked by the lake). `size` is what stat said; the file is expected to exist. */
  openRead(path: string, size: number | null): Readable;
  /** The whole file in memory; null when it does not exist. */
  readFile(path: string, size: number | null): Promise<Buffer | null>;
  /** A small text file (config.yml, labels); null when it does not exist. */
  readText(path: string): Promise<string | null>;
  /** A folder's entries; [] when it does not exist. */
  list(dir: string): Promise<ListedFile[]>;
  /** Optional: the whole lake in one request (SCP: one shell command instead of one per folder and per labels file). */
  listLake?(): Promise<LakeListing>;
  /** Absent on a read-only transport. */
  readonly writer?: LakeWriter;
  close(): Promise<void>;
}

/** Writing: what a writable transport adds. */
export interface LakeWriter {
  /** Creates `.tmp/` (once per lake location). */
  prepare(): Promise<void>;
  /**
   * Streams `pieces` (exactly `size` bytes when known) into the new file `tmp` (mode BLOB_MODE).
   * The lake hashes the pieces as they are taken. On failure the transport removes what it wrote.
   */
  putTemp(tmp: string, pieces: AsyncIterable<Buffer>, size: number | null): Promise<void>;
  /**
   * Renames `tmp` to `target` (making its folders) unless `target` exists: false then, and `tmp`
   * is left. Once published, `mark` (when given) is touched as `touch` does.
   */
  publish(tmp: string, target: string, mark: string | null): Promise<boolean>;
  /** Renames `tmp` over `target` (a corrupted blob), then touches `mark` (when given). */
  replace(tmp: string, target: string, mark: string | null): Promise<void>;
  /** Removes a file; false when there was none. */
  remove(path: string): Promise<boolean>;
  /**
   * Optional: removes the blob file `path` and, when it was there, the files `tools` (its mark and
   * labels), in one round trip. 'folder' when `path` is a folder (an old tarn folder blob, left
   * for the lake to remove), 'missing' when there is nothing.
   */
  removeBlob?(path: string, tools: readonly string[]): Promise<'removed' | 'missing' | 'folder'>;
  /** Removes an empty folder; false when there was none. */
  removeDir(path: string): Promise<boolean>;
  /**
   * Replaces `path` with a small file of `text` (`mode`) atomically: a temp file in `.tmp/`
   * renamed over it. Its folder is made when missing, with `dirMode` for the last one.
   */
  writeText(path: string, text: string, mode: number, dirMode?: number): Promise<void>;
  /**
   * Creates the file `path` holding `text` only when there is none (a lock): false when it exists.
   * The file appears whole (never empty); its folder is made when missing, with TOOL_MODE.
   */
  createExclusive(path: string, text: string): Promise<boolean>;
  /**
   * Sets the mtime of a tool's file (a last-used mark) to `time`, creating it and its folder with
   * TOOL_MODE when missing.
   */
  touch(path: string, time: Date): Promise<void>;
  /** Optional: the sha256 of a file computed where it is (no download); undefined when the server cannot. */
  digest?(path: string): Promise<string | null | undefined>;
  /**
   * Optional: stat `path` and, when it exists and `mark` is given, touch `mark`, in one round trip;
   * with `digest`, the file's sha256 too when the server can compute it.
   */
  statAndTouch?(path: string, mark: string | null, time: Date, digest?: boolean): Promise<FileInfo | null>;
}

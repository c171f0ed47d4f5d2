/**
 * A lake on another machine, reached over SFTP: the lake format is LakeLocation's; this file is
 * the SFTP transport under it. It speaks through ssh2's SFTP channel directly, with several
 * requests in flight per transfer, which is what makes large transfers fast.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { Client, FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';
import { LocationError } from '../../errors.js';
import type { Classified } from '../net/failures.js';
import type { Key } from '../../key.js';
import type { FileInfo, LakeFiles, LakeWriter, ListedFile } from '../lake/files.js';
import { BLOB_MODE, TEMP_FOLDER, TOOL_MODE } from '../lake/layout.js';
import { LakeLocation, type LakeOptions } from '../lake/lake-location.js';
import { remoteName, SSHConnection, type SSHOptions } from './ssh-common.js';

export interface SFTPOptions extends SSHOptions, LakeOptions {
  /**
   * Bytes per SFTP read or write request, at most what the server accepts (OpenSSH announces
   * 255 KiB through limits@openssh.com; a larger request would be split by ssh2 into a full one and
   * a small one sent after it, a round trip each). @default 256 KiB, capped at the server's limit
   */
  chunkSize?: number;
  /** SFTP write requests in flight per upload. @default 16 */
  concurrency?: number;
  /**
   * SFTP read requests in flight per download. 16 requests of 255 KiB cover ssh2's 2 MiB channel
   * window twice, so the server always has a request queued while this process is busy or
   * waiting for the CPU. @default 16
   */
  readConcurrency?: number;
  /** Ask the server to fsync each blob (fsync@openssh.com) before it is renamed into place. @default true */
  fsync?: boolean;
}

const STATUS_NO_SUCH_FILE = 2;
const STATUS_PERMISSION_DENIED = 3;
const STATUS_FAILURE = 4;
const STATUS_NO_CONNECTION = 6;
const STATUS_CONNECTION_LOST = 7;
/** Free bytes below which a failed write is taken for a full disk (statvfs@openssh.com). */
const NEARLY_FULL = 1024 * 1024;

type Callback<T> = (error: Error | null | undefined, value: T) => void;

function call<T>(run: (done: Callback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value))));
}

/**
 * The request size for `sftp`: `wanted`, capped at the largest read or write the server takes.
 * ssh2 learns the limits (limits@openssh.com, or its own safe guess) before the channel is ready
 * and keeps them in fields its types do not show; without them, `wanted` is used as it is.
 */
export function requestSize(sftp: SFTPWrapper, wanted: number, kind: 'read' | 'write'): number {
  const limits = sftp as unknown as { _maxReadLen?: unknown; _maxWriteLen?: unknown };
  const limit = kind === 'read' ? limits._maxReadLen : limits._maxWriteLen;
  return typeof limit === 'number' && limit > 0 && limit < wanted ? limit : wanted;
}

function isMissing(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === STATUS_NO_SUCH_FILE;
}

function isFailure(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === STATUS_FAILURE;
}

/** What an SFTP status says (a plain "failure" is only known to be a full disk once the free space is asked). */
function classifySftp(error: unknown): Classified | null {
  switch ((error as { code?: unknown } | null)?.code) {
    case STATUS_NO_SUCH_FILE:
      return { kind: 'not-found' };
    case STATUS_PERMISSION_DENIED:
      return { kind: 'permanent', code: 'ERR_PERMISSION' };
    case STATUS_NO_CONNECTION:
    case STATUS_CONNECTION_LOST:
      return { kind: 'connection' };
    default:
      return null;
  }
}

/**
 * A remote lake over SFTP. `new SFTP('nas.lab', '/srv/lake', { username, privateKey })`.
 * The host key is checked against known_hosts or `hostKeyFingerprint` (see SSHOptions).
 */
export class SFTP extends LakeLocation {
  readonly root: string;

  constructor(host: string, root: string, options: SFTPOptions = {}) {
    const trimmed = root.length > 1 ? root.replace(/\/+$/, '') : root;
    const name = `SFTP(${remoteName(host, trimmed, options)})`;
    super(name, new SftpFiles(host, trimmed, name, options), options);
    this.root = trimmed;
  }

  /** The remote file that holds `key` (whether or not it exists). */
  async pathOf(key: Key): Promise<string> {
    return posix.join(this.root, await this.blobPath(key));
  }
}

/** The lake's files over one SFTP channel per connection. Paths are relative to `root`. */
class SftpFiles implements LakeFiles, LakeWriter {
  readonly writer: LakeWriter = this;
  private readonly connection: SSHConnection;
  private readonly chunkSize: number;
  private readonly concurrency: number;
  private readonly readConcurrency: number;
  private readonly channels = new WeakMap<Client, Promise<SFTPWrapper>>();
  private readonly knownDirs = new Set<string>();

  constructor(
    host: string,
    private readonly root: string,
    readonly name: string,
    private readonly options: SFTPOptions,
  ) {
    this.connection = new SSHConnection(host, options, name, classifySftp);
    this.chunkSize = options.chunkSize ?? 256 * 1024;
    this.concurrency = options.concurrency ?? 16;
    this.readConcurrency = options.readConcurrency ?? 16;
  }

  private at(path: string): string {
    return posix.join(this.root, path);
  }

  async stat(path: string): Promise<FileInfo | null> {
    const stats = await this.sftpOp(`stat ${path}`, (sftp) => statOrNull(sftp, this.at(path)));
    return stats === null ? null : { size: stats.size, isDirectory: stats.isDirectory() };
  }

  openRead(path: string, size: number | null): Readable {
    // the lake always knows a blob's size from a stat; without one, the whole file in one go
    if (size === null) return Readable.from(wholeFile(() => this.readFile(path)));
    return this.downloadStream(this.at(path), size);
  }

  readFile(path: string): Promise<Buffer | null> {
    return this.download(this.at(path));
  }

  async readText(path: string): Promise<string | null> {
    return this.sftpOp(`read ${path}`, (sftp) => readFileOrNull(sftp, this.at(path)));
  }

  async list(dir: string): Promise<ListedFile[]> {
    const entries = await this.sftpOp(`list ${dir || '/'}`, (sftp) => readdirOrEmpty(sftp, this.at(dir)));
    return entries.map((entry) => ({
      name: entry.filename,
      isFile: entry.attrs.isFile(),
      isDirectory: entry.attrs.isDirectory(),
      size: entry.attrs.size,
      mtime: new Date(entry.attrs.mtime * 1000),
    }));
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  async prepare(): Promise<void> {
    await this.sftpOp('create .tmp', (sftp) => this.mkdirs(sftp, this.at(TEMP_FOLDER)));
  }

  /** Not retried: the pieces are taken once. */
  async putTemp(tmp: string, pieces: AsyncIterable<Buffer>): Promise<void> {
    let sftp: SFTPWrapper | null = null;
    try {
      const client = await this.connection.client();
      sftp = await this.sftp(client);
      await this.upload(client, sftp, this.at(tmp), pieces);
    } catch (error) {
      // asked before the temp file is removed, which frees the space again
      const cause = sftp === null ? error : await this.noSpace(sftp, error);
      await this.sftpOp('remove a temp file', (channel) => unlinkIfPresent(channel, this.at(tmp))).catch(() => undefined);
      throw this.connection.calls.failure(`write ${tmp}`, cause);
    }
  }

  async publish(tmp: string, target: string, mark: string | null): Promise<boolean> {
    const published = await this.sftpOp(`store ${target}`, async (sftp) => {
      await this.mkdirs(sftp, posix.dirname(this.at(target)));
      try {
        // plain SFTP rename never replaces a file (OpenSSH links, then unlinks)
        await call<void>((done) => sftp.rename(this.at(tmp), this.at(target), done));
        return true;
      } catch (error) {
        if (isFailure(error) && (await statOrNull(sftp, this.at(target))) !== null) return false;
        throw error;
      }
    });
    if (published && mark !== null) await this.touch(mark, new Date());
    return published;
  }

  async replace(tmp: string, target: string, mark: string | null): Promise<void> {
    await this.sftpOp(`store ${target}`, async (sftp) => {
      await this.mkdirs(sftp, posix.dirname(this.at(target)));
      await renameReplacing(sftp, this.at(tmp), this.at(target));
    });
    if (mark !== null) await this.touch(mark, new Date());
  }

  remove(path: string): Promise<boolean> {
    return this.sftpOp(`delete ${path}`, (sftp) => unlinkIfPresent(sftp, this.at(path)));
  }

  removeDir(path: string): Promise<boolean> {
    return this.sftpOp(`delete ${path}`, async (sftp) => {
      try {
        await call<void>((done) => sftp.rmdir(this.at(path), done));
        return true;
      } catch (error) {
        if (isMissing(error)) return false;
        throw error;
      }
    });
  }

  async writeText(path: string, text: string, mode: number, dirMode?: number): Promise<void> {
    const file = this.at(path);
    const tmp = this.at(`${TEMP_FOLDER}/text.${randomBytes(6).toString('hex')}`);
    await this.sftpOp(`store ${path}`, async (sftp) => {
      await this.mkdirs(sftp, posix.dirname(file), dirMode);
      try {
        await createFile(sftp, tmp, Buffer.from(text), mode);
        await renameReplacing(sftp, tmp, file);
      } finally {
        await unlinkIfPresent(sftp, tmp).catch(() => undefined);
      }
    });
  }

  async createExclusive(path: string, text: string): Promise<boolean> {
    const file = this.at(path);
    return this.sftpOp(`lock ${path}`, async (sftp) => {
      await this.mkdirs(sftp, posix.dirname(file), TOOL_MODE);
      // written aside, then renamed: the plain SFTP rename never replaces a file, and the lock
      // appears with its token in it
      const tmp = this.at(`${TEMP_FOLDER}/lock.${randomBytes(6).toString('hex')}`);
      await call<void>((done) => sftp.writeFile(tmp, Buffer.from(text), { mode: 0o644 }, done));
      // "failure" is the lock that exists, unless it was released before the stat: then again
      for (let attempt = 1; ; attempt++) {
        try {
          await call<void>((done) => sftp.rename(tmp, file, done));
          return true;
        } catch (error) {
          const exists = isFailure(error) && attempt < 3 ? (await statOrNull(sftp, file)) !== null : null;
          if (exists === false) continue;
          await unlinkIfPresent(sftp, tmp).catch(() => undefined);
          if (exists === null) throw error;
          return false;
        }
      }
    });
  }

  async touch(path: string, time: Date): Promise<void> {
    const mark = this.at(path);
    await this.sftpOp(`touch ${path}`, async (sftp) => {
      try {
        await call<void>((done) => sftp.utimes(mark, time, time, done));
      } catch (error) {
        if (!isMissing(error)) throw error;
        await this.mkdirs(sftp, posix.dirname(mark), TOOL_MODE);
        await createFile(sftp, mark, Buffer.alloc(0), TOOL_MODE);
      }
    });
  }

  /** The SFTP channel of the current connection (opened once per connection). */
  private async sftp(client: Client): Promise<SFTPWrapper> {
    let channel = this.channels.get(client);
    if (!channel) {
      channel = call<SFTPWrapper>((done) => client.sftp(done));
      this.channels.set(client, channel);
      channel.catch(() => this.channels.delete(client));
    }
    return channel;
  }

  /** One SFTP operation, with the connection's time limit and retries. */
  private sftpOp<T>(what: string, operation: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    return this.connection.run(what, async (client) => operation(await this.sftp(client)));
  }

  /** Makes `dir` and its missing parents; `mode` (applied past the server's umask) is for `dir` itself. */
  private async mkdirs(sftp: SFTPWrapper, dir: string, mode?: number): Promise<void> {
    if (this.knownDirs.has(dir) || dir === '/' || dir === '.' || dir === '') return;
    try {
      await call<void>((done) => sftp.mkdir(dir, done));
      if (mode !== undefined) await call<void>((done) => sftp.chmod(dir, mode, done));
    } catch (error) {
      if (isMissing(error)) {
        await this.mkdirs(sftp, posix.dirname(dir));
        await this.mkdirs(sftp, dir, mode);
        return;
      }
      // OpenSSH answers a plain "failure" when the folder exists
      const stats = await statOrNull(sftp, dir);
      if (stats === null || !stats.isDirectory()) throw error;
    }
    this.knownDirs.add(dir);
  }

  /**
   * SFTP (version 3) reports a full disk as a plain "failure": when the server's filesystem is
   * (nearly) full, say so with ERR_NO_SPACE. Other errors pass as they are.
   */
  private async noSpace(sftp: SFTPWrapper, error: unknown): Promise<unknown> {
    if (!isFailure(error)) return error;
    const stats = await call<{ bavail: number; frsize: number }>((done) => sftp.ext_openssh_statvfs(this.root, done)).catch(() => null);
    if (stats === null || stats.bavail * stats.frsize >= NEARLY_FULL) return error;
    return new LocationError(`${this.name}: the server's disk is full`, this.name, { cause: error, code: 'ERR_NO_SPACE' });
  }

  /** Streams pieces into a new remote file, several writes in flight. */
  private async upload(client: Client, sftp: SFTPWrapper, tmp: string, pieces: AsyncIterable<Buffer>): Promise<void> {
    const timed = <T>(promise: Promise<T>) => this.connection.timed(client, promise);
    const handle = await timed(call<Buffer>((done) => sftp.open(tmp, 'w', { mode: BLOB_MODE }, done)));
    const chunkSize = requestSize(sftp, this.chunkSize, 'write');
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    let position = 0;
    let wakeUp: (() => void) | null = null;
    const send = (chunk: Buffer) => {
      const at = position;
      position += chunk.length;
      const request = timed(call<void>((done) => sftp.write(handle, chunk, 0, chunk.length, at, done)))
        .catch((error: unknown) => {
          failure ??= error;
        })
        .finally(() => {
          inFlight.delete(request);
          wakeUp?.();
        });
      inFlight.add(request);
    };
    // waits for a free slot (or the first failure)
    const slot = async () => {
      while (inFlight.size >= this.concurrency && !failure) await new Promise<void>((resolve) => (wakeUp = resolve));
      wakeUp = null;
      if (failure) throw failure;
    };
    try {
      // ssh2 copies each write into its own packet at once, so a request can be a view of the
      // source's piece; only a request that spans two pieces is copied together
      const pending: Buffer[] = [];
      let pendingSize = 0;
      for await (const bytes of pieces) {
        pending.push(bytes);
        pendingSize += bytes.length;
        while (pendingSize >= chunkSize) {
          send(takeBytes(pending, chunkSize));
          pendingSize -= chunkSize;
          await slot();
        }
      }
      if (pendingSize > 0) send(takeBytes(pending, pendingSize));
      await Promise.all(inFlight);
      if (failure) throw failure;
      if (this.options.fsync ?? true) {
        await timed(call<unknown>((done) => sftp.ext_openssh_fsync(handle, done))).catch((error: unknown) => {
          // servers without fsync@openssh.com: the rename still publishes a complete file
          if (!/not supported/i.test((error as Error)?.message ?? '')) throw error;
        });
      }
    } finally {
      await Promise.allSettled(inFlight);
      await timed(call<void>((done) => sftp.close(handle, done))).catch(() => undefined);
    }
  }

  /**
   * A remote file's bytes, several reads in flight; null when it does not exist. Each request has
   * the time limit (a large file may take longer in all); the whole read is retried after a lost
   * connection.
   */
  private download(file: string): Promise<Buffer | null> {
    return this.connection.calls.runOrNull(`read ${file}`, async () => {
      const client = await this.connection.client();
      const sftp = await this.sftp(client);
      const timed = <T>(promise: Promise<T>) => this.connection.timed(client, promise);
      // a missing file is SFTP's "no such file", a miss for runOrNull
      const handle = await timed(call<Buffer>((done) => sftp.open(file, 'r', done)));
      try {
        const { size } = await timed(call<Stats>((done) => sftp.fstat(handle, done)));
        const bytes = Buffer.allocUnsafe(size);
        const chunkSize = requestSize(sftp, this.chunkSize, 'read');
        let next = 0;
        let short = size;
        // `readConcurrency` workers, each reading the next chunk straight into place
        const worker = async () => {
          while (next < size) {
            const at = next;
            const length = Math.min(chunkSize, size - at);
            next += length;
            let got: number;
            try {
              got = await timed(readInto(sftp, handle, bytes, at, length));
            } catch (error) {
              next = size; // the other workers stop after their current read
              throw error;
            }
            if (got < length) short = Math.min(short, at + got);
          }
        };
        await Promise.all(Array.from({ length: Math.max(1, this.readConcurrency) }, worker));
        // a file shorter than its stat said: hand back what is there, the hash check will notice
        if (short < size) return bytes.subarray(0, short);
        return bytes;
      } finally {
        await call<void>((done) => sftp.close(handle, done)).catch(() => undefined);
      }
    });
  }

  /**
   * A stream of a remote file of known size, with up to `readConcurrency` reads in flight: a new
   * read is sent as soon as the oldest one is handed on, so the server always has work queued.
   * The chunks are pushed in order; the stream's buffer and the reads in flight bound the memory.
   */
  private downloadStream(file: string, size: number): Readable {
    let handle: Buffer | null = null;
    let sftp: SFTPWrapper | null = null;
    let client: Client | null = null;
    let chunkSize = this.chunkSize;
    let next = 0;
    const queue: Promise<Buffer>[] = [];
    const timed = <T>(promise: Promise<T>) => this.connection.timed(client!, promise);
    const depth = Math.max(1, this.readConcurrency);
    const fill = () => {
      while (queue.length < depth && next < size && handle !== null) {
        const at = next;
        const length = Math.min(chunkSize, size - at);
        next += length;
        const chunk = timed(readExactly(sftp!, handle, at, length));
        chunk.catch(() => undefined); // consumed in order below; this only silences chunks never reached
        queue.push(chunk);
      }
    };
    const name = this.name;
    const connection = this.connection;
    const open = async () => {
      client = await connection.client();
      sftp = await this.sftp(client);
      chunkSize = requestSize(sftp, this.chunkSize, 'read');
      try {
        handle = await timed(call<Buffer>((done) => sftp!.open(file, 'r', done)));
      } catch (error) {
        if (isMissing(error)) throw new LocationError(`${name}: ${file} vanished while it was read`, name, { cause: error, code: 'ERR_VANISHED' });
        throw error;
      }
    };
    return new Readable({
      highWaterMark: this.chunkSize,
      read() {
        (async () => {
          if (handle === null) await open();
          fill();
          const head = queue.shift();
          if (!head) return this.push(null);
          const chunk = await head;
          fill(); // the freed slot: ask for the next chunk before this one is processed downstream
          this.push(chunk);
        })().catch((error: unknown) => this.destroy(connection.calls.failure(`read ${file}`, error)));
      },
      destroy(error, callback) {
        if (handle !== null && sftp !== null) sftp.close(handle, () => undefined);
        handle = null;
        callback(error);
      },
    });
  }
}

async function* wholeFile(read: () => Promise<Buffer | null>): AsyncIterable<Buffer> {
  const bytes = await read();
  if (bytes !== null) yield bytes;
}

async function statOrNull(sftp: SFTPWrapper, path: string): Promise<Stats | null> {
  try {
    return await call<Stats>((done) => sftp.stat(path, done));
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

async function unlinkIfPresent(sftp: SFTPWrapper, path: string): Promise<boolean> {
  try {
    await call<void>((done) => sftp.unlink(path, done));
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

async function readFileOrNull(sftp: SFTPWrapper, path: string): Promise<string | null> {
  try {
    return (await call<Buffer>((done) => sftp.readFile(path, done))).toString('utf8');
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

/** Writes a new file with `mode`, set again after writing: the server's umask applies at creation. */
async function createFile(sftp: SFTPWrapper, path: string, bytes: Buffer, mode: number): Promise<void> {
  await call<void>((done) => sftp.writeFile(path, bytes, { mode }, done));
  await call<void>((done) => sftp.chmod(path, mode, done));
}

async function readdirOrEmpty(sftp: SFTPWrapper, dir: string): Promise<FileEntryWithStats[]> {
  try {
    return await call<FileEntryWithStats[]>((done) => sftp.readdir(dir, done));
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

/** Renames over an existing file (posix-rename@openssh.com), falling back to unlink + rename. */
async function renameReplacing(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  try {
    await call<void>((done) => sftp.ext_openssh_rename(from, to, done));
    return;
  } catch (error) {
    if (!/not supported/i.test((error as Error)?.message ?? '')) throw error;
  }
  try {
    await call<void>((done) => sftp.rename(from, to, done));
  } catch (error) {
    if ((error as { code?: unknown }).code !== STATUS_FAILURE) throw error;
    await unlinkIfPresent(sftp, to);
    await call<void>((done) => sftp.rename(from, to, done));
  }
}

/** Cuts the first `size` bytes off `pieces` (which hold that many): a view of the first piece when it is long enough, else a copy. */
function takeBytes(pieces: Buffer[], size: number): Buffer {
  const first = pieces[0]!;
  if (first.length >= size) {
    if (first.length === size) pieces.shift();
    else pieces[0] = first.subarray(size);
    return first.subarray(0, size);
  }
  const joined = Buffer.concat(pieces, size); // copies `size` bytes, not all of `pieces`
  let left = size;
  while (left > 0) {
    const head = pieces[0]!;
    if (head.length > left) {
      pieces[0] = head.subarray(left);
      break;
    }
    left -= head.length;
    pieces.shift();
  }
  return joined;
}

/** Reads up to `length` bytes at `position` into `buffer` at `offset`; fewer only at the end of the file. */
async function readInto(sftp: SFTPWrapper, handle: Buffer, buffer: Buffer, offset: number, length: number, position = offset): Promise<number> {
  let done = 0;
  while (done < length) {
    // a server may answer with fewer bytes than asked for: ask again for the rest
    const got = await new Promise<number>((resolve, reject) =>
      sftp.read(handle, buffer, offset + done, length - done, position + done, (error, bytesRead) => (error ? reject(error) : resolve(bytesRead))),
    );
    if (got === 0) break;
    done += got;
  }
  return done;
}

/** Reads exactly `length` bytes at `position` (a server may answer with fewer). */
async function readExactly(sftp: SFTPWrapper, handle: Buffer, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  const done = await readInto(sftp, handle, buffer, 0, length, position);
  // a file shorter than its stat said: hand back what is there, the hash check will notice
  return done === length ? buffer : buffer.subarray(0, done);
}

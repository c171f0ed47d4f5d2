/**
 * A lake on another machine, reached over SFTP: read and write, laid out as a tarn Disk lake
 * (the remote config.yml decides the layout). It speaks through ssh2's SFTP channel directly,
 * with several requests in flight per transfer, which is what makes large transfers fast.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { Client, FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';
import { type Source, type Value, verifiedValue, verifyBytes } from '../../blob.js';
import { LocationError, StorageCorruption, TimeoutError } from '../../errors.js';
import { assertKey, digestBytes, type Key } from '../../key.js';
import { diskConfigText, DEFAULT_LEVELS, CONFIG_NAME } from '../disk/disk-config.js';
import { type Entry, type Location, readEach } from '../interface.js';
import { KeyQueue } from '../key-queue.js';
import {
  layoutFrom,
  mergeLabels,
  parseLabels,
  type RemoteLayout,
  remoteName,
  SSHConnection,
  type SSHOptions,
  withTimeout,
} from './ssh-common.js';

export interface SFTPOptions extends SSHOptions {
  /**
   * Folder layout used when the remote lake is created (an empty or missing folder); an existing
   * lake's config.yml decides, and must agree when this is given. @default [1, -1]
   */
  levels?: number[];
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
  /** A key's last-used mark is updated by reads at most once per this many ms per process. @default 60000 */
  touchInterval?: number;
}

const SMALL_VALUE = 1024 * 1024;
const STATUS_NO_SUCH_FILE = 2;
const STATUS_FAILURE = 4;

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

/**
 * A remote lake over SFTP. `new SFTP('nas.lab', '/srv/lake', { username, privateKey })`.
 * The host key is checked against known_hosts or `hostKeyFingerprint` (see SSHOptions).
 */
export class SFTP implements Location {
  readonly name: string;
  readonly root: string;
  private readonly connection: SSHConnection;
  private readonly options: SFTPOptions;
  private readonly chunkSize: number;
  private readonly concurrency: number;
  private readonly readConcurrency: number;
  private readonly touchInterval: number;
  private readonly channels = new WeakMap<Client, Promise<SFTPWrapper>>();
  private layoutPromise: Promise<RemoteLayout> | null = null;
  private readonly knownDirs = new Set<string>();
  private readonly writes = new KeyQueue();
  private readonly lastTouch = new Map<Key, number>();

  constructor(host: string, root: string, options: SFTPOptions = {}) {
    this.options = options;
    this.root = root.length > 1 ? root.replace(/\/+$/, '') : root;
    this.name = `SFTP(${remoteName(host, this.root, options)})`;
    this.connection = new SSHConnection(host, options, this.name);
    this.chunkSize = options.chunkSize ?? 256 * 1024;
    this.concurrency = options.concurrency ?? 16;
    this.readConcurrency = options.readConcurrency ?? 16;
    this.touchInterval = options.touchInterval ?? 60_000;
  }

  /** The remote file that holds `key` (whether or not it exists). */
  async pathOf(key: Key): Promise<string> {
    assertKey(key);
    return (await this.layout()).paths.blob(key);
  }

  async read(key: Key): Promise<Value | null> {
    assertKey(key);
    const layout = await this.layout();
    const file = layout.paths.blob(key);
    const stats = await this.sftpOp(`stat ${key}`, (sftp) => statOrNull(sftp, file));
    if (stats === null) return null;
    await this.touchMark(key, false);
    const size = stats.size;
    return verifiedValue(key, this.name, {
      size,
      open: () => this.downloadStream(file, size),
      fetch: () => this.download(file),
      labels: () => this.readLabels(key),
    });
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    assertKey(key);
    const layout = await this.layout();
    const bytes = await this.download(layout.paths.blob(key));
    if (bytes === null) return null;
    verifyBytes(key, bytes, this.name);
    await this.touchMark(key, false);
    return bytes;
  }

  readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    return readEach(this, keys);
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    assertKey(key);
    const layout = await this.layout();
    const file = layout.paths.blob(key);
    await this.writes.run(key, () => this.writeOnce(key, file, source));
    await this.touchMark(key, true);
    if (labels && labels.length > 0) await this.updateLabels(key, labels);
    // the remote file now in place, downloaded (and verified) only when used; a source of unknown
    // size costs a stat (the download is paced by the size)
    const size = source.size ?? (await this.sftpOp(`stat ${key}`, (sftp) => statOrNull(sftp, file)))?.size;
    if (size === undefined) throw new LocationError(`${this.name}: ${key} vanished right after it was written`, this.name, { code: 'ERR_VANISHED' });
    return verifiedValue(key, this.name, {
      size,
      open: () => this.downloadStream(file, size),
      fetch: () => this.download(file),
      labels: () => this.readLabels(key),
    });
  }

  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    const layout = await this.layout();
    const removed = await this.sftpOp(`delete ${key}`, (sftp) => unlinkIfPresent(sftp, layout.paths.blob(key)));
    if (!removed) return false;
    this.lastTouch.delete(key);
    await this.sftpOp(`delete the marks of ${key}`, (sftp) =>
      Promise.all([unlinkIfPresent(sftp, layout.paths.mark(key)), unlinkIfPresent(sftp, layout.paths.labels(key))]),
    );
    return true;
  }

  async touch(key: Key): Promise<boolean> {
    assertKey(key);
    const layout = await this.layout();
    const stats = await this.sftpOp(`stat ${key}`, (sftp) => statOrNull(sftp, layout.paths.blob(key)));
    if (stats === null) return false;
    await this.touchMark(key, true);
    return true;
  }

  async *contents(): AsyncIterable<Entry> {
    const layout = await this.layout();
    const { paths } = layout;
    const usageDirs = new Map<string, Map<string, Date>>();
    const labelDirs = new Map<string, Set<string>>();
    const listDir = (dir: string) => this.sftpOp(`list ${dir}`, (sftp) => readdirOrEmpty(sftp, dir));
    const marks = async (prefix: string) => {
      let found = usageDirs.get(prefix);
      if (!found) {
        found = new Map();
        if (layout.keepUsage) {
          for (const entry of await listDir(posix.join(this.root, 'tools', 'usage', prefix))) {
            found.set(entry.filename, new Date(entry.attrs.mtime * 1000));
          }
        }
        usageDirs.set(prefix, found);
      }
      return found;
    };
    const labelled = async (prefix: string) => {
      let found = labelDirs.get(prefix);
      if (!found) {
        found = new Set();
        if (layout.keepLabels) {
          for (const entry of await listDir(posix.join(this.root, 'tools', 'labels', prefix))) found.add(entry.filename);
        }
        labelDirs.set(prefix, found);
      }
      return found;
    };
    const walk = async function* (this: SFTP, dir: string, parts: string[]): AsyncIterable<Entry> {
      const entries = (await listDir(dir)).sort((a, b) => (a.filename < b.filename ? -1 : 1));
      for (const entry of entries) {
        const name = entry.filename;
        if (parts.length === 0 && (name === 'tools' || name.startsWith('.') || name === CONFIG_NAME)) continue;
        const next = [...parts, name];
        if (next.length < paths.levels.length) {
          if (entry.attrs.isDirectory()) yield* walk.call(this, posix.join(dir, name), next);
          continue;
        }
        const key = paths.keyOf(next);
        if (key === null || !entry.attrs.isFile()) continue;
        const prefix = key.slice(0, 2);
        const rest = key.slice(2);
        const labels = (await labelled(prefix)).has(rest + '.json') ? await this.readLabels(key) : null;
        yield { key, location: this, meta: { size: entry.attrs.size, labels, lastUsed: (await marks(prefix)).get(rest) ?? null } };
      }
    };
    yield* walk.call(this, this.root, []);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  /** Reads (or creates, tarn-style) the remote config.yml, once. */
  private layout(): Promise<RemoteLayout> {
    if (!this.layoutPromise) {
      this.layoutPromise = this.loadLayout();
      // a failure (server down) is not remembered: the next call tries again
      this.layoutPromise.catch(() => (this.layoutPromise = null));
    }
    return this.layoutPromise;
  }

  private async loadLayout(): Promise<RemoteLayout> {
    const configPath = posix.join(this.root, CONFIG_NAME);
    const where = `${this.name}/${CONFIG_NAME}`;
    let text = await this.sftpOp('read config.yml', (sftp) => readFileOrNull(sftp, configPath));
    if (text === null) {
      const levels = this.options.levels ?? DEFAULT_LEVELS;
      const content = diskConfigText(levels);
      text = await this.sftpOp('create config.yml', async (sftp) => {
        await this.mkdirs(sftp, posix.join(this.root, '.tmp'));
        const tmp = posix.join(this.root, '.tmp', `config.${process.pid}.${Date.now()}`);
        await writeFile(sftp, tmp, Buffer.from(content), 0o644);
        try {
          // plain SFTP rename never replaces a file: when another client created the config first, theirs wins
          await call<void>((done) => sftp.rename(tmp, configPath, done));
        } catch {
          await unlinkIfPresent(sftp, tmp);
        }
        return readFileOrNull(sftp, configPath);
      });
      if (text === null) throw new LocationError(`${this.name}: cannot create ${configPath}`, this.name);
    } else {
      await this.sftpOp('create .tmp', (sftp) => this.mkdirs(sftp, posix.join(this.root, '.tmp')));
    }
    return layoutFrom(text, this.root, where, this.options.levels);
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

  private async mkdirs(sftp: SFTPWrapper, dir: string): Promise<void> {
    if (this.knownDirs.has(dir) || dir === '/' || dir === '.' || dir === '') return;
    try {
      await call<void>((done) => sftp.mkdir(dir, done));
    } catch (error) {
      if (isMissing(error)) {
        await this.mkdirs(sftp, posix.dirname(dir));
        await this.mkdirs(sftp, dir);
        return;
      }
      // OpenSSH answers a plain "failure" when the folder exists
      const stats = await statOrNull(sftp, dir);
      if (stats === null || !stats.isDirectory()) throw error;
    }
    this.knownDirs.add(dir);
  }

  private async writeOnce(key: Key, file: string, source: Source): Promise<void> {
    const existing = await this.sftpOp(`stat ${key}`, (sftp) => statOrNull(sftp, file));
    if (existing !== null && (await this.isIntact(key, file, existing.size))) return;
    const layout = await this.layout();
    const tmp = layout.paths.tmp(key.slice(0, 16));
    const client = await this.connection.client();
    const sftp = await this.sftp(client);
    try {
      await this.upload(client, sftp, tmp, key, source);
      await this.sftpOp(`store ${key}`, async (channel) => {
        await this.mkdirs(channel, posix.dirname(file));
        await renameReplacing(channel, tmp, file);
      });
    } catch (error) {
      await this.sftpOp('remove a temp file', (channel) => unlinkIfPresent(channel, tmp)).catch(() => undefined);
      throw this.connection.wrap(error, `write ${key}`);
    }
  }

  /** Small blobs in place are checked byte for byte; a large one of the same key is trusted. */
  private async isIntact(key: Key, file: string, size: number): Promise<boolean> {
    if (size > SMALL_VALUE) return true;
    const bytes = await this.download(file);
    if (bytes === null) return false;
    return digestBytes(bytes) === key;
  }

  /** Streams the source into a new remote file, several writes in flight, hashing as it goes. */
  private async upload(client: Client, sftp: SFTPWrapper, tmp: string, key: Key, source: Source): Promise<void> {
    const limit = this.connection.timeoutMs;
    const timed = <T>(what: string, promise: Promise<T>) =>
      withTimeout(promise, limit, () => {
        this.connection.drop(client);
        return new TimeoutError(`${this.name}: ${what} took longer than ${limit} ms`, this.name, limit);
      });
    const handle = await timed('opening a temp file', call<Buffer>((done) => sftp.open(tmp, 'w', { mode: 0o444 }, done)));
    const hash = source.verified ? null : createHash('sha256');
    const chunkSize = requestSize(sftp, this.chunkSize, 'write');
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    let position = 0;
    let wakeUp: (() => void) | null = null;
    const send = (chunk: Buffer) => {
      const at = position;
      position += chunk.length;
      const request = timed('a write', call<void>((done) => sftp.write(handle, chunk, 0, chunk.length, at, done)))
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
      const stream = source.stream();
      try {
        for await (const piece of stream as AsyncIterable<Uint8Array>) {
          const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
          hash?.update(bytes);
          pending.push(bytes);
          pendingSize += bytes.length;
          while (pendingSize >= chunkSize) {
            send(takeBytes(pending, chunkSize));
            pendingSize -= chunkSize;
            await slot();
          }
        }
      } finally {
        stream.destroy();
      }
      if (pendingSize > 0) send(takeBytes(pending, pendingSize));
      await Promise.all(inFlight);
      if (failure) throw failure;
      if (hash) {
        const actual = hash.digest('hex');
        if (actual !== key) throw new StorageCorruption(key, actual, `a copy into ${this.name}`);
      }
      if (this.options.fsync ?? true) {
        await timed('fsync', call<unknown>((done) => sftp.ext_openssh_fsync(handle, done))).catch((error: unknown) => {
          // servers without fsync@openssh.com: the rename still publishes a complete file
          if (!/not supported/i.test((error as Error)?.message ?? '')) throw error;
        });
      }
    } finally {
      await Promise.allSettled(inFlight);
      await timed('closing a temp file', call<void>((done) => sftp.close(handle, done))).catch(() => undefined);
    }
  }

  /** A remote file's bytes, several reads in flight; null when it does not exist. */
  private async download(file: string): Promise<Buffer | null> {
    return this.sftpOp(`read ${file}`, async (sftp) => {
      let handle: Buffer;
      try {
        handle = await call<Buffer>((done) => sftp.open(file, 'r', done));
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
      try {
        const { size } = await call<Stats>((done) => sftp.fstat(handle, done));
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
              got = await readInto(sftp, handle, bytes, at, length);
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
    const limit = this.connection.timeoutMs;
    let handle: Buffer | null = null;
    let sftp: SFTPWrapper | null = null;
    let client: Client | null = null;
    let chunkSize = this.chunkSize;
    let next = 0;
    const queue: Promise<Buffer>[] = [];
    const timed = <T>(what: string, promise: Promise<T>) =>
      withTimeout(promise, limit, () => {
        this.connection.drop(client);
        return new TimeoutError(`${this.name}: ${what} took longer than ${limit} ms`, this.name, limit);
      });
    const depth = Math.max(1, this.readConcurrency);
    const fill = () => {
      while (queue.length < depth && next < size && handle !== null) {
        const at = next;
        const length = Math.min(chunkSize, size - at);
        next += length;
        const chunk = timed('a read', readExactly(sftp!, handle, at, length));
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
        handle = await timed('opening', call<Buffer>((done) => sftp!.open(file, 'r', done)));
      } catch (error) {
        if (isMissing(error)) throw new LocationError(`${name}: ${file} vanished while it was read`, name, { cause: error });
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
        })().catch((error: unknown) => this.destroy(connection.wrap(error, `read ${file}`)));
      },
      destroy(error, callback) {
        if (handle !== null && sftp !== null) sftp.close(handle, () => undefined);
        handle = null;
        callback(error);
      },
    });
  }

  private async readLabels(key: Key): Promise<string[] | null> {
    const layout = await this.layout();
    if (!layout.keepLabels) return null;
    const text = await this.sftpOp(`read the labels of ${key}`, (sftp) => readFileOrNull(sftp, layout.paths.labels(key)));
    return text === null ? null : parseLabels(text, this.name);
  }

  /** Adds labels to the key's set (tarn's JsonLabels keeps the union), atomically. */
  private async updateLabels(key: Key, labels: readonly string[]): Promise<void> {
    const layout = await this.layout();
    if (!layout.keepLabels) return;
    const merged = mergeLabels(await this.readLabels(key), labels);
    if (merged === null) return;
    const file = layout.paths.labels(key);
    const tmp = layout.paths.tmp('labels');
    await this.sftpOp(`store the labels of ${key}`, async (sftp) => {
      await this.mkdirs(sftp, posix.dirname(file));
      try {
        await writeFile(sftp, tmp, Buffer.from(JSON.stringify(merged)), 0o644);
        await renameReplacing(sftp, tmp, file);
      } finally {
        await unlinkIfPresent(sftp, tmp).catch(() => undefined);
      }
    });
  }

  /** Updates tarn's last-used mark (at most once per `touchInterval` unless forced). */
  private async touchMark(key: Key, force: boolean): Promise<void> {
    const layout = await this.layout();
    if (!layout.keepUsage) return;
    const now = Date.now();
    if (!force && now - (this.lastTouch.get(key) ?? 0) < this.touchInterval) return;
    if (this.lastTouch.size > 100_000) this.lastTouch.clear();
    this.lastTouch.set(key, now);
    const mark = layout.paths.mark(key);
    const time = new Date(now);
    await this.sftpOp(`touch ${key}`, async (sftp) => {
      try {
        await call<void>((done) => sftp.utimes(mark, time, time, done));
      } catch (error) {
        if (!isMissing(error)) throw error;
        await this.mkdirs(sftp, posix.dirname(mark));
        await writeFile(sftp, mark, Buffer.alloc(0), 0o644);
      }
    });
  }
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

async function writeFile(sftp: SFTPWrapper, path: string, bytes: Buffer, mode: number): Promise<void> {
  await call<void>((done) => sftp.writeFile(path, bytes, { mode }, done));
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

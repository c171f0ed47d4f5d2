/**
 * A lake on another machine, reached with the scp protocol: read and write, laid out as a tarn
 * Disk lake (the remote config.yml decides the layout).
 *
 * There is no scp library: blobs move through `scp -t` (upload) and `scp -f` (download) run on
 * an ssh2 exec channel, speaking scp's small protocol; everything else (size checks, rename,
 * delete, labels, usage marks, listing) is one short POSIX shell command per call. The server
 * needs a POSIX shell and scp; `contents()` also needs GNU find (`-printf`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { type Source, type Value, verifiedValue, verifyBytes } from '../../blob.js';
import { LocationError, StorageCorruption, TimeoutError } from '../../errors.js';
import { assertKey, digestBytes, type Key } from '../../key.js';
import { CONFIG_NAME, DEFAULT_LEVELS, lakeConfigText } from '../lake/config.js';
import { type Entry, type Location, readEach } from '../interface.js';
import { KeyQueue } from '../key-queue.js';
import {
  layoutFrom,
  mergeLabels,
  parseLabels,
  type RemoteLayout,
  remoteName,
  shellQuote as q,
  SSHConnection,
  type SSHOptions,
} from './ssh-common.js';

export interface SCPOptions extends SSHOptions {
  /**
   * Folder layout used when the remote lake is created (an empty or missing folder); an existing
   * lake's config.yml decides, and must agree when this is given. @default [1, -1]
   */
  levels?: number[];
  /** A key's last-used mark is updated by reads at most once per this many ms per process. @default 60000 */
  touchInterval?: number;
  /** Where a stream of unknown size is spooled before upload (scp must announce the size first). @default the OS temp folder */
  spoolDir?: string;
}

/** Exit status our shell snippets use for "no such file". */
const MISSING = 3;

interface ExecResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * A remote lake over scp. `new SCP('nas.lab', '/srv/lake', { username, privateKey })`.
 * The host key is checked against known_hosts or `hostKeyFingerprint` (see SSHOptions).
 */
export class SCP implements Location {
  readonly name: string;
  readonly root: string;
  private readonly connection: SSHConnection;
  private readonly options: SCPOptions;
  private readonly touchInterval: number;
  private layoutPromise: Promise<RemoteLayout> | null = null;
  private readonly writes = new KeyQueue();
  private readonly lastTouch = new Map<Key, number>();

  constructor(host: string, root: string, options: SCPOptions = {}) {
    this.options = options;
    this.root = root.length > 1 ? root.replace(/\/+$/, '') : root;
    this.name = `SCP(${remoteName(host, this.root, options)})`;
    this.connection = new SSHConnection(host, options, this.name);
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
    const size = await this.sizeOf(file, `stat ${key}`, this.markCommand(key, layout, false));
    if (size === null) return null;
    return verifiedValue(key, this.name, {
      size,
      open: () => this.download(file, true),
      fetch: () => this.downloadBytes(file),
      labels: () => this.readLabels(key),
    });
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    assertKey(key);
    const layout = await this.layout();
    const bytes = await this.downloadBytes(layout.paths.blob(key));
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
    await this.writes.run(key, () => this.writeOnce(key, layout, source));
    this.lastTouch.set(key, Date.now()); // the publish command touched the mark
    if (labels && labels.length > 0) await this.updateLabels(key, labels);
    // the remote file now in place, downloaded (and verified) only when used
    const file = layout.paths.blob(key);
    return verifiedValue(key, this.name, {
      size: source.size,
      open: () => this.download(file, true),
      fetch: () => this.downloadBytes(file),
      labels: () => this.readLabels(key),
    });
  }

  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    const { paths } = await this.layout();
    const file = paths.blob(key);
    const result = await this.exec(
      `delete ${key}`,
      `if [ -f ${q(file)} ]; then rm -f ${q(file)} ${q(paths.mark(key))} ${q(paths.labels(key))}; else exit ${MISSING}; fi`,
    );
    this.lastTouch.delete(key);
    return this.succeeded(result, `delete ${key}`);
  }

  async touch(key: Key): Promise<boolean> {
    assertKey(key);
    const layout = await this.layout();
    const file = layout.paths.blob(key);
    const mark = layout.paths.mark(key);
    const markCommand = layout.keepUsage ? ` && mkdir -p ${q(posix.dirname(mark))} && touch ${q(mark)}` : '';
    const result = await this.exec(`touch ${key}`, `if [ -f ${q(file)} ]; then true${markCommand}; else exit ${MISSING}; fi`);
    if (this.succeeded(result, `touch ${key}`)) {
      this.lastTouch.set(key, Date.now());
      return true;
    }
    return false;
  }

  async *contents(): AsyncIterable<Entry> {
    const layout = await this.layout();
    const { paths } = layout;
    // one command lists blobs, usage marks and labels: a round trip per listing, not per key
    const script = [
      `cd ${q(this.root)} || exit 1`,
      `find . -path ./.tmp -prune -o -path ./tools -prune -o -type f -printf 'B\\t%P\\t%s\\n'`,
      `[ -d tools/usage ] && find tools/usage -type f -printf 'U\\t%P\\t%T@\\n'`,
      `[ -d tools/labels ] && find tools/labels -type f -name '*.json' -printf '%P\\n' | while read -r f; do printf 'L\\t%s\\t' "$f"; tr -d '\\n' < "tools/labels/$f"; echo; done`,
      'exit 0',
    ].join('\n');
    const result = await this.exec('list the lake', script);
    if (result.code !== 0) throw this.commandFailed('list the lake', result);
    const blobs: [string, number][] = [];
    const usage = new Map<string, Date>();
    const labels = new Map<string, string[]>();
    for (const line of result.stdout.toString('utf8').split('\n')) {
      const [kind, path, value] = line.split('\t');
      if (!path || value === undefined) continue;
      if (kind === 'B') {
        const key = paths.keyOf(path.split('/'));
        if (key !== null) blobs.push([key, Number(value)]);
      } else if (kind === 'U') {
        usage.set(path.replace('/', ''), new Date(Number(value) * 1000));
      } else if (kind === 'L' && layout.keepLabels) {
        labels.set(path.replace('/', '').replace(/\.json$/, ''), parseLabels(value, this.name));
      }
    }
    blobs.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    for (const [key, size] of blobs) {
      yield {
        key,
        location: this,
        meta: { size, labels: labels.get(key) ?? null, lastUsed: layout.keepUsage ? (usage.get(key) ?? null) : null },
      };
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  private layout(): Promise<RemoteLayout> {
    if (!this.layoutPromise) {
      this.layoutPromise = this.loadLayout();
      this.layoutPromise.catch(() => (this.layoutPromise = null));
    }
    return this.layoutPromise;
  }

  private async loadLayout(): Promise<RemoteLayout> {
    const config = posix.join(this.root, CONFIG_NAME);
    const tmpDir = posix.join(this.root, '.tmp');
    const text = lakeConfigText(this.options.levels ?? DEFAULT_LEVELS);
    // an existing config wins; a missing one is created by link(), which never replaces a file
    const script = [
      `if [ ! -f ${q(config)} ]; then`,
      `  mkdir -p ${q(tmpDir)} || exit 1`,
      `  t=${q(tmpDir)}/config.$$`,
      `  printf '%s' ${q(text)} > "$t" && ln "$t" ${q(config)} 2>/dev/null; rm -f "$t"`,
      `fi`,
      `mkdir -p ${q(tmpDir)} 2>/dev/null`,
      `cat ${q(config)}`,
    ].join('\n');
    const result = await this.exec('read config.yml', script);
    if (result.code !== 0) throw this.commandFailed('read config.yml', result);
    return layoutFrom(result.stdout.toString('utf8'), this.root, `${this.name}/${CONFIG_NAME}`, this.options.levels);
  }

  private async writeOnce(key: Key, layout: RemoteLayout, source: Source): Promise<void> {
    const { paths } = layout;
    const file = paths.blob(key);
    // a blob already in place is checked on the server (sha256sum) and its mark touched, in one command
    const check = await this.exec(
      `check ${key}`,
      `if [ -f ${q(file)} ]; then sha256sum < ${q(file)} || exit 127; ${this.markCommand(key, layout, true)}; else exit ${MISSING}; fi`,
    );
    if (check.code === 0 && check.stdout.toString('utf8').startsWith(key)) return;
    if (check.code === 127 && (await this.isIntact(key, file))) return; // no sha256sum on the server
    const tmp = paths.tmp(key.slice(0, 16));
    let spooled: string | null = null;
    try {
      let size = source.size;
      let stream: () => Readable = () => source.stream();
      let verified = source.verified;
      if (size === null) {
        // scp announces the size before the bytes: spool to a local file, hashing on the way
        spooled = join(this.options.spoolDir ?? tmpdir(), `cairn-scp-${randomBytes(8).toString('hex')}`);
        size = await spool(source.stream(), spooled, verified ? null : key, `a copy into ${this.name}`);
        const local = spooled;
        stream = () => createReadStream(local, { highWaterMark: 1024 * 1024 });
        verified = true;
      }
      await this.upload(tmp, size, stream(), verified ? null : key);
      const mark = paths.mark(key);
      const touch = layout.keepUsage ? ` && mkdir -p ${q(posix.dirname(mark))} && touch ${q(mark)}` : '';
      const result = await this.exec(`store ${key}`, `mkdir -p ${q(posix.dirname(file))} && mv -f ${q(tmp)} ${q(file)}${touch}`);
      if (result.code !== 0) throw this.commandFailed(`store ${key}`, result);
    } catch (error) {
      await this.exec('remove a temp file', `rm -f ${q(tmp)}`).catch(() => undefined);
      throw this.connection.wrap(error, `write ${key}`);
    } finally {
      if (spooled) await fsp.rm(spooled, { force: true });
    }
  }

  private async isIntact(key: Key, file: string): Promise<boolean> {
    const bytes = await this.downloadBytes(file);
    return bytes !== null && digestBytes(bytes) === key;
  }

  /** The shell command that updates the key's usage mark, when due ('true' otherwise). */
  private markCommand(key: Key, layout: RemoteLayout, force: boolean): string {
    if (!layout.keepUsage) return 'true';
    const now = Date.now();
    if (!force && now - (this.lastTouch.get(key) ?? 0) < this.touchInterval) return 'true';
    if (this.lastTouch.size > 100_000) this.lastTouch.clear();
    this.lastTouch.set(key, now);
    const mark = layout.paths.mark(key);
    return `{ mkdir -p ${q(posix.dirname(mark))} && touch ${q(mark)}; }`;
  }

  private async sizeOf(file: string, what: string, also = 'true'): Promise<number | null> {
    const result = await this.exec(what, `if [ -f ${q(file)} ]; then wc -c < ${q(file)} && ${also}; else exit ${MISSING}; fi`);
    if (!this.succeeded(result, what)) return null;
    const size = Number(result.stdout.toString('utf8').trim());
    if (!Number.isSafeInteger(size)) throw new LocationError(`${this.name}: ${what}: unexpected answer ${result.stdout.toString('utf8').trim()}`, this.name);
    return size;
  }

  /** True for exit 0, false for our "missing" status; anything else is an error. */
  private succeeded(result: ExecResult, what: string): boolean {
    if (result.code === 0) return true;
    if (result.code === MISSING) return false;
    throw this.commandFailed(what, result);
  }

  private commandFailed(what: string, result: ExecResult): LocationError {
    const detail = result.stderr.trim() || `exit status ${result.code}`;
    return new LocationError(`${this.name}: ${what}: ${detail}`, this.name, {
      code: /Permission denied/i.test(detail) ? 'ERR_PERMISSION' : /No space/i.test(detail) ? 'ERR_NO_SPACE' : 'ERR_LOCATION',
    });
  }

  /** Opens an exec channel (counted against the server's session limit). */
  private async openChannel(client: Client, command: string): Promise<{ channel: ClientChannel; release: () => void }> {
    const release = await this.connection.channels.acquire();
    try {
      const channel = await new Promise<ClientChannel>((resolve, reject) =>
        client.exec(command, (error, stream) => (error ? reject(error) : resolve(stream))),
      );
      channel.once('close', release);
      return { channel, release };
    } catch (error) {
      release();
      throw error;
    }
  }

  /** Runs a shell command; its output is small. */
  private exec(what: string, command: string): Promise<ExecResult> {
    return this.connection.run(what, async (client) => {
      const { channel } = await this.openChannel(client, command);
      return new Promise<ExecResult>((resolve, reject) => {
        const out: Buffer[] = [];
        let err = '';
        let code: number | null = null;
        channel.on('data', (data: Buffer) => out.push(data));
        channel.stderr.on('data', (data: Buffer) => (err += data.toString('utf8')));
        channel.on('exit', (status: number | null) => (code = status));
        channel.on('error', reject);
        channel.on('close', () => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
      });
    });
  }

  /** Sends `size` bytes to a new remote file with `scp -t`; checks the hash when `key` is given. */
  private async upload(tmp: string, size: number, stream: Readable, key: Key | null): Promise<void> {
    const limit = this.connection.timeoutMs;
    const client = await this.connection.client();
    const { channel } = await this.openChannel(client, `scp -t ${q(tmp)}`).catch((error: unknown) => {
      stream.destroy();
      throw error;
    });
    const reader = new ReplyReader(channel, limit, () => {
      this.connection.drop(client);
      return new TimeoutError(`${this.name}: an scp upload stalled for ${limit} ms`, this.name, limit);
    });
    const hash = key === null ? null : createHash('sha256');
    try {
      await reader.ack('scp -t');
      channel.write(`C0444 ${size} ${posix.basename(tmp)}\n`);
      await reader.ack('scp -t');
      let sent = 0;
      for await (const piece of stream) {
        const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
        sent += chunk.length;
        if (sent > size) break;
        hash?.update(chunk);
        if (!channel.write(chunk)) await reader.drained();
      }
      const actual = hash?.digest('hex') ?? null;
      if (sent !== size || (key !== null && actual !== key)) {
        if (key !== null) throw new StorageCorruption(key, sent === size ? actual : null, `a copy into ${this.name}`);
        throw new LocationError(`${this.name}: the source gave ${sent} bytes, not the ${size} it announced`, this.name);
      }
      channel.write(Buffer.from([0]));
      await reader.ack('scp -t');
      channel.end();
      await reader.closed();
    } finally {
      stream.destroy();
      reader.dispose();
      channel.destroy();
    }
  }

  private async downloadBytes(file: string): Promise<Buffer | null> {
    const stream = this.download(file, false);
    const parts: Buffer[] = [];
    try {
      for await (const part of stream) parts.push(part as Buffer);
    } catch (error) {
      if ((error as { missing?: boolean }).missing) return null;
      throw error;
    }
    return Buffer.concat(parts);
  }

  /**
   * The bytes of a remote file through `scp -f`. A missing file fails the stream with an error
   * marked `missing` (a LocationError when `mustExist`, since read() saw it a moment ago).
   */
  private download(file: string, mustExist: boolean): Readable {
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    const limit = this.connection.timeoutMs;
    const run = async () => {
      const client = await this.connection.client();
      const { channel } = await this.openChannel(client, `scp -f ${q(file)}`);
      const reader = new ReplyReader(channel, limit, () => {
        this.connection.drop(client);
        return new TimeoutError(`${this.name}: an scp download stalled for ${limit} ms`, this.name, limit);
      });
      out.once('close', () => channel.destroy());
      try {
        channel.write(Buffer.from([0]));
        const header = await reader.line();
        if (header[0] !== 0x43 /* C */) {
          const message = header.subarray(1).toString('utf8').trim();
          const error = new LocationError(`${this.name}: scp -f ${file}: ${message}`, this.name, {
            code: /Permission denied/i.test(message) ? 'ERR_PERMISSION' : 'ERR_LOCATION',
          });
          if (/No such file/i.test(message)) (error as LocationError & { missing?: boolean }).missing = !mustExist;
          throw error;
        }
        const size = Number(header.toString('utf8').split(' ')[1]);
        if (!Number.isSafeInteger(size)) throw new LocationError(`${this.name}: scp -f ${file}: bad header`, this.name);
        channel.write(Buffer.from([0]));
        await reader.body(size, out);
        await reader.ack('scp -f');
        channel.write(Buffer.from([0]));
        channel.end();
        out.end();
      } finally {
        reader.dispose();
      }
    };
    run().catch((error: unknown) => out.destroy(this.connection.wrap(error, `read ${file}`)));
    return out;
  }

  private async readLabels(key: Key): Promise<string[] | null> {
    const layout = await this.layout();
    if (!layout.keepLabels) return null;
    const file = layout.paths.labels(key);
    const result = await this.exec(`read the labels of ${key}`, `if [ -f ${q(file)} ]; then cat ${q(file)}; else exit ${MISSING}; fi`);
    if (!this.succeeded(result, `read the labels of ${key}`)) return null;
    return parseLabels(result.stdout.toString('utf8'), this.name);
  }

  private async updateLabels(key: Key, labels: readonly string[]): Promise<void> {
    const layout = await this.layout();
    if (!layout.keepLabels) return;
    const merged = mergeLabels(await this.readLabels(key), labels);
    if (merged === null) return;
    const file = layout.paths.labels(key);
    const tmp = layout.paths.tmp('labels');
    const result = await this.exec(
      `store the labels of ${key}`,
      `mkdir -p ${q(posix.dirname(file))} && printf '%s' ${q(JSON.stringify(merged))} > ${q(tmp)} && mv -f ${q(tmp)} ${q(file)} || { rm -f ${q(tmp)}; exit 1; }`,
    );
    if (result.code !== 0) throw this.commandFailed(`store the labels of ${key}`, result);
  }

  private async touchMark(key: Key, force: boolean): Promise<void> {
    const layout = await this.layout();
    if (!layout.keepUsage) return;
    const now = Date.now();
    if (!force && now - (this.lastTouch.get(key) ?? 0) < this.touchInterval) return;
    if (this.lastTouch.size > 100_000) this.lastTouch.clear();
    this.lastTouch.set(key, now);
    const mark = layout.paths.mark(key);
    const result = await this.exec(`touch ${key}`, `mkdir -p ${q(posix.dirname(mark))} && touch ${q(mark)}`);
    if (result.code !== 0) throw this.commandFailed(`touch ${key}`, result);
  }
}

/** Writes a stream to a local file, checking it hashes to `key` (when given); returns the size. */
async function spool(stream: Readable, path: string, key: Key | null, where: string): Promise<number> {
  const hash = createHash('sha256');
  const handle = await fsp.open(path, 'wx', 0o600);
  let size = 0;
  try {
    for await (const piece of stream) {
      const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
      hash.update(chunk);
      size += chunk.length;
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
  const actual = hash.digest('hex');
  if (key !== null && actual !== key) throw new StorageCorruption(key, actual, where);
  return size;
}

/**
 * Reads scp's replies from a channel: one-byte acks (0 = ok, 1/2 + message = error), header
 * lines and file bodies, with an idle time limit.
 */
class ReplyReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private ended = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly channel: ClientChannel,
    private readonly limitMs: number,
    private readonly onTimeout: () => Error,
  ) {
    channel.on('data', (data: Buffer) => {
      this.buffered.push(data);
      this.length += data.length;
      this.wake();
    });
    channel.stderr.on('data', () => undefined);
    channel.on('error', (error: Error) => this.fail(error));
    channel.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  /** Waits for more data (or the end), under the idle limit. */
  private async more(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.ended) throw new LocationError('the scp channel closed early', 'scp');
    await new Promise<void>((resolve) => {
      this.waiter = resolve;
      this.timer = setTimeout(() => this.fail(this.onTimeout()), this.limitMs);
    });
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.failure) throw this.failure;
  }

  private take(count: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.length);
    const taken = all.subarray(0, count);
    const rest = all.subarray(count);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return taken;
  }

  /** A line up to and including "\n". */
  async line(): Promise<Buffer> {
    for (;;) {
      const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.length);
      this.buffered = all.length > 0 ? [all] : [];
      const end = all.indexOf(0x0a);
      if (end !== -1) return this.take(end + 1);
      if (this.ended && !this.failure) {
        if (all.length > 0) return this.take(all.length);
        throw new LocationError('the scp channel closed early', 'scp');
      }
      await this.more();
    }
  }

  /** One ack: 0 is fine; 1 or 2 is followed by an error message line. */
  async ack(what: string): Promise<void> {
    while (this.length === 0) await this.more();
    const code = this.take(1)[0];
    if (code === 0) return;
    const message = (await this.line().catch(() => Buffer.alloc(0))).toString('utf8').trim();
    throw new LocationError(`${what}: ${message || `error ${code}`}`, 'scp', {
      code: /Permission denied/i.test(message) ? 'ERR_PERMISSION' : /No space/i.test(message) ? 'ERR_NO_SPACE' : 'ERR_LOCATION',
    });
  }

  /** Moves exactly `size` bytes into `out`, pausing the channel while `out` is full. */
  async body(size: number, out: PassThrough): Promise<void> {
    let left = size;
    while (left > 0) {
      while (this.length === 0) await this.more();
      const chunk = this.take(Math.min(left, this.length));
      left -= chunk.length;
      if (!out.write(chunk)) {
        this.channel.pause();
        await new Promise<void>((resolve, reject) => {
          out.once('drain', resolve);
          out.once('close', () => reject(new LocationError('the reader went away', 'scp')));
        });
        this.channel.resume();
      }
    }
  }

  /** Resolves when the channel can take more writes. */
  drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(this.onTimeout()), this.limitMs);
      this.channel.once('drain', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Waits until the remote scp exits. */
  async closed(): Promise<void> {
    while (!this.ended) {
      this.buffered = [];
      this.length = 0;
      await this.more().catch((error: unknown) => {
        if (!this.ended) throw error;
      });
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * A lake on another machine, reached with the scp protocol: the lake format is LakeLocation's;
 * this file is the transport under it.
 *
 * There is no scp library: blobs move through `scp -t` (upload) and `scp -f` (download) run on
 * an ssh2 exec channel, speaking scp's small protocol; everything else (stat, rename, delete,
 * labels, usage marks, listing) is one short POSIX shell command per call, and the whole lake is
 * listed by one command. The server needs a POSIX shell, scp and awk; `contents()` also needs GNU
 * find (`-printf`).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { LocationError } from '../../errors.js';
import type { Key } from '../../key.js';
import { DeadlineExceeded } from '../net/deadline.js';
import type { Classified } from '../net/failures.js';
import { type FileInfo, type LakeFiles, type LakeListing, type LakeWriter, type ListedFile, WrongLength } from '../lake/files.js';
import { BLOB_MODE, TEMP_FOLDER, TOOL_MODE } from '../lake/layout.js';
import { LakeLocation, type LakeOptions } from '../lake/lake-location.js';
import { remoteName, shellQuote as q, SSHConnection, type SSHOptions } from './ssh-common.js';

export interface SCPOptions extends SSHOptions, LakeOptions {
  /** Where a stream of unknown size is spooled before upload (scp must announce the size first). @default the OS temp folder */
  spoolDir?: string;
}

/** Exit status our shell snippets use for "no such file". */
const MISSING = 3;
/** Exit status for "the target exists" (a publish that must not replace). */
const EXISTS = 4;
/** Exit status for "that path is a folder". */
const FOLDER = 5;
/** Exit status for "no sha256sum on the server". */
const NO_DIGEST = 127;

interface ExecResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** A shell command that exited with a status its caller did not expect, or with none (its channel closed first). */
class CommandFailed extends Error {
  constructor(
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(stderr.trim() || (status === null ? 'the command ended without an exit status' : `exit status ${status}`));
  }
}

/** scp's refusal (a reply of 1 or 2 and a message). */
class ScpRefused extends Error {}

/** An scp channel that closed before scp's reply. */
class ChannelClosed extends Error {
  constructor() {
    super('the scp channel closed early (the connection or the server went away)');
  }
}

/** A missing file, as `scp -f` says it. */
function isMissingReply(error: unknown): boolean {
  return error instanceof ScpRefused && /No such file/i.test(error.message);
}

/** What a failed command or scp reply says (the server's own words: `Permission denied`, `No space left`). */
function classifyScp(error: unknown): Classified | null {
  if (error instanceof ChannelClosed) return { kind: 'connection' };
  if (error instanceof CommandFailed && error.status === null && error.stderr === '') return { kind: 'connection' };
  if (!(error instanceof CommandFailed || error instanceof ScpRefused)) return null;
  if (isMissingReply(error)) return { kind: 'not-found' };
  if (/Permission denied/i.test(error.message)) return { kind: 'permanent', code: 'ERR_PERMISSION' };
  if (/No space/i.test(error.message)) return { kind: 'permanent', code: 'ERR_NO_SPACE' };
  return { kind: 'permanent' };
}

/**
 * A remote lake over scp. `new SCP('nas.lab', '/srv/lake', { username, privateKey })`.
 * The host key is checked against known_hosts or `hostKeyFingerprint` (see SSHOptions).
 */
export class SCP extends LakeLocation {
  readonly root: string;

  constructor(host: string, root: string, options: SCPOptions = {}) {
    const trimmed = root.length > 1 ? root.replace(/\/+$/, '') : root;
    const name = `SCP(${remoteName(host, trimmed, options)})`;
    super(name, new ScpFiles(host, trimmed, name, options), options);
    this.root = trimmed;
  }

  /** The remote file that holds `key` (whether or not it exists). */
  async pathOf(key: Key): Promise<string> {
    return posix.join(this.root, await this.blobPath(key));
  }
}

/** The shell command that sets a tool's file's mtime to now, creating it and its folder with tarn's mode when missing. */
function touchCommand(mark: string): string {
  const dir = q(posix.dirname(mark));
  const mode = TOOL_MODE.toString(8);
  return `{ { [ -d ${dir} ] || { mkdir -p ${dir} && chmod ${mode} ${dir}; }; } && { [ -e ${q(mark)} ] || { : > ${q(mark)} && chmod ${mode} ${q(mark)}; }; } && touch ${q(mark)}; }`;
}

/** A listing line's fields: kind, path, value. */
function listingFields(line: string): [string, string, string] | null {
  const first = line.indexOf('\t');
  const second = first === -1 ? -1 : line.indexOf('\t', first + 1);
  if (second === -1) return null;
  return [line.slice(0, first), line.slice(first + 1, second), line.slice(second + 1)];
}

/** The lake's files through shell commands and scp over SSH exec channels. Paths are relative to `root`. */
class ScpFiles implements LakeFiles, LakeWriter {
  readonly writer: LakeWriter = this;
  private readonly connection: SSHConnection;
  /** Shell that the next command runs first (making `.tmp/`), until one has run it. */
  private preamble = '';

  constructor(
    host: string,
    private readonly root: string,
    readonly name: string,
    private readonly options: SCPOptions,
  ) {
    this.connection = new SSHConnection(host, options, name, classifyScp);
  }

  private at(path: string): string {
    return posix.join(this.root, path);
  }

  stat(path: string): Promise<FileInfo | null> {
    return this.statAndTouch(path, null);
  }

  /**
   * Stat and mark (and the server's sha256sum, when asked for) in one command: a read costs one
   * round trip before its bytes, and so does a write of a key already in place.
   */
  async statAndTouch(path: string, mark: string | null, _time?: Date, digest = false): Promise<FileInfo | null> {
    const file = q(this.at(path));
    const hash = digest ? ` && { sha256sum < ${file} || echo -; }` : '';
    const touch = mark === null ? '' : ` && ${touchCommand(this.at(mark))}`;
    const what = `stat ${path}`;
    const result = await this.exec(
      what,
      `if [ -d ${file} ]; then echo D; elif [ -f ${file} ]; then wc -c < ${file}${hash}${touch}; else exit ${MISSING}; fi`,
      [MISSING],
    );
    if (result.code === MISSING) return null;
    const [answer = '', sum = ''] = result.stdout.toString('utf8').trim().split('\n');
    if (answer === 'D') return { size: null, isDirectory: true };
    const size = Number(answer);
    if (!Number.isSafeInteger(size)) throw new LocationError(`${this.name}: ${what}: unexpected answer ${answer}`, this.name);
    // `-`: no sha256sum on the server, the lake hashes a download instead
    return digest && /^[0-9a-f]{64}/.test(sum) ? { size, isDirectory: false, digest: sum.slice(0, 64) } : { size, isDirectory: false };
  }

  openRead(path: string): Readable {
    return this.download(this.at(path), true);
  }

  readFile(path: string): Promise<Buffer | null> {
    return this.downloadBytes(this.at(path));
  }

  async readText(path: string): Promise<string | null> {
    const file = q(this.at(path));
    const result = await this.exec(`read ${path}`, `if [ -f ${file} ]; then cat ${file}; else exit ${MISSING}; fi`, [MISSING]);
    return result.code === 0 ? result.stdout.toString('utf8') : null;
  }

  async list(dir: string): Promise<ListedFile[]> {
    const folder = q(this.at(dir));
    const result = await this.exec(
      `list ${dir || '/'}`,
      `[ -d ${folder} ] || exit 0; find ${folder} -mindepth 1 -maxdepth 1 -printf '%y\\t%s\\t%T@\\t%f\\n'`,
    );
    const entries: ListedFile[] = [];
    for (const line of result.stdout.toString('utf8').split('\n')) {
      const [type, size, mtime, name] = line.split('\t');
      if (name === undefined) continue;
      entries.push({ name, isFile: type === 'f', isDirectory: type === 'd', size: Number(size), mtime: new Date(Number(mtime) * 1000) });
    }
    return entries;
  }

  /**
   * The whole lake in one command: blobs with their sizes, marks with their times, and every
   * labels file's text (awk prints them all, a few thousand files per awk), one line each.
   */
  async listLake(): Promise<LakeListing> {
    const script = [
      `cd ${q(this.root)} || exit 1`,
      `find . -path ./${TEMP_FOLDER} -prune -o -path ./tools -prune -o -type f -printf 'B\\t%P\\t%s\\n'`,
      `[ -d tools/usage ] && find tools/usage -type f -printf 'U\\t%p\\t%T@\\n'`,
      `[ -d tools/labels ] && find tools/labels -type f -name '*.json' -exec awk ` +
        `'FNR == 1 { if (NR > 1) printf "\\n"; printf "L\\t%s\\t", FILENAME } { printf "%s", $0 } END { if (NR > 0) printf "\\n" }' {} +`,
      'exit 0',
    ].join('\n');
    const result = await this.exec('list the lake', script);
    const listing: LakeListing = { files: [], marks: new Map(), labels: new Map() };
    for (const line of result.stdout.toString('utf8').split('\n')) {
      const fields = listingFields(line);
      if (fields === null) continue;
      const [kind, path, value] = fields;
      if (kind === 'B') listing.files.push({ path, size: Number(value) });
      else if (kind === 'U') listing.marks.set(path, new Date(Number(value) * 1000));
      else if (kind === 'L') listing.labels.set(path, value);
    }
    return listing;
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  /**
   * `.tmp/` is made by the next command (config.yml's read, on first use), not by one of its own:
   * one round trip fewer, and nothing goes into `.tmp/` before that command.
   */
  async prepare(): Promise<void> {
    this.preamble = `mkdir -p ${q(this.at(TEMP_FOLDER))} || exit 1; `;
  }

  /** Not retried: the pieces are taken once. */
  async putTemp(tmp: string, pieces: AsyncIterable<Buffer>, size: number | null): Promise<void> {
    let spooled: string | null = null;
    try {
      let known = size;
      let source: AsyncIterable<Buffer> = pieces;
      if (known === null) {
        // scp announces the size before the bytes: spool to a local file first
        spooled = join(this.options.spoolDir ?? tmpdir(), `cairn-scp-${randomBytes(8).toString('hex')}`);
        known = await spool(pieces, spooled);
        source = createReadStream(spooled, { highWaterMark: 1024 * 1024 });
      }
      await this.upload(this.at(tmp), known, source);
    } catch (error) {
      await this.exec('remove a temp file', `rm -f ${q(this.at(tmp))}`).catch(() => undefined);
      throw this.connection.calls.failure(`write ${tmp}`, error);
    } finally {
      if (spooled) await fsp.rm(spooled, { force: true });
    }
  }

  async publish(tmp: string, target: string, mark: string | null): Promise<boolean> {
    const [from, to] = [q(this.at(tmp)), q(this.at(target))];
    const touch = mark === null ? '' : ` && ${touchCommand(this.at(mark))}`;
    // ln never replaces a file: the first writer's blob stays
    const result = await this.exec(
      `store ${target}`,
      `mkdir -p ${q(posix.dirname(this.at(target)))} || exit 1; ln ${from} ${to} 2>/dev/null || { [ -e ${to} ] && exit ${EXISTS}; ln ${from} ${to} || exit 1; }; rm -f ${from}${touch}`,
      [EXISTS],
    );
    return result.code !== EXISTS;
  }

  async replace(tmp: string, target: string, mark: string | null): Promise<void> {
    const touch = mark === null ? '' : ` && ${touchCommand(this.at(mark))}`;
    await this.exec(`store ${target}`, `mkdir -p ${q(posix.dirname(this.at(target)))} && mv -f ${q(this.at(tmp))} ${q(this.at(target))}${touch}`);
  }

  async remove(path: string): Promise<boolean> {
    const file = q(this.at(path));
    const result = await this.exec(`delete ${path}`, `if [ -f ${file} ] || [ -L ${file} ]; then rm -f ${file}; else exit ${MISSING}; fi`, [MISSING]);
    return result.code === 0;
  }

  async removeBlob(path: string, tools: readonly string[]): Promise<'removed' | 'missing' | 'folder'> {
    const file = q(this.at(path));
    const others = tools.map((tool) => q(this.at(tool))).join(' ');
    const result = await this.exec(
      `delete ${path}`,
      `if [ -d ${file} ]; then exit ${FOLDER}; elif [ -f ${file} ] || [ -L ${file} ]; then rm -f ${file} ${others}; else exit ${MISSING}; fi`,
      [MISSING, FOLDER],
    );
    return result.code === MISSING ? 'missing' : result.code === FOLDER ? 'folder' : 'removed';
  }

  async removeDir(path: string): Promise<boolean> {
    const dir = q(this.at(path));
    const result = await this.exec(`delete ${path}`, `if [ -d ${dir} ]; then rmdir ${dir}; else exit ${MISSING}; fi`, [MISSING]);
    return result.code === 0;
  }

  async writeText(path: string, text: string, mode: number, dirMode?: number): Promise<void> {
    const file = this.at(path);
    const dir = q(posix.dirname(file));
    const tmp = q(this.at(`${TEMP_FOLDER}/text.${randomBytes(6).toString('hex')}`));
    const makeDir = dirMode === undefined ? `mkdir -p ${dir}` : `{ [ -d ${dir} ] || { mkdir -p ${dir} && chmod ${dirMode.toString(8)} ${dir}; }; }`;
    await this.exec(
      `store ${path}`,
      `${makeDir} && printf '%s' ${q(text)} > ${tmp} && chmod ${mode.toString(8)} ${tmp} && mv -f ${tmp} ${q(file)} || { rm -f ${tmp}; exit 1; }`,
    );
  }

  async createExclusive(path: string, text: string): Promise<boolean> {
    const file = this.at(path);
    const dir = q(posix.dirname(file));
    const tmp = q(this.at(`${TEMP_FOLDER}/lock.${randomBytes(6).toString('hex')}`));
    // ln never replaces a file, and the lock appears with its token in it
    const result = await this.exec(
      `lock ${path}`,
      `{ [ -d ${dir} ] || { mkdir -p ${dir} && chmod ${TOOL_MODE.toString(8)} ${dir}; }; } && printf '%s' ${q(text)} > ${tmp} || exit 1; ` +
        `ln ${tmp} ${q(file)} 2>/dev/null; linked=$?; rm -f ${tmp}; [ $linked -eq 0 ] && exit 0; [ -e ${q(file)} ] && exit ${EXISTS}; exit 1`,
      [EXISTS],
    );
    return result.code === 0;
  }

  async touch(path: string): Promise<void> {
    await this.exec(`touch ${path}`, touchCommand(this.at(path)));
  }

  /** The file's sha256 computed by the server (sha256sum): no download; undefined when the server has none. */
  async digest(path: string): Promise<string | null | undefined> {
    const file = q(this.at(path));
    const result = await this.exec(`check ${path}`, `if [ -f ${file} ]; then sha256sum < ${file} || exit ${NO_DIGEST}; else exit ${MISSING}; fi`, [
      MISSING,
      NO_DIGEST,
    ]);
    if (result.code === NO_DIGEST) return undefined;
    return result.code === MISSING ? null : result.stdout.toString('utf8').slice(0, 64);
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

  /**
   * Runs a shell command (its output is small) through the net layer: an exit status other than 0
   * and `allowed` is a CommandFailed, classified by the server's message.
   */
  private exec(what: string, command: string, allowed: readonly number[] = []): Promise<ExecResult> {
    return this.connection.run(what, async (client) => {
      const preamble = this.preamble;
      const { channel } = await this.openChannel(client, preamble + command);
      const result = await new Promise<ExecResult>((resolve, reject) => {
        const out: Buffer[] = [];
        let err = '';
        let code: number | null = null;
        channel.on('data', (data: Buffer) => out.push(data));
        channel.stderr.on('data', (data: Buffer) => (err += data.toString('utf8')));
        channel.on('exit', (status: number | null) => (code = status));
        channel.on('error', reject);
        channel.on('close', () => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
      });
      if (result.code !== 0 && !allowed.includes(result.code ?? -1)) throw new CommandFailed(result.code, result.stderr);
      if (preamble !== '' && this.preamble === preamble) this.preamble = '';
      return result;
    });
  }

  /** Sends exactly `size` bytes to a new remote file with `scp -t`. */
  private async upload(tmp: string, size: number, pieces: AsyncIterable<Buffer | Uint8Array>): Promise<void> {
    const limit = this.connection.timeoutMs;
    const client = await this.connection.client();
    const { channel } = await this.openChannel(client, `scp -t ${q(tmp)}`);
    const reader = new ReplyReader(channel, limit, () => {
      this.connection.drop(client);
      return new DeadlineExceeded(limit);
    });
    try {
      await reader.ack('scp -t');
      channel.write(`C0${BLOB_MODE.toString(8)} ${size} ${posix.basename(tmp)}\n`);
      await reader.ack('scp -t');
      let sent = 0;
      for await (const piece of pieces) {
        const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
        sent += chunk.length;
        if (sent > size) break;
        if (!channel.write(chunk)) await reader.drained();
      }
      if (sent !== size) throw new WrongLength(`the source gave ${sent > size ? 'more than ' : ''}${sent} bytes, not the ${size} it announced`, this.name);
      channel.write(Buffer.from([0]));
      await reader.ack('scp -t');
      channel.end();
      await reader.closed();
    } finally {
      reader.dispose();
      channel.destroy();
    }
  }

  /** A whole file through `scp -f`, retried as a whole by the net layer; null when it does not exist. */
  private downloadBytes(file: string): Promise<Buffer | null> {
    return this.connection.calls.runOrNull(`read ${file}`, async () => {
      const parts: Buffer[] = [];
      for await (const part of this.download(file, false)) parts.push(part as Buffer);
      return Buffer.concat(parts);
    });
  }

  /**
   * The bytes of a remote file through `scp -f`, failures typed. A missing file fails the stream
   * with scp's own refusal (a miss, for `downloadBytes`), or ERR_VANISHED when `mustExist`
   * (read() saw it a moment ago).
   */
  private download(file: string, mustExist: boolean): Readable {
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    const limit = this.connection.timeoutMs;
    const run = async () => {
      const client = await this.connection.client();
      const { channel } = await this.openChannel(client, `scp -f ${q(file)}`);
      const reader = new ReplyReader(channel, limit, () => {
        this.connection.drop(client);
        return new DeadlineExceeded(limit);
      });
      out.once('close', () => channel.destroy());
      try {
        channel.write(Buffer.from([0]));
        const header = await reader.line();
        if (header[0] !== 0x43 /* C */) {
          const refused = new ScpRefused(`scp -f: ${header.subarray(1).toString('utf8').trim()}`);
          if (mustExist && isMissingReply(refused)) {
            throw new LocationError(`${this.name}: ${file} vanished while it was read`, this.name, { cause: refused, code: 'ERR_VANISHED' });
          }
          throw refused;
        }
        const size = Number(header.toString('utf8').split(' ')[1]);
        if (!Number.isSafeInteger(size)) throw new Error(`scp -f: a bad header`);
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
    // a miss stays scp's refusal, for downloadBytes' runOrNull to answer null
    run().catch((error: unknown) => out.destroy(isMissingReply(error) ? (error as Error) : this.connection.calls.failure(`read ${file}`, error)));
    return out;
  }
}

/** Writes pieces to a new local file; returns the size. */
async function spool(pieces: AsyncIterable<Buffer>, path: string): Promise<number> {
  const handle = await fsp.open(path, 'wx', 0o600);
  let size = 0;
  try {
    for await (const chunk of pieces) {
      size += chunk.length;
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
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
    if (this.ended) throw new ChannelClosed();
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
        throw new ChannelClosed();
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
    throw new ScpRefused(`${what}: ${message || `error ${code}`}`);
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
          out.once('close', () => reject(new Error('the reader went away')));
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

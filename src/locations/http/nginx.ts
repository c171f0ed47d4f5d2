/**
 * A read-only mirror of a lake served over HTTP by nginx (or any server with nginx's JSON
 * autoindex): the lake format is LakeLocation's; this file is the HTTP transport under it (GET
 * and HEAD with undici, bounded bodies, a whole-transfer deadline, JSON folder listings). Every
 * request stays under the lake URL; redirects are refused.
 */
import { posix } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ConfigError, LocationError } from '../../errors.js';
import { type Deadline, DeadlineExceeded, transferBudgetMs, transferDeadline } from '../net/deadline.js';
import { type Classified, CONNECTION_CODES, errorCode } from '../net/failures.js';
import { RemoteCalls } from '../net/remote-calls.js';
import type { RetryOptions } from '../net/retry.js';
import { CONFIG_NAME } from '../lake/config.js';
import { type FileInfo, type LakeFiles, type ListedFile, WrongLength } from '../lake/files.js';
import { LakeLocation } from '../lake/lake-location.js';
import { importOptional } from '../../optional.js';
import { redactUrl } from '../redact.js';

export interface NginxOptions {
  /**
   * Time limit in ms for connecting, for the response headers and for each pause in a body;
   * past it the read fails with TimeoutError. @default 30000
   */
  timeoutMs?: number;
  /**
   * The slowest transfer accepted, in bytes per second: a whole request must end within
   * `timeoutMs` plus its size at this rate, so a server that trickles bytes (each pause shorter
   * than `timeoutMs`) still fails with TimeoutError. @default 32768 (32 KiB/s)
   */
  minBytesPerSecond?: number;
  /**
   * Retries of transient failures (connection refused or reset, 502/503/504); a TimeoutError is
   * not retried (the limit is yours). @default 3 attempts
   */
  retry?: RetryOptions;
  /**
   * Extra request headers (e.g. `authorization`), sent only to the lake URL's own origin (redirects
   * are not followed). A user and password in the URL (`https://user:pass@host/lake/`) are sent as
   * basic auth; an `authorization` header given here wins over them. @default none
   */
  headers?: Record<string, string>;
  /** Connections kept open to the server. @default 16 */
  connections?: number;
  /** An undici dispatcher to use instead of the location's own Agent (proxies, TLS settings). @default a new Agent */
  dispatcher?: Dispatcher;
}

interface IndexEntry {
  name: string;
  type: string;
  mtime?: string;
  size?: number;
}

const TRANSIENT_STATUS = new Set([502, 503, 504]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
/** Most bytes read into memory for a config.yml, a labels file or one folder listing. */
const SMALL_FILE_LIMIT = 1024 * 1024;
const LISTING_LIMIT = 256 * 1024 * 1024;
/** Most bytes `readBytes` buffers when the server does not say how long a value is. */
const UNDECLARED_LIMIT = 512 * 1024 * 1024;


/** What a GET may bring: at most `limit` bytes, and exactly `expected` when that is known. */
interface BodyLimits {
  limit: number;
  expected?: number | null;
}

/** A response other than 2xx and 404, for the classifier. */
class HttpStatus extends Error {
  constructor(
    readonly status: number,
    shown: string,
  ) {
    super(
      status >= 300 && status < 400
        ? `the server answered ${status} (a redirect) for ${shown}; redirects are not followed, so that the lake's credentials never go to another address: use the final URL`
        : `the server answered ${status} for ${shown}`,
    );
  }
}

/** What kind of failure an HTTP status or an error of undici (or of its sockets) is. */
function classifyHttp(error: unknown, timeoutDetail: string): Classified {
  if (error instanceof DeadlineExceeded) return { kind: 'timeout', detail: timeoutDetail };
  if (error instanceof HttpStatus) {
    if (error.status === 401 || error.status === 403) return { kind: 'auth' };
    return { kind: TRANSIENT_STATUS.has(error.status) ? 'transient' : 'permanent', code: 'ERR_HTTP' };
  }
  const code = errorCode(error);
  if (TIMEOUT_CODES.has(code)) return { kind: 'timeout' };
  if (CONNECTION_CODES.has(code)) return { kind: 'connection' };
  return { kind: 'permanent' };
}

/**
 * `new Nginx('https://example.com/storage')`: a read-only location. Writes and deletes are
 * declined (false); `contents()` needs `autoindex on; autoindex_format json;` on the server.
 */
export class Nginx extends LakeLocation {
  /** The lake URL without its credentials and query (safe to print). */
  readonly url: string;

  constructor(url: string, options: NginxOptions = {}) {
    const target = lakeUrl(url, options);
    super(target.name, new NginxFiles(target, options), {}, `${target.shown}${CONFIG_NAME}`);
    this.url = target.shown;
  }
}

/** The lake URL, split into what is sent and what may be shown. */
interface LakeUrl {
  /** The lake URL's origin and path: every request stays under it. */
  base: URL;
  /** The lake URL's query (a token, say), sent with every request. */
  query: string;
  headers: Record<string, string>;
  /** The URL without its credentials and query. */
  shown: string;
  name: string;
}

function lakeUrl(url: string, options: NginxOptions): LakeUrl {
  const { rest, credentials } = splitCredentials(url);
  let parsed: URL;
  try {
    parsed = new URL(rest);
  } catch (error) {
    throw new ConfigError(`Nginx: not a URL: ${redactUrl(url)}`, { cause: error });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(`Nginx: expected an http:// or https:// URL, got ${redactUrl(url)}`);
  }
  const headers: Record<string, string> = {};
  if (credentials !== null) headers.authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
  for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
  const query = parsed.search;
  parsed.username = '';
  parsed.password = '';
  parsed.search = '';
  parsed.hash = '';
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  const shown = parsed.toString();
  return { base: parsed, query, headers, shown, name: `Nginx(${shown}${query ? '?<redacted>' : ''})` };
}

/** The lake's files over HTTP. Paths are relative to the lake URL. */
class NginxFiles implements LakeFiles {
  readonly name: string;
  private readonly url: string;
  private readonly base: URL;
  private readonly query: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly bytesPerSecond: number;
  private readonly calls: RemoteCalls;
  private dispatcherPromise: Promise<Dispatcher> | null = null;
  private ownAgent: Dispatcher | null = null;

  constructor(
    target: LakeUrl,
    private readonly options: NginxOptions,
  ) {
    this.name = target.name;
    this.url = target.shown;
    this.base = target.base;
    this.query = target.query;
    this.headers = target.headers;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.bytesPerSecond = options.minBytesPerSecond ?? 32 * 1024;
    const slow = `the transfer did not end in time: at least ${this.bytesPerSecond} bytes/s after ${this.timeoutMs} ms`;
    this.calls = new RemoteCalls({
      name: () => target.name,
      timeoutMs: this.timeoutMs,
      retry: options.retry ?? {},
      classify: (error) => classifyHttp(error, slow),
    });
  }

  async stat(path: string): Promise<FileInfo | null> {
    const head = await this.calls.run(`read ${path}`, async () => {
      const response = await this.request('HEAD', path);
      if (response === null) return null;
      await response.body.dump().catch(() => undefined);
      return response;
    });
    return head === null ? null : { size: declaredLength(head.headers), isDirectory: false };
  }

  /**
   * A body as a stream, stopped at the length it may have: a server that sends more, or says
   * another length than `size`, fails it with WrongLength (the lake's StorageCorruption).
   */
  openRead(path: string, size: number | null): Readable {
    const { name } = this;
    const what = `read ${path}`;
    // the length it may have is known once the response is: the limit is set then
    let limit = Infinity;
    let total = 0;
    const out = new Transform({
      transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
        total += chunk.length;
        callback(total > limit ? new WrongLength(`the server sent more than ${limit} bytes`, name) : null, chunk);
      },
    });
    this.calls.run(what, () => this.request('GET', path)).then(
      (response) => {
        if (response === null) {
          out.destroy(new LocationError(`${this.name}: ${path} vanished while it was read`, this.name, { code: 'ERR_VANISHED' }));
          return;
        }
        const deadline = this.bodyDeadline(response, size ?? 0);
        out.on('close', () => deadline.clear());
        if (out.destroyed) deadline.clear();
        const body = response.body;
        const declared = declaredLength(response.headers);
        if (size !== null && declared !== null && declared !== size) {
          body.destroy();
          out.destroy(new WrongLength(`the server said ${declared} bytes, and ${size} before`, name));
          return;
        }
        // stop at the declared length: a server that sends more is not read on into memory
        limit = Math.min(size ?? Infinity, declared ?? Infinity);
        body.on('error', (error) => out.destroy(this.calls.failure(what, deadlineOr(error, deadline))));
        out.on('close', () => body.destroy());
        body.pipe(out);
      },
      (error: unknown) => out.destroy(error as Error),
    );
    return out;
  }

  /** A file's bytes (null for 404). A body longer than it can be fails with WrongLength. */
  readFile(path: string, size: number | null): Promise<Buffer | null> {
    return this.fetchBytes(path, `read ${path}`, { limit: UNDECLARED_LIMIT, expected: size });
  }

  async readText(path: string): Promise<string | null> {
    const what = `read ${path}`;
    let bytes: Buffer | null;
    try {
      bytes = await this.fetchBytes(path, what, { limit: SMALL_FILE_LIMIT });
    } catch (error) {
      // not a blob: a text file too long is the server's fault, not a corrupted value
      if (error instanceof WrongLength) throw new LocationError(`${this.name}: ${what}: ${error.message}`, this.name, { code: 'ERR_HTTP' });
      throw error;
    }
    return bytes === null ? null : bytes.toString('utf8');
  }

  async list(dir: string): Promise<ListedFile[]> {
    const entries = (await this.index(dir === '' ? '' : `${dir}/`)) ?? [];
    return entries.map((entry) => ({
      name: entry.name,
      isFile: entry.type === 'file',
      isDirectory: entry.type === 'directory',
      size: entry.size ?? null,
      mtime: entry.mtime ? new Date(entry.mtime) : null,
    }));
  }

  async close(): Promise<void> {
    const agent = this.ownAgent;
    this.ownAgent = null;
    this.dispatcherPromise = null;
    await agent?.close();
  }

  private dispatcher(): Promise<Dispatcher> {
    if (this.options.dispatcher) return Promise.resolve(this.options.dispatcher);
    if (!this.dispatcherPromise) {
      this.dispatcherPromise = importOptional<typeof import('undici')>('undici', 'Nginx').then(({ Agent }) => {
        this.ownAgent = new Agent({
          connect: { timeout: this.timeoutMs },
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
          connections: this.options.connections ?? 16,
        });
        return this.ownAgent;
      });
    }
    return this.dispatcherPromise;
  }

  /**
   * The URL of `path` under the lake URL. A path that would leave it (`..`, another host, an
   * escaped character a server might decode into one) is refused before anything is sent.
   */
  private urlOf(path: string): URL {
    const relative = posix.normalize(path).replace(/^\/+/, '');
    const url = new URL(relative === '.' ? '' : relative, this.base);
    const safe =
      !/[%\\?#\0]/.test(path) &&
      !relative.split('/').includes('..') &&
      url.origin === this.base.origin &&
      url.pathname.startsWith(this.base.pathname);
    if (!safe) {
      throw new LocationError(`${this.name}: refused to request ${JSON.stringify(path)}, which is outside the lake URL`, this.name, {
        code: 'ERR_OUTSIDE_LAKE',
      });
    }
    url.search = this.query;
    return url;
  }

  /**
   * One request, for an attempt of `calls`. Null for 404; the response, body unread, for 2xx; an
   * HttpStatus for the classifier otherwise. Redirects are refused: they could lead the lake's
   * headers to another host. Connecting and the headers have `timeoutMs` each; a body has its own
   * deadline (see `bodyDeadline`).
   */
  private async request(method: 'GET' | 'HEAD', path: string): Promise<Dispatcher.ResponseData | null> {
    const url = this.urlOf(path);
    const dispatcher = await this.dispatcher();
    const response = await dispatcher.request({
      origin: this.base.origin,
      path: url.pathname + url.search,
      method,
      headers: this.headers,
    });
    const status = response.statusCode;
    if (status >= 200 && status < 300) return response;
    await response.body.dump().catch(() => undefined);
    if (status === 404) return null;
    throw new HttpStatus(status, `${this.url}${url.pathname.slice(this.base.pathname.length)}`);
  }

  /**
   * A deadline for a whole body: `timeoutMs` plus its length (declared, else `expected`) at
   * `minBytesPerSecond`. Past it the body is destroyed, so a server that trickles bytes, each
   * pause shorter than `timeoutMs`, cannot keep a read alive. Cleared when the body closes.
   */
  private bodyDeadline(response: Dispatcher.ResponseData, expected: number): Deadline {
    const length = Math.max(declaredLength(response.headers) ?? 0, expected);
    return transferDeadline(response.body, transferBudgetMs(this.timeoutMs, length, this.bytesPerSecond));
  }

  /** The body of a GET, at most `limits.limit` bytes; null for 404. Retried as a whole. */
  private fetchBytes(path: string, what: string, limits: BodyLimits): Promise<Buffer | null> {
    return this.calls.run(what, async () => {
      const response = await this.request('GET', path);
      if (response === null) return null;
      const deadline = this.bodyDeadline(response, limits.expected ?? 0);
      try {
        return await this.readBody(response, limits, deadline);
      } finally {
        deadline.clear();
        // a body left unread (too long, or failed) is dropped; its abort error is of no interest
        response.body.on('error', () => undefined).destroy();
      }
    });
  }

  /** Reads a body into memory, failing with WrongLength as soon as it runs past what it may be. */
  private async readBody(response: Dispatcher.ResponseData, limits: BodyLimits, deadline: Deadline): Promise<Buffer> {
    const declared = declaredLength(response.headers);
    const { expected } = limits;
    if (expected !== undefined && expected !== null && declared !== null && declared !== expected) {
      throw new WrongLength(`the server said ${declared} bytes, and ${expected} before`, this.name);
    }
    const limit = Math.min(limits.limit, declared ?? Infinity, expected ?? Infinity);
    const chunks: Buffer[] = [];
    let total = 0;
    const body = response.body;
    try {
      // 'data' events rather than an async iterator: no promise per chunk
      return await new Promise<Buffer>((resolve, reject) => {
        body.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > limit) reject(new WrongLength(`the server sent more than ${limit} bytes`, this.name));
          else chunks.push(chunk);
        });
        body.once('end', () => resolve(Buffer.concat(chunks, total)));
        body.once('error', reject);
      });
    } catch (error) {
      throw deadlineOr(error, deadline);
    }
  }

  /** A folder's JSON autoindex, or null when the folder does not exist. */
  private async index(dir: string): Promise<IndexEntry[] | null> {
    const bytes = await this.fetchBytes(dir, `list /${dir}`, { limit: LISTING_LIMIT });
    if (bytes === null) return null;
    try {
      const parsed = JSON.parse(bytes.toString('utf8')) as unknown;
      if (Array.isArray(parsed)) return parsed as IndexEntry[];
    } catch {
      // reported below
    }
    throw new ConfigError(
      `${this.name}: /${dir} is not a JSON folder listing; contents() needs "autoindex on; autoindex_format json;" in nginx`,
    );
  }

}

/** The error of a body: the deadline marker once the deadline passed (the body's own abort error says less). */
function deadlineOr(error: unknown, deadline: Deadline): unknown {
  return deadline.expired && !(error instanceof DeadlineExceeded) ? new DeadlineExceeded(0, { cause: error }) : error;
}

/**
 * A URL's `user:password` (decoded) and the URL without them. A password from the environment may
 * hold `/` or `@` unescaped, which a URL parser reads as the path or another host: when the URL
 * does not parse, or parses with credentials and an `@` further on, it is split at the last `@`.
 */
function splitCredentials(url: string): { rest: string; credentials: string | null } {
  const parsed = parsedOrNull(url);
  if (parsed !== null && parsed.username === '' && parsed.password === '') return { rest: url, credentials: null };
  if (parsed !== null && !(parsed.pathname + parsed.search).includes('@')) {
    const credentials = `${percentDecoded(parsed.username)}:${percentDecoded(parsed.password)}`;
    parsed.username = '';
    parsed.password = '';
    return { rest: parsed.toString(), credentials };
  }
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const after = url.slice(scheme.length);
  const at = after.lastIndexOf('@');
  if (at === -1) return { rest: url, credentials: null };
  const userinfo = after.slice(0, at);
  const colon = userinfo.indexOf(':');
  const user = colon === -1 ? userinfo : userinfo.slice(0, colon);
  const password = colon === -1 ? '' : userinfo.slice(colon + 1);
  return { rest: scheme + after.slice(at + 1), credentials: `${percentDecoded(user)}:${percentDecoded(password)}` };
}

function parsedOrNull(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a raw `%` that escapes nothing
  }
}

/** The Content-Length of a response, or null when it has none. */
function declaredLength(headers: Dispatcher.ResponseData['headers']): number | null {
  const raw = headers['content-length'];
  const length = Number(Array.isArray(raw) ? raw[0] : raw);
  return raw !== undefined && Number.isSafeInteger(length) && length >= 0 ? length : null;
}


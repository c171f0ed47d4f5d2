/**
 * A read-only mirror of a Disk lake served over HTTP by nginx (or any server with nginx's JSON
 * autoindex). The lake's config.yml, read over HTTP, decides the layout; every blob is hashed
 * while it streams and a mismatch is StorageCorruption.
 */
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { type Source, type Value, verifyBytes, verifyingStream } from '../blob.js';
import { AuthenticationError, CairnError, ConfigError, ConnectionError, LocationError, TimeoutError } from '../errors.js';
import { assertKey, type Key } from '../key.js';
import { type RetryOptions, withRetry } from '../retry.js';
import { CONFIG_NAME } from './disk-config.js';
import type { Entry, Location } from './interface.js';
import { layoutFrom, parseLabels, type RemoteLayout } from './ssh-common.js';
import { importOptional } from '../optional.js';

export interface NginxOptions {
  /**
   * Time limit in ms for connecting, for the response headers and for each pause in a body;
   * past it the read fails with TimeoutError. @default 30000
   */
  timeoutMs?: number;
  /** Retries of transient failures (connection refused or reset, timeouts, 502/503/504). @default 3 attempts */
  retry?: RetryOptions;
  /** Extra request headers (e.g. `authorization`). @default none */
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
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function isTransient(error: unknown): boolean {
  return error instanceof ConnectionError || error instanceof TimeoutError || (error as { transient?: boolean })?.transient === true;
}

/**
 * `new Nginx('https://example.com/storage')`: a read-only location. Writes and deletes are
 * declined (false); `contents()` needs `autoindex on; autoindex_format json;` on the server.
 */
export class Nginx implements Location {
  readonly name: string;
  readonly url: string;
  private readonly timeoutMs: number;
  private readonly retry: RetryOptions;
  private readonly options: NginxOptions;
  private dispatcherPromise: Promise<Dispatcher> | null = null;
  private ownAgent: Dispatcher | null = null;
  private layoutPromise: Promise<RemoteLayout> | null = null;

  constructor(url: string, options: NginxOptions = {}) {
    this.url = url.endsWith('/') ? url : url + '/';
    this.name = `Nginx(${this.url})`;
    this.options = options;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retry = options.retry ?? {};
  }

  async read(key: Key): Promise<Value | null> {
    assertKey(key);
    const layout = await this.layout();
    const path = layout.paths.blob(key);
    const head = await this.request('HEAD', path, `read ${key}`);
    if (head === null) return null;
    const length = Number(head.headers['content-length']);
    return {
      key,
      size: Number.isFinite(length) ? length : null,
      path: null,
      stream: () => this.verifiedStream(key, path),
      bytes: async () => {
        const bytes = await this.fetchBytes(path, `read ${key}`);
        if (bytes === null) throw new LocationError(`${this.name}: ${key} vanished while it was read`, this.name);
        verifyBytes(key, bytes, this.name);
        return bytes;
      },
      labels: () => this.readLabels(key),
    };
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    assertKey(key);
    const layout = await this.layout();
    const bytes = await this.fetchBytes(layout.paths.blob(key), `read ${key}`);
    if (bytes !== null) verifyBytes(key, bytes, this.name);
    return bytes;
  }

  async *readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    for (const key of keys) yield [key, await this.read(key)];
  }

  /** Read-only: always declined. */
  async write(key: Key, _source: Source, _labels?: readonly string[] | null): Promise<boolean> {
    assertKey(key);
    return false;
  }

  /** Read-only: nothing is deleted. */
  async delete(key: Key): Promise<boolean> {
    assertKey(key);
    return false;
  }

  /** Read-only: last-used marks are not updated. */
  async touch(key: Key): Promise<boolean> {
    assertKey(key);
    return false;
  }

  async *contents(): AsyncIterable<Entry> {
    const layout = await this.layout();
    const { paths } = layout;
    const usage = new Map<string, Map<string, Date>>();
    const labelled = new Map<string, Set<string>>();
    const marks = async (prefix: string) => {
      let found = usage.get(prefix);
      if (!found) {
        found = new Map();
        if (layout.keepUsage) {
          for (const entry of (await this.index(`tools/usage/${prefix}/`)) ?? []) {
            if (entry.type === 'file' && entry.mtime) found.set(entry.name, new Date(entry.mtime));
          }
        }
        usage.set(prefix, found);
      }
      return found;
    };
    const labels = async (prefix: string) => {
      let found = labelled.get(prefix);
      if (!found) {
        found = new Set((layout.keepLabels ? ((await this.index(`tools/labels/${prefix}/`)) ?? []) : []).map((entry) => entry.name));
        labelled.set(prefix, found);
      }
      return found;
    };
    const walk = async function* (this: Nginx, dir: string, parts: string[]): AsyncIterable<Entry> {
      const entries = (await this.index(dir)) ?? [];
      for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const next = [...parts, entry.name];
        if (next.length < paths.levels.length) {
          if (entry.type === 'directory') yield* walk.call(this, `${dir}${entry.name}/`, next);
          continue;
        }
        const key = paths.keyOf(next);
        if (key === null || entry.type !== 'file') continue;
        const prefix = key.slice(0, 2);
        const rest = key.slice(2);
        yield {
          key,
          location: this,
          meta: {
            size: entry.size ?? null,
            labels: (await labels(prefix)).has(rest + '.json') ? await this.readLabels(key) : null,
            lastUsed: (await marks(prefix)).get(rest) ?? null,
          },
        };
      }
    };
    yield* walk.call(this, '', []);
  }

  async close(): Promise<void> {
    const agent = this.ownAgent;
    this.ownAgent = null;
    this.dispatcherPromise = null;
    await agent?.close();
  }

  private layout(): Promise<RemoteLayout> {
    if (!this.layoutPromise) {
      this.layoutPromise = (async () => {
        const text = await this.fetchBytes(CONFIG_NAME, 'read config.yml');
        if (text === null) {
          throw new ConfigError(`${this.name}: there is no ${CONFIG_NAME} at ${this.url}: is it the root of a lake?`);
        }
        // the root path only matters for building URLs, which are relative to this.url
        return layoutFrom(text.toString('utf8'), '', `${this.url}${CONFIG_NAME}`, undefined);
      })();
      // a failure (server down) is not remembered: the next call tries again
      this.layoutPromise.catch(() => (this.layoutPromise = null));
    }
    return this.layoutPromise;
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

  /** One request; null for 404; the response (body unread) for 2xx; a typed error otherwise. */
  private async request(method: 'GET' | 'HEAD', path: string, what: string): Promise<Dispatcher.ResponseData | null> {
    const url = new URL(posix.normalize(path).replace(/^\/+/, ''), this.url).toString();
    return withRetry(
      async () => {
        const dispatcher = await this.dispatcher();
        let response: Dispatcher.ResponseData;
        try {
          response = await dispatcher.request({
            origin: new URL(url).origin,
            path: new URL(url).pathname + new URL(url).search,
            method,
            headers: this.options.headers,
          });
        } catch (error) {
          throw this.wrap(error, what);
        }
        const status = response.statusCode;
        if (status >= 200 && status < 300) return response;
        await response.body.dump().catch(() => undefined);
        if (status === 404) return null;
        if (status === 401 || status === 403) {
          throw new AuthenticationError(`${this.name}: ${what}: the server answered ${status} for ${url}`, this.name);
        }
        const error = new LocationError(`${this.name}: ${what}: the server answered ${status} for ${url}`, this.name, {
          code: 'ERR_HTTP',
        });
        if (TRANSIENT_STATUS.has(status)) (error as LocationError & { transient?: boolean }).transient = true;
        throw error;
      },
      isTransient,
      this.retry,
    );
  }

  private async fetchBytes(path: string, what: string): Promise<Buffer | null> {
    const response = await this.request('GET', path, what);
    if (response === null) return null;
    try {
      return Buffer.from(await response.body.arrayBuffer());
    } catch (error) {
      throw this.wrap(error, what);
    }
  }

  private verifiedStream(key: Key, path: string): Readable {
    const check = verifyingStream(key, this.name);
    this.request('GET', path, `read ${key}`).then(
      (response) => {
        if (response === null) {
          check.destroy(new LocationError(`${this.name}: ${key} vanished while it was read`, this.name));
          return;
        }
        const body = response.body;
        body.on('error', (error) => check.destroy(this.wrap(error, `read ${key}`)));
        check.on('close', () => body.destroy());
        body.pipe(check);
      },
      (error: unknown) => check.destroy(error as Error),
    );
    return check;
  }

  /** A folder's JSON autoindex, or null when the folder does not exist. */
  private async index(dir: string): Promise<IndexEntry[] | null> {
    const bytes = await this.fetchBytes(dir, `list /${dir}`);
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

  private async readLabels(key: Key): Promise<string[] | null> {
    const layout = await this.layout();
    if (!layout.keepLabels) return null;
    const bytes = await this.fetchBytes(layout.paths.labels(key), `read the labels of ${key}`);
    return bytes === null ? null : parseLabels(bytes.toString('utf8'), this.name);
  }

  private wrap(error: unknown, what: string): CairnError {
    if (error instanceof CairnError) return error;
    const code = (error as { code?: string })?.code ?? (error as { cause?: { code?: string } })?.cause?.code ?? '';
    const message = `${this.name}: ${what}: ${(error as Error)?.message ?? String(error)}`;
    if (TIMEOUT_CODES.has(code)) return new TimeoutError(message, this.name, this.timeoutMs, { cause: error });
    if (CONNECTION_CODES.has(code)) return new ConnectionError(message, this.name, { cause: error });
    return new LocationError(message, this.name, { cause: error });
  }
}

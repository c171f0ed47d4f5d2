/**
 * What the SFTP and SCP transports share: one lazily opened ssh2 connection, host-key checking,
 * and the classification of ssh2's errors. Deadlines, typing and retries are the net layer's
 * (RemoteCalls): each transport adds the classification of its own protocol's errors.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Client, ConnectConfig } from 'ssh2';
import { ConfigError, ConnectionError } from '../../errors.js';
import { withDeadline } from '../net/deadline.js';
import { type Classified, type Classifier, CONNECTION_CODES, errorCode } from '../net/failures.js';
import { RemoteCalls } from '../net/remote-calls.js';
import type { RetryOptions } from '../net/retry.js';
import { Semaphore } from '../net/semaphore.js';
import { importOptional } from '../../optional.js';

/** Options shared by the SFTP and SCP locations. */
export interface SSHOptions {
  /** The server's SSH port. @default 22 */
  port?: number;
  /** The user to log in as. @default the user running the process */
  username?: string;
  /**
   * A private key: its text (OpenSSH or PEM) or the path of a key file.
   * @default none (then `password`, or the agent in `SSH_AUTH_SOCK` when neither is given)
   */
  privateKey?: string | Buffer;
  /** The passphrase of an encrypted `privateKey`. @default none */
  passphrase?: string;
  /** A password for password authentication. @default none */
  password?: string;
  /** An ssh-agent socket. @default `SSH_AUTH_SOCK` when no key and no password is given */
  agent?: string;
  /** A known_hosts file that lists the server's host key. @default ~/.ssh/known_hosts */
  knownHosts?: string;
  /**
   * The server's host key fingerprint as `ssh-keygen -lf` prints it (`SHA256:…`). When given,
   * it is what the host key is checked against, instead of known_hosts. @default none
   */
  hostKeyFingerprint?: string;
  /**
   * Connect to a server whose host key is in neither known_hosts nor `hostKeyFingerprint`.
   * This opts out of protection against a man in the middle; a host listed in known_hosts with
   * a different key is still refused. @default false
   */
  acceptUnknownHostKey?: boolean;
  /**
   * Time limit in ms for connecting and for each remote operation (and the longest pause in a
   * transfer); past it the operation fails with TimeoutError and the connection is dropped.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Retries of a lost connection (refused, reset, closed); a TimeoutError is not retried (the
   * limit is yours). @default 3 attempts
   */
  retry?: RetryOptions;
  /** Most SSH channels open at once (sshd allows 10 sessions per connection by default). @default 8 */
  maxChannels?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

/** A transport's classification of its protocol's errors; null for an error it does not know (ssh2's own). */
export type ProtocolClassifier = (error: unknown) => Classified | null;

/** SHA256 fingerprint of a host key blob, as OpenSSH prints it. */
export function fingerprintOf(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** Turns an OpenSSH host pattern (`*`, `?`) into a RegExp. */
function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function hostMatches(field: string, names: string[]): boolean {
  if (field.startsWith('|1|')) {
    // hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name))
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return names.some((name) => createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash);
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    const regexp = patternToRegExp(negated ? pattern.slice(1) : pattern);
    if (names.some((name) => regexp.test(name))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** What known_hosts says about a host key: listed, unknown host, or listed with other keys. */
export function checkKnownHosts(text: string, host: string, port: number, key: Buffer): 'match' | 'unknown' | 'mismatch' | 'revoked' {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  let listed = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    let fields = line.split(/\s+/);
    let marker: string | null = null;
    if (fields[0]!.startsWith('@')) {
      marker = fields[0]!;
      fields = fields.slice(1);
    }
    if (fields.length < 3 || marker === '@cert-authority') continue;
    if (!hostMatches(fields[0]!, names)) continue;
    const same = Buffer.from(fields[2]!, 'base64').equals(key);
    if (marker === '@revoked') {
      if (same) return 'revoked';
      continue;
    }
    if (same) return 'match';
    listed = true;
  }
  return listed ? 'mismatch' : 'unknown';
}

/** `user@host:port/root` for names in errors and events. */
export function remoteName(host: string, root: string, options: SSHOptions): string {
  const user = options.username ?? userInfo().username;
  return `${user}@${host}:${options.port ?? 22}${root.startsWith('/') ? '' : ':'}${root}`;
}

/** Quotes a string for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * One SSH connection to one server, opened on first use and reopened after it drops. Its `calls`
 * type every failure (the transport's classifier first, then ssh2's error levels) and retry a lost
 * connection.
 */
export class SSHConnection {
  readonly timeoutMs: number;
  readonly channels: Semaphore;
  readonly calls: RemoteCalls;
  private connecting: Promise<Client> | null = null;
  private current: Client | null = null;
  private hostKeyProblem: string | null = null;
  private closed = false;

  constructor(
    readonly host: string,
    private readonly options: SSHOptions,
    readonly name: string,
    classifyProtocol: ProtocolClassifier,
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.channels = new Semaphore(options.maxChannels ?? 8);
    const classify: Classifier = (error) => classifyProtocol(error) ?? this.classify(error);
    this.calls = new RemoteCalls({ name: () => name, timeoutMs: this.timeoutMs, retry: options.retry ?? {}, classify });
  }

  get port(): number {
    return this.options.port ?? 22;
  }

  get username(): string {
    return this.options.username ?? userInfo().username;
  }

  /** The open connection (connecting first when there is none). */
  client(): Promise<Client> {
    if (this.closed) return Promise.reject(new ConnectionError(`${this.name} is closed`, this.name));
    if (this.current) return Promise.resolve(this.current);
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  /** Runs `operation` through the net layer: each attempt under the time limit, a lost connection retried. */
  run<T>(what: string, operation: (client: Client) => Promise<T>): Promise<T> {
    return this.calls.run(what, async () => {
      const client = await this.client();
      return this.timed(client, operation(client));
    });
  }

  /**
   * `promise` under the time limit. Past it the connection is dropped (a stalled channel may never
   * answer: nothing must keep waiting on it) and the wait fails with the deadline marker, which
   * `calls` types as a TimeoutError.
   */
  timed<T>(client: Client, promise: Promise<T>): Promise<T> {
    return withDeadline(promise, this.timeoutMs, () => this.drop(client));
  }

  /** Drops the connection (the next operation reconnects). */
  drop(client: Client | null = this.current): void {
    if (client && client === this.current) this.current = null;
    client?.destroy();
  }

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.connecting;
    this.connecting = null;
    const client = this.current ?? (pending ? await pending.catch(() => null) : null);
    this.current = null;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.destroy();
        resolve();
      }, 2000);
      client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      client.end();
    });
  }

  /** What kind of failure an ssh2 or socket error is (after the transport's classifier passed it). */
  private classify(error: unknown): Classified {
    const level = (error as { level?: string } | null)?.level;
    const code = errorCode(error);
    if (this.hostKeyProblem) return { kind: 'auth', code: 'ERR_HOST_KEY', detail: this.hostKeyProblem };
    if (level === 'client-authentication' || level === 'agent') return { kind: 'auth', detail: `the server refused the credentials for ${this.username}` };
    if (level === 'client-timeout' || code === 'ETIMEDOUT') return { kind: 'timeout' };
    if (
      level === 'client-socket' ||
      level === 'client-dns' ||
      level === 'protocol' ||
      CONNECTION_CODES.has(code) ||
      /Not connected|No response from server|Channel open failure|connection lost|closed/i.test((error as Error)?.message ?? '')
    ) {
      return { kind: 'connection' };
    }
    return { kind: 'permanent' };
  }

  private privateKey(): string | Buffer | undefined {
    const key = this.options.privateKey;
    if (key === undefined || Buffer.isBuffer(key) || key.includes('-----BEGIN') || key.includes('\n')) return key;
    const path = key.startsWith('~/') ? join(homedir(), key.slice(2)) : key;
    try {
      return readFileSync(path);
    } catch (error) {
      throw new ConfigError(`${this.name}: cannot read the private key file ${path}`, { cause: error });
    }
  }

  private knownHostsText(): string | null {
    const file = this.options.knownHosts ?? join(homedir(), '.ssh', 'known_hosts');
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return null;
      throw new ConfigError(`${this.name}: cannot read the known_hosts file ${file}`, { cause: error });
    }
  }

  /** Decides whether to trust the host key; records why not, for the error. */
  private verifyHost(key: Buffer, knownHosts: string | null): boolean {
    const shown = fingerprintOf(key);
    const wanted = this.options.hostKeyFingerprint;
    if (wanted !== undefined) {
      const normal = wanted.startsWith('SHA256:') ? wanted : `SHA256:${wanted}`;
      if (normal.replace(/=+$/, '') === shown) return true;
      this.hostKeyProblem = `the host key of ${this.host}:${this.port} (${shown}) does not match the given fingerprint ${wanted}`;
      return false;
    }
    const verdict = knownHosts === null ? 'unknown' : checkKnownHosts(knownHosts, this.host, this.port, key);
    if (verdict === 'match') return true;
    if (verdict === 'unknown' && this.options.acceptUnknownHostKey) return true;
    this.hostKeyProblem =
      verdict === 'unknown'
        ? `the host key of ${this.host}:${this.port} (${shown}) is not in known_hosts; add it (ssh-keyscan), pass ` +
          `hostKeyFingerprint, or set acceptUnknownHostKey: true to trust any key`
        : verdict === 'revoked'
          ? `the host key of ${this.host}:${this.port} (${shown}) is marked @revoked in known_hosts`
          : `the host key of ${this.host}:${this.port} (${shown}) does not match the key in known_hosts: ` +
            `the server's key changed, or someone is in between`;
    return false;
  }

  private async connect(): Promise<Client> {
    const { Client } = await importOptional<typeof import('ssh2')>('ssh2', 'SFTP and SCP');
    const knownHosts = this.options.hostKeyFingerprint === undefined ? this.knownHostsText() : null;
    const privateKey = this.privateKey();
    const password = this.options.password;
    const agent = this.options.agent ?? (privateKey === undefined && password === undefined ? process.env.SSH_AUTH_SOCK : undefined);
    const config: ConnectConfig = {
      host: this.host,
      port: this.port,
      username: this.username,
      readyTimeout: this.timeoutMs,
      keepaliveInterval: Math.max(1000, Math.floor(this.timeoutMs / 3)),
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => this.verifyHost(key, knownHosts),
    };
    if (privateKey !== undefined) config.privateKey = privateKey;
    if (this.options.passphrase !== undefined) config.passphrase = this.options.passphrase;
    if (password !== undefined) config.password = password;
    if (agent !== undefined) config.agent = agent;

    this.hostKeyProblem = null;
    const client = new Client();
    const ready = new Promise<Client>((resolve, reject) => {
      client.once('ready', () => resolve(client));
      // 'on', not 'once': ssh2 may emit a second error (e.g. after a timeout), which must not go unhandled
      client.on('error', reject);
      client.once('close', () => reject(new ConnectionError(`${this.name}: the connection closed while opening`, this.name)));
    });
    try {
      client.connect(config);
    } catch (error) {
      // ssh2 throws synchronously for a key it cannot parse
      client.destroy();
      throw new ConfigError(`${this.name}: ${(error as Error).message}`, { cause: error });
    }
    // ssh2 writes every SSH packet on its own and leaves Nagle's algorithm on: a small packet (an
    // SFTP read request, a window adjust) sent while an earlier one is unacknowledged then waits
    // for the server's delayed ACK (40 ms on Linux), which stalls a pipelined download. OpenSSH
    // sets TCP_NODELAY too. Set before the socket connects, Node applies it on connect.
    client.setNoDelay(true);
    try {
      // ssh2's readyTimeout fires first; this only bounds a handshake that ssh2 does not time
      await withDeadline(ready, this.timeoutMs + 1000);
    } catch (error) {
      client.destroy();
      throw error;
    }
    client.on('error', () => {
      // a dropped connection is noticed by the operation that uses it; reconnect next time
      if (this.current === client) this.current = null;
    });
    client.on('close', () => {
      if (this.current === client) this.current = null;
    });
    if (this.closed) {
      client.destroy();
      throw new ConnectionError(`${this.name} is closed`, this.name);
    }
    this.current = client;
    return client;
  }
}

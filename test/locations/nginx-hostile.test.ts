/**
 * Nginx against a hostile HTTP server of the test's own (on loopback): listings that name paths
 * outside the lake or other hosts, redirects, bodies longer than declared, a body that trickles.
 * Nothing may leave the lake URL, credentials go nowhere else, memory stays bounded, every
 * failure is typed.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthenticationError, LocationError, StorageCorruption, TimeoutError } from '../../src/errors.js';
import { Nginx } from '../../src/locations/http/nginx.js';
import { sha256 } from '../conformance.js';

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  apiKey: string | undefined;
}

interface Hostile {
  url: string;
  origin: string;
  seen: Seen[];
  close(): Promise<void>;
}

const servers: Hostile[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

/** An HTTP server on loopback whose answers `handle` decides; it records every request. */
async function hostile(handle: (request: IncomingMessage, response: ServerResponse) => void): Promise<Hostile> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response) => {
    seen.push({
      method: request.method ?? '',
      path: request.url ?? '',
      authorization: request.headers.authorization,
      apiKey: request.headers['x-api-key'] as string | undefined,
    });
    handle(request, response);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const made: Hostile = {
    url: `http://127.0.0.1:${port}/lake/`,
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(made);
  return made;
}

const CONFIG = 'levels: [1, -1]\nusage: StatUsage\nlabels: JsonLabels\n';

function json(response: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

/** Answers config.yml; everything else goes to `rest`, or is a 404. */
function lake(rest: (request: IncomingMessage, response: ServerResponse) => boolean) {
  return (request: IncomingMessage, response: ServerResponse) => {
    if (request.url === '/lake/config.yml') {
      response.writeHead(200, { 'content-length': CONFIG.length });
      response.end(CONFIG);
      return;
    }
    if (rest(request, response)) return;
    response.writeHead(404, { 'content-length': 0 });
    response.end();
  };
}

const fast = { attempts: 1 };

describe('Nginx against a hostile server', () => {
  it('never follows listing names outside the lake URL, and sends the headers to no other host', async () => {
    const other = await hostile((_request, response) => json(response, []));
    const server = await hostile(
      lake((request, response) => {
        if (request.url !== '/lake/') return false;
        json(response, [
          { name: '..', type: 'directory' },
          { name: '../private', type: 'directory' },
          { name: '%2e%2e', type: 'directory' },
          { name: `${other.origin}/x`, type: 'directory' },
          { name: `//127.0.0.1:${new URL(other.origin).port}/x`, type: 'directory' },
          { name: '/private', type: 'directory' },
          { name: 'private', type: 'directory' },
        ]);
        return true;
      }),
    );
    const nginx = new Nginx(server.url, { headers: { authorization: 'Bearer lake-token', 'x-api-key': 'lake-key' }, retry: fast });
    const listed: string[] = [];
    for await (const entry of nginx.contents()) listed.push(entry.key);
    await nginx.close();
    expect(listed).toEqual([]);
    expect(server.seen.map((request) => request.path)).toEqual(['/lake/config.yml', '/lake/']);
    expect(server.seen.every((request) => request.authorization === 'Bearer lake-token' && request.apiKey === 'lake-key')).toBe(true);
    expect(other.seen).toEqual([]);
  });

  it('refuses redirects: the lake headers never reach the address they point to', async () => {
    const other = await hostile((_request, response) => {
      response.writeHead(200, { 'content-length': 2 });
      response.end('{}');
    });
    const key = sha256(Buffer.from('redirected'));
    const server = await hostile(
      lake((request, response) => {
        response.writeHead(302, { location: `${other.origin}/steal${request.url}`, 'content-length': 0 });
        response.end();
        return true;
      }),
    );
    const nginx = new Nginx(server.url, { headers: { authorization: 'Bearer lake-token' }, retry: fast });
    const error = await nginx.readBytes(key).catch((e: unknown) => e);
    await nginx.close();
    expect(error).toBeInstanceOf(LocationError);
    expect((error as LocationError).code).toBe('ERR_HTTP');
    expect((error as Error).message).toMatch(/302.*redirects are not followed/);
    expect(other.seen).toEqual([]);
  });

  it('sends the user and password of the URL as basic auth, and prints them nowhere', async () => {
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    const server = await hostile(
      lake((request, response) => {
        const accepted = ['reader:s3cr/t@pw', 'reader:p@ss/w'].map((pair) => `Basic ${Buffer.from(pair).toString('base64')}`);
        if (!accepted.includes(request.headers.authorization ?? '')) {
          response.writeHead(401, { 'content-length': 0 });
          response.end();
          return true;
        }
        if (request.url !== `/lake/${key.slice(0, 2)}/${key.slice(2)}`) return false;
        response.writeHead(200, { 'content-length': bytes.length });
        response.end(request.method === 'HEAD' ? undefined : bytes);
        return true;
      }),
    );
    const withPassword = server.url.replace('http://', `http://reader:${encodeURIComponent('s3cr/t@pw')}@`);
    const nginx = new Nginx(withPassword, { retry: fast });
    expect(nginx.name).not.toContain('s3cr');
    expect(nginx.url).toBe(server.url);
    expect((await nginx.readBytes(key))!.equals(bytes)).toBe(true);
    expect((await (await nginx.read(key))!.bytes()).equals(bytes)).toBe(true);
    await nginx.close();

    // the same password unescaped, as it comes from an environment variable
    const raw = new Nginx(server.url.replace('http://', 'http://reader:s3cr/t@pw@'), { retry: fast });
    expect(raw.name).not.toContain('s3cr');
    expect((await raw.readBytes(key))!.equals(bytes)).toBe(true);
    await raw.close();
    // parsed as a URL this one would be user `reader`, password `p`, host `ss`: split at the last @ instead
    const tricky = new Nginx(server.url.replace('http://', 'http://reader:p@ss/w@'), { retry: fast });
    expect(tricky.url).toBe(server.url);
    expect((await tricky.readBytes(key))!.equals(bytes)).toBe(true);
    await tricky.close();

    const wrong = new Nginx(server.url.replace('http://', 'http://reader:wrong-pw@'), { retry: fast });
    const error = await wrong.readBytes(key).catch((e: unknown) => e);
    await wrong.close();
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).not.toContain('wrong-pw');
    expect(server.seen.filter((request) => request.authorization === undefined)).toEqual([]);
  });

  it('stops reading a body longer than the value it declared (HEAD 19 bytes, GET 192 MiB)', async () => {
    const bytes = Buffer.from('nineteen bytes long');
    const key = sha256(bytes);
    let sent = 0;
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const server = await hostile(
      lake((request, response) => {
        if (request.url !== `/lake/${key.slice(0, 2)}/${key.slice(2)}`) return false;
        if (request.method === 'HEAD') {
          response.writeHead(200, { 'content-length': bytes.length });
          response.end();
          return true;
        }
        // no length, then far more than the value: stops when the client goes away
        response.writeHead(200, {});
        const pump = () => {
          while (sent < 192 * chunk.length && !response.destroyed) {
            sent += chunk.length;
            if (!response.write(chunk)) return void response.once('drain', pump);
          }
          response.end();
        };
        response.on('close', () => response.removeAllListeners('drain'));
        pump();
        return true;
      }),
    );
    const nginx = new Nginx(server.url, { retry: fast });
    const value = (await nginx.read(key))!;
    expect(value.size).toBe(19);
    await expect(value.bytes()).rejects.toBeInstanceOf(StorageCorruption);
    const streamed = await (async () => {
      for await (const _ of value.stream()) void _;
    })().catch((e: unknown) => e);
    expect(streamed).toBeInstanceOf(StorageCorruption);
    await nginx.close();
    // both reads gave up after the first chunks, not after 2 x 192 MiB
    expect(sent).toBeLessThan(64 * chunk.length);
  });

  it('fails readBytes when the GET body runs past its own Content-Length promise of the HEAD', async () => {
    const bytes = randomBytes(1000);
    const key = sha256(bytes);
    const server = await hostile(
      lake((request, response) => {
        if (request.url !== `/lake/${key.slice(0, 2)}/${key.slice(2)}`) return false;
        const body = Buffer.concat([bytes, randomBytes(5000)]);
        response.writeHead(200, { 'content-length': request.method === 'HEAD' ? bytes.length : body.length });
        response.end(request.method === 'HEAD' ? undefined : body);
        return true;
      }),
    );
    const nginx = new Nginx(server.url, { retry: fast });
    const value = (await nginx.read(key))!;
    await expect(value.bytes()).rejects.toBeInstanceOf(StorageCorruption);
    await expect(nginx.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    await nginx.close();
  });

  it('gives a body that trickles (1 byte every 300 ms, each pause under the timeout) a deadline: TimeoutError', async () => {
    const bytes = randomBytes(1000);
    const key = sha256(bytes);
    const timers = new Set<NodeJS.Timeout>();
    const server = await hostile(
      lake((request, response) => {
        if (request.url !== `/lake/${key.slice(0, 2)}/${key.slice(2)}`) return false;
        response.writeHead(200, { 'content-length': bytes.length });
        if (request.method === 'HEAD') return void response.end(), true;
        let offset = 0;
        const timer = setInterval(() => {
          if (response.destroyed || offset >= bytes.length) {
            clearInterval(timer);
            timers.delete(timer);
            return;
          }
          response.write(bytes.subarray(offset, ++offset));
        }, 300);
        timers.add(timer);
        return true;
      }),
    );
    // at this rate the whole 1000 bytes may take 1 s + 1000 / 1000 s; trickled, they would take 300 s
    const nginx = new Nginx(server.url, { timeoutMs: 1000, minBytesPerSecond: 1000, retry: fast });
    await expect(nginx.readBytes(key)).rejects.toBeInstanceOf(TimeoutError);
    const value = (await nginx.read(key))!;
    const streamed = await (async () => {
      for await (const _ of value.stream()) void _;
    })().catch((e: unknown) => e);
    expect(streamed).toBeInstanceOf(TimeoutError);
    await nginx.close();
    for (const timer of timers) clearInterval(timer);
  });
});

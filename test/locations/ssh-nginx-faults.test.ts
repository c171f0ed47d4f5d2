/**
 * Faults on real servers: a server stopped mid-run, a server that accepts connections and never
 * answers, a corrupted blob served over HTTP. Each must be a typed error (never a miss, never a
 * hang), and Levels with skipFailing must fall back and say so.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Disk, Levels, type SkipEvent, StorageCorruption } from '../../src/index.js';
import { ConnectionError, TimeoutError } from '../../src/errors.js';
import { Nginx } from '../../src/locations/http/nginx.js';
import { SCP } from '../../src/locations/ssh/scp.js';
import { SFTP } from '../../src/locations/ssh/sftp.js';
import { bytesSource, sha256, expectStored } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { startNginx, type NginxServer } from '../servers/nginx.js';
import { freePort } from '../servers/ports.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

afterAll(cleanup);

/** Accepts TCP connections and never says a word. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const fast = { attempts: 2, baseDelayMs: 20, maxDelayMs: 50 };

describe('SSH faults', () => {
  let server: Sshd;
  beforeAll(async () => {
    server = await startSshd();
  });
  afterAll(async () => {
    await server?.close();
  });

  for (const Kind of [SFTP, SCP]) {
    it(`${Kind.name}: a stopped sshd is a ConnectionError, never a miss; Levels skips it and reports the skip`, async () => {
      const root = join(server.dir, `fault-${Kind.name}`);
      const remote = new Kind(server.host, root, {
        port: server.port,
        username: server.username,
        privateKey: server.privateKey,
        knownHosts: server.knownHosts,
        timeoutMs: 3000,
        retry: fast,
      });
      const bytes = randomBytes(2000);
      const key = sha256(bytes);
      await expectStored(remote.write(key, bytesSource(bytes)), key);
      expect((await remote.readBytes!(key))!.equals(bytes)).toBe(true);

      await server.stop();
      try {
        const started = Date.now();
        const error = await remote.read(key).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConnectionError);
        expect(Date.now() - started).toBeLessThan(10_000);

        const local = new Disk(tempDir());
        const levels = new Levels(local, remote, { skipFailing: true });
        const skips: SkipEvent[] = [];
        levels.on('skip', (event: SkipEvent) => skips.push(event));
        expect(await levels.read(key)).toBeNull();
        expect(skips).toHaveLength(1);
        expect(skips[0]!.operation).toBe('read');
        expect(skips[0]!.level).toBe(remote.name);
        expect(skips[0]!.error).toBeInstanceOf(ConnectionError);
        // without skipFailing the failure reaches the caller
        await expect(new Levels(local, remote).read(key)).rejects.toBeInstanceOf(ConnectionError);
      } finally {
        await server.start();
      }
      // and once the server is back, the same location reconnects
      expect((await remote.readBytes!(key))!.equals(bytes)).toBe(true);
      await remote.close();
    });
  }

  it('a server that never answers the handshake is a TimeoutError within the limit', async () => {
    const silent = await silentServer();
    try {
      for (const Kind of [SFTP, SCP]) {
        const remote = new Kind('127.0.0.1', '/lake', { port: silent.port, acceptUnknownHostKey: true, timeoutMs: 700, retry: { attempts: 1 } });
        const started = Date.now();
        await expect(remote.read(sha256(Buffer.from('x')))).rejects.toBeInstanceOf(TimeoutError);
        expect(Date.now() - started).toBeLessThan(5000);
        await remote.close();
      }
    } finally {
      await silent.close();
    }
  });
});

describe('Nginx faults', () => {
  let server: NginxServer;
  let root: string;
  let lake: Disk;
  beforeAll(async () => {
    root = tempDir();
    lake = new Disk(root);
    server = await startNginx(root);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('a stopped nginx is a ConnectionError; Levels(Disk, Nginx) with skipFailing reports a skip', async () => {
    const bytes = randomBytes(1000);
    const key = sha256(bytes);
    await lake.write(key, bytesSource(bytes));
    const nginx = new Nginx(server.url, { timeoutMs: 3000, retry: fast });
    expect((await nginx.readBytes(key))!.equals(bytes)).toBe(true);
    await server.stop();
    try {
      await expect(nginx.read(key)).rejects.toBeInstanceOf(ConnectionError);
      const levels = new Levels(new Disk(tempDir()), nginx, { skipFailing: true });
      const skips: SkipEvent[] = [];
      levels.on('skip', (event: SkipEvent) => skips.push(event));
      expect(await levels.read(key)).toBeNull();
      expect(skips.map((skip) => skip.level)).toEqual([nginx.name]);
      expect(skips[0]!.error).toBeInstanceOf(ConnectionError);
    } finally {
      await server.start();
    }
    expect((await nginx.readBytes(key))!.equals(bytes)).toBe(true);
    await nginx.close();
  });

  it('a server that never answers is a TimeoutError within the limit', async () => {
    const silent = await silentServer();
    try {
      const nginx = new Nginx(`http://127.0.0.1:${silent.port}/`, { timeoutMs: 700, retry: { attempts: 1 } });
      const started = Date.now();
      await expect(nginx.read(sha256(Buffer.from('x')))).rejects.toBeInstanceOf(TimeoutError);
      expect(Date.now() - started).toBeLessThan(5000);
      await nginx.close();
    } finally {
      await silent.close();
    }
  });

  it('a corrupted blob served by nginx fails with StorageCorruption and is not copied into the Disk level', async () => {
    const bytes = randomBytes(300_000);
    const key = sha256(bytes);
    await lake.write(key, bytesSource(bytes));
    const file = lake.pathOf(key);
    chmodSync(file, 0o644);
    const stored = readFileSync(file);
    stored[1234] = stored[1234]! ^ 0x10;
    writeFileSync(file, stored);

    const local = new Disk(tempDir());
    const nginx = new Nginx(server.url);
    const levels = new Levels(local, nginx);
    await expect(levels.read(key)).rejects.toBeInstanceOf(StorageCorruption);
    await expect(levels.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    expect(await local.read(key)).toBeNull();
    // with skipFailing the corrupted copy is a reported skip, and still not promoted
    const skipping = new Levels(local, nginx, { skipFailing: true });
    const skips: SkipEvent[] = [];
    skipping.on('skip', (event: SkipEvent) => skips.push(event));
    // the corrupted nginx copy counts as a failing read of that level: a miss, reported
    expect(await skipping.read(key)).toBeNull();
    expect(skips.map((skip) => [skip.level, skip.operation])).toEqual([[nginx.name, 'read']]);
    expect(skips[0]!.error).toBeInstanceOf(StorageCorruption);
    expect(await local.read(key)).toBeNull();
    await nginx.close();
  });
});

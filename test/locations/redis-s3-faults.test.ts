/**
 * Faults of the Redis and S3 locations against real servers: a server that goes away, one that
 * stops answering, and one that serves corrupted bytes. Each must be a typed error (never a miss,
 * never a hang), Levels must fall back when told to, and a corrupted value must never be promoted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, StorageCorruption, TimeoutError } from '../../src/errors.js';
import { Disk, Levels, type Location, type SkipEvent } from '../../src/index.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { S3 } from '../../src/locations/s3/s3.js';
import { bytesSource, sha256, expectStored } from '../conformance.js';
import { freePort } from '../servers/ports.js';
import { type RedisServer, startRedis } from '../servers/redis.js';
import { S3_CREDENTIALS } from '../servers/s3.js';
import { s3Servers, type S3TestServer } from '../servers/s3-servers.js';

const folders: string[] = [];
function disk(): Disk {
  const folder = mkdtempSync(join(tmpdir(), 'cairn-faults-'));
  folders.push(folder);
  return new Disk(folder);
}
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** Runs `action`, expecting it to fail with `type` within `withinMs`. */
async function failsWith(action: () => Promise<unknown>, type: abstract new (...args: never[]) => Error, withinMs: number): Promise<Error> {
  const started = Date.now();
  const error = await action().then(
    (result) => new Error(`expected ${type.name}, got ${JSON.stringify(result)}`),
    (caught: Error) => caught,
  );
  expect(error).toBeInstanceOf(type);
  expect(Date.now() - started).toBeLessThan(withinMs);
  return error;
}

/** The fallback and corruption checks, the same for both remotes. */
function sharedFaults(kind: string, setup: () => { remote: () => Location; stop: () => Promise<void>; corrupt: (key: string) => Promise<void> }) {
  it(`${kind}: a value corrupted on the server fails a read through Levels(Disk, remote) and is not promoted`, async () => {
    const { remote, corrupt } = setup();
    const location = remote();
    const bytes = randomBytes(20_000);
    const key = sha256(bytes);
    await expectStored(location.write(key, bytesSource(bytes)), key);
    await corrupt(key);
    const local = disk();
    const levels = new Levels(local, location);
    await expect(levels.read(key)).rejects.toBeInstanceOf(StorageCorruption);
    await expect(levels.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    expect(await local.read(key)).toBeNull();

    // skipping failing levels: the corrupted remote copy is a reported miss, never bytes
    const skipping = new Levels(local, location, { skipFailing: true });
    const skips: SkipEvent[] = [];
    skipping.on('skip', (event: SkipEvent) => skips.push(event));
    expect(await skipping.read(key)).toBeNull();
    expect(await skipping.readBytes(key)).toBeNull();
    expect(skips.map((skip) => [skip.level, skip.operation])).toEqual([
      [location.name, 'read'],
      [location.name, 'read'],
    ]);
    expect(skips.every((skip) => skip.error instanceof StorageCorruption)).toBe(true);
    expect(await local.read(key)).toBeNull();
    await location.close?.();
  });

  it(`${kind}: a stopped server is a ConnectionError, and Levels with skipFailing falls back and reports it`, async () => {
    const { remote, stop } = setup();
    const location = remote();
    const bytes = randomBytes(1000);
    const key = sha256(bytes);
    await expectStored(location.write(key, bytesSource(bytes)), key);
    expect(await location.read(key)).not.toBeNull();
    const below = disk();
    await below.write(key, bytesSource(bytes));

    await stop();
    await failsWith(() => location.read(key), ConnectionError, 8000);
    await failsWith(() => location.write(sha256(randomBytes(8)), bytesSource(randomBytes(8))), ConnectionError, 8000);
    await failsWith(() => new Levels(location, below).read(key), ConnectionError, 8000);

    const levels = new Levels(location, below, { skipFailing: true });
    const skips: SkipEvent[] = [];
    levels.on('skip', (event: SkipEvent) => skips.push(event));
    const value = await levels.read(key);
    expect((await value!.bytes()).equals(bytes)).toBe(true);
    expect(skips.map((skip) => [skip.level, skip.operation, skip.key])).toContainEqual([location.name, 'read', key]);
    expect(skips.every((skip) => skip.error instanceof ConnectionError)).toBe(true);
    await location.close?.();
  });
}

describe('Redis faults', () => {
  let server: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    // these tests stop and restart the server: on a port no other test's server can take meanwhile
    // (a retry would otherwise read another, empty server's answers as misses)
    server = await startRedis({ stable: true });
    admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.destroy();
  });

  let prefixes = 0;
  sharedFaults('Redis', () => ({
    remote: () => new RedisLocation(server.url, { prefix: `f${++prefixes}:`, timeoutMs: 2000 }),
    stop: () => server.stop(),
    corrupt: async (key) => {
      const name = `f${prefixes}:${key}`;
      const bytes = await admin.hgetBuffer(name, 'd');
      bytes![100] ^= 1;
      await admin.hset(name, 'd', bytes!);
    },
  }));

  it('Redis: comes back after the server restarts (empty, so a miss again)', async () => {
    await server.start();
    const location = new RedisLocation(server.url, { prefix: 'back:', timeoutMs: 2000 });
    const key = sha256(Buffer.from('back'));
    expect(await location.read(key)).toBeNull();
    await server.stop();
    await failsWith(() => location.read(key), ConnectionError, 8000);
    await server.start();
    // the client reconnects by itself
    let answer: unknown = 'not yet';
    for (let attempt = 0; attempt < 50 && answer === 'not yet'; attempt++) {
      answer = await location.read(key).catch(() => 'not yet');
      if (answer === 'not yet') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(answer).toBeNull();
    await location.close();
  });

  it('Redis: a server that stops answering is a TimeoutError after timeoutMs', async () => {
    const location = new RedisLocation(server.url, { prefix: 'slow:', timeoutMs: 700, retry: { attempts: 1 } });
    const key = sha256(Buffer.from('slow'));
    expect(await location.read(key)).toBeNull();
    server.pause();
    try {
      const error = (await failsWith(() => location.read(key), TimeoutError, 3000)) as TimeoutError;
      expect(error.timeoutMs).toBe(700);
    } finally {
      server.resume();
    }
    await location.close();
  });
  it('Redis: a server killed in the middle of a 3,000-key readBatch is a ConnectionError, every time', async () => {
    const keys: string[] = [];
    const values: Buffer[] = [];
    for (let index = 0; index < 3000; index++) {
      // 4 KiB each: 12 MiB of replies, still on the wire when the kill lands
      values.push(Buffer.concat([Buffer.from(`batch value ${index} `), Buffer.alloc(4096, index % 251)]));
      keys.push(sha256(values[index]!));
    }
    /** Stores every value on the fresh server, each write checked (a pipeline is sent once: one per run). */
    const fill = async () => {
      const pipeline = admin.pipeline();
      keys.forEach((key, index) => pipeline.hset(`kill:${key}`, 'd', values[index]!));
      const replies = (await pipeline.exec()) ?? [];
      expect(replies.filter(([error]) => error === null)).toHaveLength(3000);
      expect(await admin.dbsize()).toBe(3000);
    };
    let failed = 0;
    for (let run = 0; run < 8; run++) {
      // a fresh server each run (stop() first: start() beside a running one would not take the port)
      await server.stop();
      await server.start();
      await waitForAdmin();
      await fill();
      const location = new RedisLocation(server.url, { prefix: 'kill:', timeoutMs: 2000, batchSize: 3000, retry: { attempts: 2, baseDelayMs: 20 } });
      expect(await location.readBytes(keys[0]!)).not.toBeNull();
      let read = 0;
      // its outcome is taken at once: a failure during the stop below is not an unhandled rejection
      const outcome = (async () => {
        for await (const [, value] of location.readBatch(keys)) if (value !== null) read++;
      })().then(
        () => null,
        (caught: unknown) => caught,
      );
      // killed at a different moment of the one pipeline of 3,000 HGETALLs each run: before it
      // is sent, while its replies are on the wire (some received, the rest aborted)
      await new Promise((resolve) => setTimeout(resolve, run * 4));
      await server.stop();
      const error = await outcome;
      // the kill came too late (every value read, intact) or it is a ConnectionError, never another error
      if (error === null) expect(read).toBe(3000);
      else {
        expect(error).toBeInstanceOf(ConnectionError);
        failed++;
      }
      await location.close();
    }
    expect(failed).toBeGreaterThan(0);
    await server.start();
  });

  /** The admin client's reconnection after a restart: a ping that answers. */
  async function waitForAdmin(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      if ((await admin.ping().catch(() => null)) === 'PONG') return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('the restarted Redis never answered');
  }

  it('Redis: a password with "/" in its URL shows in no name and no error', async () => {
    const port = await freePort();
    const location = new RedisLocation(`redis://:pa/ss@127.0.0.1:${port}`, { timeoutMs: 500, retry: { attempts: 1 } });
    expect(location.name).not.toContain('pa/ss');
    expect(location.name).not.toContain('pa');
    const error = await location.read(sha256(Buffer.from('x'))).then(() => null, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).not.toContain('pa/ss');
    await location.close();
  });
});

// each S3 server is started once for this file (radosgw takes ~15 s to start)
for (const kind of s3Servers) {
  describe(`S3 faults on ${kind.name}`, () => {
    let server: S3TestServer;
    beforeAll(async () => {
      server = await kind.start();
    });
    afterAll(async () => {
      await server?.destroy();
    });

    let lakes = 0;
    sharedFaults(`S3 (${kind.name})`, () => {
      const prefix = `f${++lakes}`;
      let location: S3;
      return {
        remote: () => (location = new S3(server.endpoint, server.bucket, { credentials: server.credentials, prefix, timeoutMs: 2000 })),
        stop: () => server.stop(),
        corrupt: (key) => server.corrupt(location.objectKey(key), 100),
      };
    });

    it(`S3 (${kind.name}): comes back when the server is started again, with the values it held`, async () => {
      await server.start();
      const location = new S3(server.endpoint, server.bucket, { credentials: server.credentials, prefix: 'back', timeoutMs: 2000 });
      const bytes = randomBytes(500);
      const key = sha256(bytes);
      await expectStored(location.write(key, bytesSource(bytes)), key, bytes);
      await server.stop();
      await failsWith(() => location.read(key), ConnectionError, 8000);
      await server.start();
      expect((await (await location.read(key))!.bytes()).equals(bytes)).toBe(true);
      await location.close();
    });
  });
}

describe('S3 faults', () => {
  it('S3: a server that accepts connections but never answers is a TimeoutError after timeoutMs', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    const port = await freePort();
    await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', resolve));
    const location = new S3(`http://127.0.0.1:${port}`, 'lake', { credentials: S3_CREDENTIALS, timeoutMs: 700, retry: { attempts: 1 } });
    try {
      await failsWith(() => location.read(sha256(Buffer.from('x'))), TimeoutError, 3000);
    } finally {
      await location.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

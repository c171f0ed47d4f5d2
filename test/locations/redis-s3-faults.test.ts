/**
 * Faults of the Redis and S3 locations against real servers: the fault part of the conformance
 * suite (a server stopped, hung, a value corrupted at rest) for each, then what only Redis has (a
 * server killed in the middle of a pipelined batch; a password in the URL).
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError } from '../../src/errors.js';
import type { Location } from '../../src/index.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { S3 } from '../../src/locations/s3/s3.js';
import { sha256 } from '../conformance.js';
import { locationFaults } from '../conformance-faults.js';
import { type FaultProxy, startFaultProxy } from '../servers/fault-proxy.js';
import { freePort } from '../servers/ports.js';
import { type RedisServer, startRedis } from '../servers/redis.js';
import { type RedisClusterServer, startRedisCluster } from '../servers/redis-cluster.js';
import { s3Servers, type S3TestServer } from '../servers/s3-servers.js';

/** Short limits, so that a hung server fails quickly; two quick attempts for a lost connection. */
const TIMEOUT_MS = 1500;
const RETRY = { attempts: 2, baseDelayMs: 50 };

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
  locationFaults({
    name: 'Redis',
    create: () => new RedisLocation(server.url, { prefix: `f${++prefixes}:`, timeoutMs: TIMEOUT_MS, retry: RETRY }),
    timeoutMs: TIMEOUT_MS,
    stop: () => server.stop(),
    start: () => server.start(),
    // no persistence: a restarted server is empty
    keepsValues: false,
    hang: () => server.pause(),
    resume: () => server.resume(),
    corrupt: async (location, key) => {
      // a client of its own: the admin's may still be reconnecting after a restart
      const client = new Redis(server.url, { maxRetriesPerRequest: 1 });
      try {
        const name = (location as RedisLocation).prefix + key;
        const bytes = await client.hgetBuffer(name, 'd');
        bytes![100] ^= 1;
        await client.hset(name, 'd', bytes!);
      } finally {
        client.disconnect();
      }
    },
    destroy: (location: Location) => location.close?.(),
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

describe('Redis Cluster faults', () => {
  let cluster: RedisClusterServer;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  let prefixes = 0;
  locationFaults({
    name: 'Redis Cluster',
    create: () => new RedisLocation(cluster.urls[0]!, { prefix: `c${++prefixes}:`, timeoutMs: TIMEOUT_MS, retry: RETRY }),
    timeoutMs: TIMEOUT_MS,
    stop: () => cluster.stop(),
    start: () => cluster.start(),
    keepsValues: false,
    hang: () => cluster.pause(),
    resume: () => cluster.resume(),
    corrupt: async (location, key) => {
      const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
      try {
        const name = (location as RedisLocation).prefix + key;
        const bytes = await client.hgetBuffer(name, 'd');
        bytes![100] ^= 1;
        await client.hset(name, 'd', bytes!);
      } finally {
        client.disconnect();
      }
    },
    destroy: (location: Location) => location.close?.(),
  });
});

// each S3 server is started once for this file (radosgw takes ~15 s to start); the locations reach
// it through a proxy, which makes it hang without stopping it
for (const kind of s3Servers) {
  describe(`S3 faults on ${kind.name}`, () => {
    // radosgw's first answers are slow on a loaded machine: more time, and a first request before the tests
    const timeoutMs = kind.name === 'radosgw' ? 4 * TIMEOUT_MS : TIMEOUT_MS;
    let server: S3TestServer;
    let proxy: FaultProxy;
    beforeAll(async () => {
      server = await kind.start();
      proxy = await startFaultProxy(Number(new URL(server.endpoint).port));
      const warm = new S3(server.endpoint, server.bucket, { credentials: server.credentials, prefix: 'warm' });
      expect(await warm.read(sha256(Buffer.from('warm')))).toBeNull();
      await warm.close();
    });
    afterAll(async () => {
      await proxy?.close();
      await server?.destroy();
    });

    let lakes = 0;
    locationFaults({
      name: `S3 (${kind.name})`,
      create: () =>
        new S3(`http://127.0.0.1:${proxy.port}`, server.bucket, { credentials: server.credentials, prefix: `f${++lakes}`, timeoutMs, retry: RETRY }),
      timeoutMs,
      stop: () => server.stop(),
      start: () => server.start(),
      hang: () => proxy.hang(),
      resume: () => proxy.resume(),
      corrupt: (location, key) => server.corrupt((location as S3).objectKey(key), 100),
      destroy: (location: Location) => location.close?.(),
    });
  });
}

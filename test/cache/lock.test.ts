/**
 * The cross-process lock of smartCache, with lock files and with Redis (a real redis-server):
 * a holder killed on this host is taken over at once, a holder that blocks its event loop for
 * longer than the lease keeps the lock (renewed from a worker thread), a holder on another host is
 * taken over when its lease runs out, and a release never removes someone else's lock.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, promises as fsp, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, resolveLock } from '../../src/cache/lock.js';
import { ConfigError, ConnectionError } from '../../src/errors.js';
import { RedisLocation } from '../../src/locations/redis/redis.js';
import { Memory } from '../../src/locations/memory.js';
import { smartCache } from '../../src/cache/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { type RedisServer, startRedis } from '../servers/redis.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const module = (path: string) => JSON.stringify(pathToFileURL(join(root, path)).href);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A token of a process on another machine: only its lease can free the lock. */
const ELSEWHERE = 'elsewhere.example:4242:abcdef';

let redis: RedisServer;
let admin: Redis;
let script: string;
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
  script = join(tempDir('cairn-lock-'), 'holder.mjs');
  // a process calling a cached function under the lock; what differs between the processes is
  // read from process.argv (a global of the platform), so it is not part of the key
  writeFileSync(
    script,
    `import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { smartCache } from ${module('src/cache/index.ts')};
import { RedisLocation } from ${module('src/locations/redis/redis.ts')};
const [mode, kind, target, runs, ready, lease] = process.argv.slice(2);
const how = { mode, runs, ready, lease: Number(lease) };
function config() {
  const [mode, , , runs, ready, lease] = process.argv.slice(2);
  return { mode, runs, ready, lease: Number(lease) };
}
const location = kind === 'redis' ? new RedisLocation(target, { prefix: 'shared:' }) : null;
const cache = location ? { index: location, storage: location } : target;
const lock = location ? { redis: location, lease: how.lease } : { lease: how.lease };
const work = smartCache(cache, { lock })(function work(n) {
  const how = config();
  appendFileSync(how.runs, process.pid + '\\n');
  if (how.mode === 'hold') return new Promise(() => setInterval(() => {}, 1000));
  if (how.mode === 'busy') {
    // blocks the event loop until the other process waits, then for five leases more
    while (!existsSync(how.ready));
    const until = Date.now() + 5 * how.lease;
    while (Date.now() < until);
  }
  return { n, by: process.pid };
});
if (how.mode === 'wait') writeFileSync(how.ready, 'waiting');
const result = await work(5);
await location?.close();
console.log(JSON.stringify({ stats: work.stats, result }));
`,
  );
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.destroy();
  cleanup();
});

interface Outcome {
  stats: { hits: number; misses: number };
  result: { n: number; by: number };
}

function start(args: string[]): { child: ChildProcess; outcome: Promise<Outcome> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const outcome = new Promise<Outcome>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as Outcome) : reject(new Error(`holder exited with ${code ?? signal}`))));
  });
  return { child, outcome };
}

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);

async function untilRan(runs: string, count: number): Promise<void> {
  while (!existsSync(runs) || lines(runs).length < count) await sleep(20);
}

/** What the holders share: a cache folder (lock files in it), or a Redis server (locks in it). */
async function shared(kind: 'file' | 'redis'): Promise<{ target: string; runs: string; ready: string }> {
  const dir = tempDir('cairn-lock-');
  if (kind === 'redis') await admin.flushall();
  return { target: kind === 'redis' ? redis.url : join(dir, 'cache'), runs: join(dir, 'runs.txt'), ready: join(dir, 'ready') };
}

describe('smartCache lock across processes', () => {
  for (const kind of ['file', 'redis'] as const) {
    it(`${kind}: a holder killed with SIGKILL is taken over at once, not after its lease (10 minutes here)`, async () => {
      const { target, runs, ready } = await shared(kind);
      const holder = start(['hold', kind, target, runs, ready, '600000']);
      const died = holder.outcome.catch((error: Error) => error.message);
      await untilRan(runs, 1);
      holder.child.kill('SIGKILL');
      expect(await died).toBe('holder exited with SIGKILL');
      // were the lock not taken over, this would wait for ten minutes (and the test time out)
      const next = await start(['plain', kind, target, runs, ready, '600000']).outcome;
      expect(next.stats).toMatchObject({ hits: 0, misses: 1 });
      expect(lines(runs)).toEqual([String(holder.child.pid), String(next.result.by)]);
      if (kind === 'file') expect(await fsp.readdir(join(target, 'locks'))).toEqual([]);
      else expect(await admin.keys('shared:cairn:lock:*')).toEqual([]);
    });

    it(`${kind}: a holder that blocks its event loop for longer than a 500 ms lease keeps the lock; the waiter then hits`, async () => {
      const { target, runs, ready } = await shared(kind);
      const busy = start(['busy', kind, target, runs, ready, '500']);
      await untilRan(runs, 1);
      const waiter = start(['wait', kind, target, runs, ready, '500']);
      const [first, second] = await Promise.all([busy.outcome, waiter.outcome]);
      expect(lines(runs)).toEqual([String(busy.child.pid)]);
      expect(first.stats).toMatchObject({ hits: 0, misses: 1 });
      expect(second.stats).toMatchObject({ hits: 1, misses: 0 });
      expect(second.result).toEqual(first.result);
    });
  }
});

describe('lock leases in this process', () => {
  it('file: a stale lock of another host is taken over, and a fresh one is renewed while held', async () => {
    const dir = tempDir('cairn-lock-');
    const key = 'a'.repeat(64);
    const file = join(dir, `${key}.lock`);
    writeFileSync(file, ELSEWHERE);
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    const release = await acquireLock(resolveLock({ dir, lease: 500 }, null)!, key, async () => false);
    expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`^${hostname()}:${process.pid}:`));
    // blocked for four leases: the worker thread renews the file meanwhile
    const blocked = Date.now();
    while (Date.now() < blocked + 2000);
    const { mtimeMs } = await fsp.stat(file);
    expect(mtimeMs).toBeGreaterThan(blocked);
    await release!();
    expect(existsSync(file)).toBe(false);
  });

  it('redis: a lock of another host is taken over when its lease runs out; ours is renewed while blocked; release is compare-and-delete', async () => {
    const location = new RedisLocation(redis.url, { prefix: `l${++prefixes}:` });
    const key = 'b'.repeat(64);
    const name = `${location.prefix}cairn:lock:${key}`;
    await admin.set(name, ELSEWHERE, 'PX', 400);
    const lock = resolveLock({ redis: location, lease: 500 }, null)!;
    const release = await acquireLock(lock, key, async () => false);
    expect(await admin.get(name)).toMatch(new RegExp(`^${hostname()}:${process.pid}:`));
    const until = Date.now() + 2000;
    while (Date.now() < until);
    await sleep(50);
    expect(await admin.get(name)).toMatch(new RegExp(`^${hostname()}:${process.pid}:`));
    expect(await admin.pttl(name)).toBeGreaterThan(0);
    // taken over behind our back: our release leaves the new holder's lock alone
    await admin.set(name, ELSEWHERE, 'PX', 60_000);
    await release!();
    expect(await admin.get(name)).toBe(ELSEWHERE);
    await admin.del(name);
    await location.close();
  });

  it('a waiter gives up the wait as soon as the result is there', async () => {
    const dir = tempDir('cairn-lock-');
    const key = 'c'.repeat(64);
    writeFileSync(join(dir, `${key}.lock`), ELSEWHERE);
    let checks = 0;
    const got = await acquireLock(resolveLock({ dir, lease: 600_000, poll: 5 }, null)!, key, async () => ++checks >= 3);
    expect(got).toBeNull();
    expect(checks).toBe(3);
    expect(readFileSync(join(dir, `${key}.lock`), 'utf8')).toBe(ELSEWHERE);
  });

  it('redis: a lock server that is down is reported (ConnectionError through onError) and the call computes without the lock', async () => {
    const server = await startRedis();
    const location = new RedisLocation(server.url, { prefix: 'down:', timeoutMs: 2000 });
    await server.stop();
    const errors: unknown[] = [];
    const counter = { runs: 0 };
    const cached = smartCache(join(tempDir('cairn-lock-'), 'cache'), { lock: { redis: location }, onError: (error) => errors.push(error) })(async function doubled(n: number) {
      counter.runs++;
      return n * 2;
    });
    try {
      expect(await cached(21)).toBe(42);
      expect(counter.runs).toBe(1);
      expect(errors.length).toBe(1);
      expect(errors[0]).toBeInstanceOf(ConnectionError);
      expect(cached.stats).toMatchObject({ misses: 1, errors: 1 });
    } finally {
      await location.close();
      await server.destroy();
    }
  });

  it('a lock option without a folder, dir or redis is a ConfigError', () => {
    const location = new RedisLocation(redis.url, { prefix: 'cfg:' });
    expect(() => smartCache({ index: location, storage: location }, { lock: true })(async function f() {})).toThrow(ConfigError);
    expect(() => smartCache({ index: location, storage: location }, { lock: { lease: -1, redis: location } })(async function f() {})).toThrow(ConfigError);
    // lock.redis is typed as any Location (so the declarations need no ioredis); only Redis is taken
    expect(() => smartCache({ index: location, storage: location }, { lock: { redis: new Memory() } })(async function f() {})).toThrow(/lock\.redis must be a RedisLocation/);
  });
});

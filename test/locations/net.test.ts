/**
 * The network layer shared by the remote locations: a client classifies its errors, RemoteCalls
 * types them and retries the transient ones; deadlines and the in-flight limit.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AuthenticationError, ConnectionError, LocationError, StorageCorruption, TimeoutError } from '../../src/errors.js';
import { DeadlineExceeded, deadlineSignal, transferBudgetMs, transferDeadline, withDeadline } from '../../src/locations/net/deadline.js';
import { type Classified, CONNECTION_CODES, errorCode, type FailureKind } from '../../src/locations/net/failures.js';
import { RemoteCalls } from '../../src/locations/net/remote-calls.js';
import { backoffMs } from '../../src/locations/net/retry.js';
import { Semaphore } from '../../src/locations/net/semaphore.js';

/** A client error that says its kind in its message, classified by reading it back. */
const clientError = (kind: FailureKind) => Object.assign(new Error(`client says ${kind}`), { kind });
const classify = (error: unknown): Classified => ({ kind: (error as { kind?: FailureKind }).kind ?? 'permanent' });

function calls(attempts = 3) {
  return new RemoteCalls({ name: () => 'Test(remote)', timeoutMs: 500, retry: { attempts, baseDelayMs: 5 }, classify, transientCode: 'ERR_S3_TRANSIENT' });
}

/** An attempt that fails with `kinds` in turn, then answers 'done'; counts its calls. */
function failing(...kinds: FailureKind[]) {
  const counter = { calls: 0 };
  const attempt = async () => {
    const kind = kinds[counter.calls++];
    if (kind !== undefined) throw clientError(kind);
    return 'done';
  };
  return { counter, attempt };
}

describe('RemoteCalls', () => {
  it('retries connection and transient failures until an attempt succeeds', async () => {
    const { counter, attempt } = failing('connection', 'transient');
    expect(await calls().run('read', attempt)).toBe('done');
    expect(counter.calls).toBe(3);
  });

  it('gives up after `attempts`, with the typed error of the last attempt', async () => {
    const { counter, attempt } = failing('connection', 'connection', 'connection', 'connection');
    const error = await calls(3).run('read', attempt).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).location).toBe('Test(remote)');
    expect((error as Error).message).toContain('read');
    expect(counter.calls).toBe(3);
    const transient = await calls(2).run('write', failing('transient', 'transient', 'transient').attempt).catch((caught: unknown) => caught);
    expect(transient).toBeInstanceOf(LocationError);
    expect((transient as LocationError).code).toBe('ERR_S3_TRANSIENT');
  });

  it('never retries a timeout, an auth failure or a permanent failure, and types each', async () => {
    for (const [kind, type] of [
      ['timeout', TimeoutError],
      ['auth', AuthenticationError],
      ['permanent', LocationError],
    ] as const) {
      const { counter, attempt } = failing(kind, kind);
      const error = await calls().run('read', attempt).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(type);
      expect((error as Error).cause).toBeInstanceOf(Error);
      expect(counter.calls).toBe(1);
    }
    const timeout = (await calls().run('read', failing('timeout').attempt).catch((caught: unknown) => caught)) as TimeoutError;
    expect(timeout.timeoutMs).toBe(500);
  });

  it('passes typed errors through unchanged, and a deadline marker becomes a TimeoutError', async () => {
    const corruption = new StorageCorruption('a'.repeat(64), 'b'.repeat(64), 'here');
    let tries = 0;
    await expect(
      calls().run('read', async () => {
        tries++;
        throw corruption;
      }),
    ).rejects.toBe(corruption);
    expect(tries).toBe(1);
    const error = await calls().run('read', () => Promise.reject(new DeadlineExceeded(500))).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TimeoutError);
  });

  it("types a failure with the client's code, and retries a transient one whose code a permanent one shares", async () => {
    // Nginx: a 503 and a 400 are both ERR_HTTP; only the 503 is worth another attempt
    const byStatus = (error: unknown): Classified => {
      const status = (error as { status?: number }).status;
      return { kind: status === 503 ? 'transient' : status === 403 ? 'auth' : 'permanent', code: status === 403 ? 'ERR_HOST_KEY' : 'ERR_HTTP', detail: `status ${status}` };
    };
    const http = new RemoteCalls({ name: () => 'Test(http)', timeoutMs: 500, retry: { attempts: 3, baseDelayMs: 5 }, classify: byStatus });
    const answering = (...statuses: number[]) => {
      const counter = { calls: 0 };
      const attempt = async () => {
        const status = statuses[counter.calls++];
        if (status !== undefined) throw Object.assign(new Error('answered'), { status });
        return 'done';
      };
      return { counter, attempt };
    };
    const unavailable = answering(503, 503);
    expect(await http.run('read', unavailable.attempt)).toBe('done');
    expect(unavailable.counter.calls).toBe(3);
    const bad = answering(400, 400);
    const error = await http.run('read', bad.attempt).catch((caught: unknown) => caught);
    expect([error instanceof LocationError, (error as LocationError).code, (error as Error).message, bad.counter.calls]).toEqual([
      true,
      'ERR_HTTP',
      'read on Test(http) failed: status 400',
      1,
    ]);
    const stillDown = await http.run('read', answering(503, 503, 503).attempt).catch((caught: unknown) => caught);
    expect((stillDown as LocationError).code).toBe('ERR_HTTP');
    // an auth failure carries the code the client gave it
    const refused = await http.run('read', answering(403).attempt).catch((caught: unknown) => caught);
    expect([refused instanceof AuthenticationError, (refused as AuthenticationError).code]).toEqual([true, 'ERR_HOST_KEY']);
  });

  it('runOrNull answers a not-found failure as null, and retries what it would retry', async () => {
    expect(await calls().runOrNull('has', failing('not-found').attempt)).toBeNull();
    const { counter, attempt } = failing('connection', 'not-found');
    expect(await calls().runOrNull('has', attempt)).toBeNull();
    expect(counter.calls).toBe(2);
    expect(await calls().runOrNull('has', failing().attempt)).toBe('done');
    // in run(), a not-found failure is an error, never a silent miss
    await expect(calls().run('read', failing('not-found').attempt)).rejects.toBeInstanceOf(LocationError);
  });
});

describe('backoff', () => {
  it('doubles from baseDelayMs up to maxDelayMs, never less than half of it', () => {
    const options = { baseDelayMs: 100, maxDelayMs: 1000 };
    for (let round = 0; round < 200; round++) {
      const first = backoffMs(1, options);
      expect(first).toBeGreaterThanOrEqual(50);
      expect(first).toBeLessThanOrEqual(100);
      const third = backoffMs(3, options);
      expect(third).toBeGreaterThanOrEqual(200);
      expect(third).toBeLessThanOrEqual(400);
      const capped = backoffMs(10, options);
      expect(capped).toBeGreaterThanOrEqual(500);
      expect(capped).toBeLessThanOrEqual(1000);
    }
  });
});

describe('deadlines', () => {
  it('withDeadline passes a prompt answer and fails a late one with DeadlineExceeded, after onExpire', async () => {
    expect(await withDeadline(Promise.resolve(7), 1000)).toBe(7);
    let expired = false;
    const started = Date.now();
    const error = await withDeadline(new Promise(() => {}), 100, () => (expired = true)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect(expired).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('deadlineSignal aborts after its time, and not once cleared', async () => {
    const late = deadlineSignal(50);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(late.expired).toBe(true);
    expect(late.signal.reason).toBeInstanceOf(DeadlineExceeded);
    const cleared = deadlineSignal(50);
    cleared.clear();
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(cleared.expired).toBe(false);
  });

  it('transferDeadline destroys a stalled stream, and leaves one that ended in time', async () => {
    const stalled = new PassThrough();
    const deadline = transferDeadline(stalled, 80);
    const error = await new Promise((resolve) => stalled.once('error', resolve));
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect(deadline.expired).toBe(true);
    const quick = new PassThrough();
    const ok = transferDeadline(quick, 80);
    quick.end('bytes');
    quick.resume();
    await new Promise((resolve) => quick.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(ok.expired).toBe(false);
    expect(quick.errored).toBeNull();
    expect(transferBudgetMs(1000, 2_000_000, 1_000_000)).toBe(3000);
  });
});

describe('connection codes and the in-flight limit', () => {
  it('one list of connection codes, and codes read from an error or its cause', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'UND_ERR_SOCKET']) expect(CONNECTION_CODES.has(code)).toBe(true);
    expect(CONNECTION_CODES.has('ENOENT')).toBe(false);
    expect(errorCode(Object.assign(new Error('x'), { code: 'EPIPE' }))).toBe('EPIPE');
    expect(errorCode(new Error('x', { cause: Object.assign(new Error('y'), { code: 'ECONNRESET' }) }))).toBe('ECONNRESET');
    expect(errorCode('text')).toBe('');
  });

  it('Semaphore keeps at most `limit` tasks running and runs them all', async () => {
    const semaphore = new Semaphore(3);
    let running = 0;
    let most = 0;
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        semaphore.run(async () => {
          running++;
          most = Math.max(most, running);
          await new Promise((resolve) => setTimeout(resolve, 5));
          running--;
          done.push(index);
        }),
      ),
    );
    expect(most).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, index) => index));
  });
});

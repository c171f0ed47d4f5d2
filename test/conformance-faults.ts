/**
 * The fault part of the conformance suite, which every remote location runs in one call:
 *
 *   locationFaults({ name, create, timeoutMs, stop, start, hang, resume, corrupt, ... })
 *
 * - a server stopped (before and in the middle of an operation): every operation is a
 *   ConnectionError, never a miss or a wrong value; a transfer in flight fails (or ends whole) and
 *   leaves nothing half-written; Levels falls back when told to; it all works again after a restart;
 * - a server that hangs (takes connections, answers nothing): each operation fails with a
 *   TimeoutError within about `timeoutMs`, and what was being written is afterwards absent or whole;
 * - a value corrupted at rest: a read is a StorageCorruption (never the bytes, never a miss), it is
 *   never promoted by Levels, the next write replaces it, and Levels heals it from a good copy.
 *
 * What a location's test file gives (the lake transports too: SFTP and SCP stop sshd and kill its
 * sessions, and hang behind test/servers/fault-proxy.ts; Nginx likewise, read-only: with
 * `readOnly` and `seed` the faults hit read, readBytes, has and contents, and the writes are left out):
 * - `create`: a fresh location on the server (a new prefix or folder each call), with `timeoutMs`
 *   short (a second or two) and few quick retries, e.g. `retry: { attempts: 2, baseDelayMs: 50 }`.
 * - `stop` / `start`: crash the server (open connections cut) and bring it back on the same address.
 *   `keepsValues: false` when it comes back empty (a Redis without persistence).
 * - `hang` / `resume`: freeze it (SIGSTOP, or test/servers/fault-proxy.ts for a server in the test
 *   process) and let it go on.
 * - `corrupt(location, key)`: change the stored bytes of `key` behind the location's back.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectionError, Disk, Level, Levels, type Location, type SkipEvent, type Source, StorageCorruption, TimeoutError, type Value } from '../src/index.js';
import { bytesSource, expectStored, sha256 } from './conformance.js';

export interface FaultOptions {
  name: string;
  /** A fresh location on the server, its `timeoutMs` short and its retries few. */
  create: () => Location | Promise<Location>;
  /** The `timeoutMs` the locations of `create` have. */
  timeoutMs: number;
  /** Stops the server as a crash does: open connections are cut, new ones refused. */
  stop: () => Promise<void>;
  /** Serves again on the same address. */
  start: () => Promise<void>;
  /** The server holds its values again after `start`. @default true */
  keepsValues?: boolean;
  /** Freezes the server: connections are taken, nothing is answered. */
  hang: () => void | Promise<void>;
  resume: () => void | Promise<void>;
  /** Changes the stored bytes of `key` behind the location's back. */
  corrupt: (location: Location, key: string) => Promise<void>;
  /** Called with every location `create` made, once its test is done. */
  destroy?: (location: Location) => void | Promise<void>;
  /** Writes are declined: values are put in place with `seed`, and the write checks are left out. */
  readOnly?: boolean;
  seed?: (location: Location, key: string, bytes: Buffer) => Promise<void>;
  /** The location keeps labels. @default true */
  labels?: boolean;
  /** Size of the value in flight when the server stops. @default 12 MiB */
  largeSize?: number;
}

/** The error of `action`, which must fail: a result is turned into an error that says what came back. */
async function failure(action: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await action().then(
    (result) => new Error(`expected a failure, got ${result === null ? 'null (a miss)' : typeof result}`),
    (caught: unknown) => caught,
  );
  return { error, ms: Date.now() - started };
}

/** Bytes of a stream, all of them or its error. */
async function drain(stream: Readable, afterFirst?: () => Promise<void>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) {
    if (parts.length === 0 && afterFirst) await afterFirst();
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts);
}

/** A source of unknown size, in 256 KiB chunks, that calls `atHalf` (and waits for it) when half of it was taken. */
function slowSource(bytes: Buffer, atHalf: () => Promise<void>): Source {
  const chunk = 256 * 1024;
  return {
    size: null,
    path: null,
    verified: false,
    bytes: async () => bytes,
    stream: () =>
      Readable.from(
        (async function* () {
          for (let at = 0; at < bytes.length; at += chunk) {
            if (at >= bytes.length / 2 && at < bytes.length / 2 + chunk) await atHalf();
            yield bytes.subarray(at, at + chunk);
          }
        })(),
      ),
  };
}

/** Retries `probe` until it answers, for a server that is coming back (a client reconnects with a delay). */
async function eventually<T>(probe: () => Promise<T>, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export function locationFaults(options: FaultOptions): void {
  const { timeoutMs } = options;
  const keepsValues = options.keepsValues ?? true;
  const keepsLabels = options.labels ?? true;
  const writable = !options.readOnly;
  // a refused connection fails at once, but retries and a loaded machine add up
  const connectionLimitMs = 3 * timeoutMs + 5000;
  // a deadline fires at timeoutMs; the slack is for a loaded machine, not for a second attempt
  const timeoutLimitMs = timeoutMs + Math.max(3000, timeoutMs);
  const folders: string[] = [];
  const made: Location[] = [];

  const create = async (): Promise<Location> => {
    const location = await options.create();
    made.push(location);
    return location;
  };
  const disk = (): Disk => {
    const folder = mkdtempSync(join(tmpdir(), 'cairn-faults-'));
    folders.push(folder);
    return new Disk(folder);
  };
  const put = async (location: Location, bytes: Buffer, labels?: string[]): Promise<string> => {
    const key = sha256(bytes);
    if (writable) await expectStored(location.write(key, bytesSource(bytes), labels), key, bytes);
    else await options.seed!(location, key, bytes);
    return key;
  };
  const expectConnectionError = async (what: string, action: () => Promise<unknown>): Promise<void> => {
    const { error, ms } = await failure(action);
    expect(error, what).toBeInstanceOf(ConnectionError);
    expect(ms, what).toBeLessThan(connectionLimitMs);
  };
  const expectTimeout = async (what: string, action: () => Promise<unknown>): Promise<void> => {
    const { error, ms } = await failure(action);
    expect(error, what).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs, what).toBe(timeoutMs);
    expect(ms, what).toBeLessThan(timeoutLimitMs);
  };
  /** After the server is back: the value of `key` is exactly `bytes`, or (a server that comes back empty) a miss. */
  const expectWholeOrGone = async (location: Location, key: string, bytes: Buffer, mayBeGone: boolean): Promise<void> => {
    const found = await eventually(() => location.readBytes?.(key) ?? location.read(key).then((value) => value?.bytes() ?? null));
    if (found === null) expect(mayBeGone, `${key} is gone`).toBe(true);
    else expect(found.equals(bytes), 'the value read after the fault is whole').toBe(true);
  };

  describe(`Location faults: ${options.name}`, () => {
    afterAll(async () => {
      for (const location of made) await options.destroy?.(location);
      for (const folder of folders) rmSync(folder, { recursive: true, force: true });
    });

    it('a stopped server: every operation is a ConnectionError, Levels falls back when told to, and all works again after a restart', async () => {
      const location = await create();
      const bytes = randomBytes(3000);
      const key = await put(location, bytes);
      const below = disk();
      await below.write(key, bytesSource(bytes));
      await options.stop();
      try {
        await expectConnectionError('read', () => location.read(key));
        if (location.readBytes) await expectConnectionError('readBytes', () => location.readBytes!(key));
        if (location.has) await expectConnectionError('has', () => location.has!(key));
        // a read-only location declines a touch without asking the server
        if (writable) await expectConnectionError('touch', () => location.touch(key));
        await expectConnectionError('contents', async () => {
          for await (const entry of location.contents()) return entry;
          return null;
        });
        if (writable) {
          const other = randomBytes(500);
          await expectConnectionError('write', () => location.write(sha256(other), bytesSource(other)));
        }
        await expectConnectionError('Levels(remote, disk).read', () => new Levels(location, below).read(key));
        // told to skip a failing level, Levels serves the copy below and says why
        const skipping = new Levels(location, below, { skipFailing: true });
        const skips: SkipEvent[] = [];
        skipping.on('skip', (event: SkipEvent) => skips.push(event));
        expect((await (await skipping.read(key))!.bytes()).equals(bytes)).toBe(true);
        expect(skips.map((skip) => [skip.level, skip.operation, skip.key])).toContainEqual([location.name, 'read', key]);
        expect(skips.every((skip) => skip.error instanceof ConnectionError)).toBe(true);
        // with nothing below, the skipped level is a miss, reported once
        const alone = new Levels(disk(), location, { skipFailing: true });
        const aloneSkips: SkipEvent[] = [];
        alone.on('skip', (event: SkipEvent) => aloneSkips.push(event));
        expect(await alone.read(key)).toBeNull();
        expect(aloneSkips.map((skip) => [skip.level, skip.operation, skip.error instanceof ConnectionError])).toEqual([[location.name, 'read', true]]);
      } finally {
        await options.start();
      }
      // the same location reconnects by itself
      const back = await eventually(() => location.read(key));
      if (keepsValues) expect((await back!.bytes()).equals(bytes)).toBe(true);
      else expect(back).toBeNull();
      // a write after the restart is stored (put reads it back)
      if (writable) await put(location, randomBytes(2000));
    });

    it('a server stopped in the middle of a transfer: the transfer fails with a ConnectionError or ends whole, and leaves nothing half-written', async () => {
      const large = options.largeSize ?? 12 * 1024 * 1024;
      const location = await create();
      const stored = randomBytes(large);
      const key = await put(location, stored);
      // a read: the server stops once the first bytes have arrived
      const value = await location.read(key);
      expect(value).not.toBeNull();
      const read = await drain(value!.stream(), () => options.stop()).then(
        (bytes) => bytes,
        (error: unknown) => error,
      );
      try {
        if (Buffer.isBuffer(read)) expect(read.equals(stored), 'a read that ended is whole').toBe(true);
        else expect(read, 'a read cut by the stop').toBeInstanceOf(ConnectionError);
      } finally {
        await options.start();
      }
      if (!writable) return;
      // a write: the server stops when half of the value has been taken from the source
      const written = randomBytes(large);
      const writtenKey = sha256(written);
      await eventually(() => location.read(sha256(Buffer.from('is the server back?'))));
      const outcome = await location.write(writtenKey, slowSource(written, () => options.stop())).then(
        (result) => result,
        (error: unknown) => error,
      );
      try {
        if (outcome instanceof Error) expect(outcome, 'a write cut by the stop').toBeInstanceOf(ConnectionError);
        else await expectStored(outcome as Value | null, writtenKey, written);
      } finally {
        await options.start();
      }
      await expectWholeOrGone(location, writtenKey, written, true);
    });

    it('a hung server: each operation is a TimeoutError within timeoutMs, and what was being written is afterwards absent or whole', async () => {
      const location = await create();
      const bytes = randomBytes(3000);
      const key = await put(location, bytes);
      const pending = randomBytes(4000);
      const pendingKey = sha256(pending);
      // a location that connects while the server hangs
      const fresh = await create();
      await options.hang();
      try {
        await expectTimeout('read', () => location.read(key).then((value) => value?.bytes() ?? null));
        if (location.has) await expectTimeout('has', () => location.has!(key));
        if (writable) await expectTimeout('write', () => location.write(pendingKey, bytesSource(pending)));
        await expectTimeout('read by a new location', () => fresh.read(key).then((value) => value?.bytes() ?? null));
      } finally {
        await options.resume();
      }
      const back = await eventually(() => location.read(key));
      expect((await back!.bytes()).equals(bytes)).toBe(true);
      if (writable) await expectWholeOrGone(location, pendingKey, pending, true);
    });

    it('a value corrupted at rest: a read is a StorageCorruption, it is never promoted, the next write replaces it and Levels heals it', async () => {
      const location = await create();
      const bytes = randomBytes(20_000);
      const key = await put(location, bytes, keepsLabels ? ['first'] : undefined);
      await options.corrupt(location, key);
      const bytesRead = await failure(async () => (await location.read(key))?.bytes() ?? null);
      expect(bytesRead.error).toBeInstanceOf(StorageCorruption);
      const streamed = await failure(async () => {
        const value = await location.read(key);
        return value === null ? null : drain(value.stream());
      });
      expect(streamed.error).toBeInstanceOf(StorageCorruption);
      if (location.readBytes) expect((await failure(() => location.readBytes!(key))).error).toBeInstanceOf(StorageCorruption);

      // never promoted: a failed read, or with skipFailing a reported miss, and nothing copied up
      const local = disk();
      expect((await failure(() => new Levels(local, location).read(key).then((value) => value?.bytes() ?? null))).error).toBeInstanceOf(StorageCorruption);
      expect((await failure(() => new Levels(local, location).readBytes(key))).error).toBeInstanceOf(StorageCorruption);
      const reading = new Levels(local, location, { skipFailing: true });
      const readSkips: SkipEvent[] = [];
      reading.on('skip', (event: SkipEvent) => readSkips.push(event));
      expect(await reading.read(key)).toBeNull();
      expect(readSkips.map((skip) => [skip.level, skip.operation, skip.error instanceof StorageCorruption])).toEqual([[location.name, 'read', true]]);
      const skipping = new Levels(local, location, { skipFailing: true });
      const skips: SkipEvent[] = [];
      skipping.on('skip', (event: SkipEvent) => skips.push(event));
      expect(await skipping.readBytes(key)).toBeNull();
      expect(skips.map((skip) => [skip.level, skip.error instanceof StorageCorruption])).toEqual([[location.name, true]]);
      expect(await local.read(key)).toBeNull();
      if (!writable) return;

      // the next write replaces the bad copy (its labels kept)
      await expectStored(location.write(key, bytesSource(bytes), keepsLabels ? ['second'] : undefined), key, bytes);
      expect((await (await location.read(key))!.bytes()).equals(bytes)).toBe(true);
      if (keepsLabels) expect((await (await location.read(key))!.labels())!.sort()).toEqual(['first', 'second']);

      // Levels with skipFailing serves the good copy below and heals the level above
      await options.corrupt(location, key);
      const good = disk();
      await good.write(key, bytesSource(bytes));
      const healing = new Levels(new Level(location, { name: 'remote' }), good, { skipFailing: true });
      expect((await healing.readBytes(key))!.equals(bytes)).toBe(true);
      expect((await (await location.read(key))!.bytes()).equals(bytes)).toBe(true);
      await options.corrupt(location, key);
      expect((await (await healing.read(key))!.bytes()).equals(bytes)).toBe(true);
      expect((await (await location.read(key))!.bytes()).equals(bytes)).toBe(true);
    });
  });
}

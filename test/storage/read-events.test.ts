import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage, Memory, NotFoundError, StorageCorruption, type Progress } from '../../src/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const MB = 1024 * 1024;
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Every Progress is copied: the callback may be handed the same object again. */
const recorder = () => {
  const events: Progress[] = [];
  return { events, onProgress: (progress: Progress) => events.push({ ...progress }) };
};

const growing = (events: Progress[]) => events.every((event, i) => i === 0 || event.bytes >= events[i - 1]!.bytes);

describe('HashKeyStorage.read with onProgress and signal', () => {
  it('a big value read as a stream reports its bytes as they come, ending with the whole value', async () => {
    const storage = new HashKeyStorage(new Disk(tempDir()));
    const bytes = randomBytes(6 * MB + 5);
    const key = await storage.write(bytes);
    const { events, onProgress } = recorder();
    const streamed = await storage.read(
      key,
      async (value) => {
        const chunks: Buffer[] = [];
        for await (const chunk of value.stream()) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks);
      },
      { onProgress },
    );
    expect(streamed.equals(bytes)).toBe(true);
    expect(events.length).toBeGreaterThan(3);
    expect(growing(events)).toBe(true);
    expect(events.slice(0, -1).every((event) => event.files === 0 && event.totalBytes === bytes.length && event.operation === 'read')).toBe(true);
    expect(events.at(-1)).toEqual({ operation: 'read', files: 1, totalFiles: 1, bytes: bytes.length, totalBytes: bytes.length });
  });

  it('readBytes: a big value in chunks, a small one in one event', async () => {
    const storage = new HashKeyStorage(new Disk(tempDir()));
    const big = randomBytes(3 * MB);
    const small = randomBytes(1000);
    const bigKey = await storage.write(big);
    const smallKey = await storage.write(small);
    const bigEvents = recorder();
    expect((await storage.readBytes(bigKey, { onProgress: bigEvents.onProgress })).equals(big)).toBe(true);
    expect(bigEvents.events.length).toBeGreaterThan(2);
    expect(growing(bigEvents.events)).toBe(true);
    expect(bigEvents.events.at(-1)).toEqual({ operation: 'read', files: 1, totalFiles: 1, bytes: big.length, totalBytes: big.length });
    const smallEvents = recorder();
    expect((await storage.readBytes(smallKey, { onProgress: smallEvents.onProgress })).equals(small)).toBe(true);
    expect(smallEvents.events).toEqual([{ operation: 'read', files: 1, totalFiles: 1, bytes: 1000, totalBytes: 1000 }]);
  });

  it('an abort halfway through a stream ends it with the reason; the partial copy and the lake have no temp file left', async () => {
    const root = tempDir();
    const out = tempDir();
    const storage = new HashKeyStorage(new Disk(root));
    const bytes = randomBytes(8 * MB);
    const key = await storage.write(bytes);
    const stop = new AbortController();
    const target = join(out, 'copy.bin');
    const read = storage.read(
      key,
      async (value) => {
        try {
          await pipeline(value.stream(), createWriteStream(target));
        } catch (error) {
          // the caller's own partial file is the caller's to remove, as `cairn read -o` does
          await import('node:fs/promises').then((fs) => fs.rm(target, { force: true }));
          throw error;
        }
      },
      {
        signal: stop.signal,
        onProgress: (progress) => {
          if (progress.bytes >= 2 * MB) stop.abort();
        },
      },
    );
    await expect(read).rejects.toMatchObject({ name: 'AbortError' });
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
    // the stored value is untouched
    expect(sha(await storage.readBytes(key))).toBe(key);
  });

  it('aborted reads, and readers that stop early, leave no file of the lake open', async () => {
    const root = tempDir();
    const storage = new HashKeyStorage(new Disk(root));
    const key = await storage.write(randomBytes(4 * MB));
    const blob = new Disk(root).pathOf(key);
    // the descriptors of this process that are open on the blob's file (Linux: /proc/self/fd)
    const openOnBlob = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(join('/proc/self/fd', fd)) === blob;
        } catch {
          return false; // closed while listed
        }
      }).length;
    for (let i = 0; i < 5; i++) {
      const stop = new AbortController();
      const read = storage.read(
        key,
        async (value) => {
          for await (const _chunk of value.stream()) stop.abort();
        },
        { signal: stop.signal },
      );
      await expect(read).rejects.toMatchObject({ name: 'AbortError' });
      await storage.read(key, async (value) => {
        for await (const _chunk of value.stream()) break;
      });
    }
    // a destroyed stream closes its file on a later turn of the event loop
    for (let wait = 0; wait < 50 && openOnBlob() > 0; wait++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(openOnBlob()).toBe(0);
  });

  it('an abort during a read through a remote leaves no temp file in local, and what was copied there is whole', async () => {
    const localRoot = tempDir();
    const remote = new HashKeyStorage(new Disk(tempDir()));
    const bytes = randomBytes(4 * MB);
    const key = await remote.write(bytes);
    const storage = new HashKeyStorage(new Disk(localRoot), { remote: remote.local });
    const stop = new AbortController();
    const read = storage.readBytes(key, {
      signal: stop.signal,
      onProgress: (progress) => {
        if (progress.bytes >= MB) stop.abort(new Error('the user closed the window'));
      },
    });
    await expect(read).rejects.toThrow('the user closed the window');
    expect(readdirSync(join(localRoot, '.tmp'))).toEqual([]);
    expect(sha(await new Disk(localRoot).readBytes(key) ?? Buffer.alloc(0))).toBe(key);
  });

  it('a signal aborted before the read: rejected with its reason, fn never called, a miss is still a miss first', async () => {
    const storage = new HashKeyStorage(new Memory());
    const key = await storage.write(Buffer.from('x'));
    let called = false;
    await expect(
      storage.read(key, () => (called = true), { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    await expect(storage.readBytes(key, { signal: AbortSignal.abort('stop') })).rejects.toBe('stop');
    expect(called).toBe(false);
    // not aborted: a signal changes nothing else
    const live = new AbortController();
    expect((await storage.readBytes(key, { signal: live.signal })).toString()).toBe('x');
    await expect(storage.readBytes('b'.repeat(64), { signal: live.signal })).rejects.toBeInstanceOf(NotFoundError);
    expect(await storage.readBytes('b'.repeat(64), { signal: live.signal, error: false })).toBeNull();
  });

  it('a corrupted value read with onProgress still fails as StorageCorruption, never as a short value', async () => {
    const root = tempDir();
    const storage = new HashKeyStorage(new Disk(root));
    const bytes = randomBytes(2 * MB);
    const key = await storage.write(bytes);
    const path = new Disk(root).pathOf(key);
    chmodSync(path, 0o644);
    const bad = Buffer.from(bytes);
    bad[MB] ^= 1;
    writeFileSync(path, bad);
    const { events, onProgress } = recorder();
    await expect(storage.readBytes(key, { onProgress })).rejects.toBeInstanceOf(StorageCorruption);
    expect(events.some((event) => event.files === 1)).toBe(false);
  });
});

import { randomBytes, createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import type { Progress } from '../../src/storage/maintenance/progress.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('HashKeyStorage.write with onProgress and signal', () => {
  it('a big file reports its bytes as they are stored, ending with the whole file', async () => {
    const dir = tempDir();
    const bytes = randomBytes(5 * 1024 * 1024);
    writeFileSync(join(dir, 'big.bin'), bytes);
    const storage = new HashKeyStorage(new Disk(join(dir, 'lake')));
    const events: Progress[] = [];
    const key = await storage.write(join(dir, 'big.bin'), { onProgress: (progress) => events.push({ ...progress }) });
    expect(key).toBe(sha(bytes));
    expect(events.length).toBeGreaterThan(2);
    expect(events.every((event, i) => i === 0 || event.bytes >= events[i - 1]!.bytes)).toBe(true);
    expect(events.at(-1)).toEqual({ operation: 'write', files: 1, totalFiles: 1, bytes: bytes.length, totalBytes: bytes.length });
    expect(events[0]!.totalBytes).toBe(bytes.length);
    expect((await storage.readBytes(key!))!.equals(bytes)).toBe(true);
  });

  it('a stream aborted halfway: rejected with the reason, nothing stored, no temp file left', async () => {
    const root = tempDir();
    const storage = new HashKeyStorage(new Disk(root));
    const stop = new AbortController();
    const chunks = Array.from({ length: 40 }, () => randomBytes(64 * 1024));
    const write = storage.write(Readable.from(chunks), {
      signal: stop.signal,
      onProgress: (progress) => {
        expect(progress.totalBytes).toBeNull(); // a stream's size is not known before it ends
        if (progress.bytes >= 10 * 64 * 1024) stop.abort();
      },
    });
    await expect(write).rejects.toMatchObject({ name: 'AbortError' });
    expect(await storage.has(sha(Buffer.concat(chunks)))).toBe(false);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
    await expect(storage.write(Buffer.from('x'), { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

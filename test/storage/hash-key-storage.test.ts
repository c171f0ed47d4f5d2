import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Disk,
  Fanout,
  HashKeyStorage,
  InvalidKeyError,
  InvalidValueError,
  Levels,
  Memory,
  NotFoundError,
  Small,
  WriteError,
} from '../../src/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('HashKeyStorage', () => {
  it('writes bytes, files, Readables and async iterables; the key is the sha256 of the bytes', async () => {
    const storage = new HashKeyStorage(tempDir());
    const bytes = randomBytes(3 * 1024 * 1024 + 1);
    const file = join(tempDir(), 'scan-001.bin');
    writeFileSync(file, bytes);
    const small = join(tempDir(), 'small.bin');
    writeFileSync(small, bytes.subarray(0, 100));
    async function* chunks() {
      for (let i = 0; i < bytes.length; i += 100_000) yield bytes.subarray(i, i + 100_000);
    }
    expect(await storage.write(bytes)).toBe(sha(bytes));
    expect(await storage.write(file)).toBe(sha(bytes));
    expect(await storage.write(small)).toBe(sha(bytes.subarray(0, 100)));
    expect(await storage.write(Readable.from(chunks()))).toBe(sha(bytes));
    expect(await storage.write(chunks())).toBe(sha(bytes));
    expect(await storage.write(new Uint16Array([1, 2, 3]))).toBe(sha(Buffer.from(new Uint16Array([1, 2, 3]).buffer)));
    expect((await storage.readBytes(sha(bytes)))!.equals(bytes)).toBe(true);
  });

  it('leaves no staged or temp file behind, also when a stream fails halfway', async () => {
    const root = tempDir();
    const storage = new HashKeyStorage(root);
    await storage.write(Readable.from([randomBytes(2_000_000), randomBytes(2_000_000)]));
    async function* failing() {
      yield randomBytes(100_000);
      throw new Error('camera unplugged');
    }
    await expect(storage.write(failing())).rejects.toThrow('camera unplugged');
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });

  it('reads through a callback with path, bytes() and stream()', async () => {
    const storage = new HashKeyStorage(tempDir());
    const bytes = randomBytes(5000);
    const key = (await storage.write(bytes))!;
    const result = await storage.read(key, async (value) => {
      const streamed: Buffer[] = [];
      for await (const chunk of value.stream()) streamed.push(chunk as Buffer);
      return { path: value.path, bytes: await value.bytes(), streamed: Buffer.concat(streamed) };
    });
    expect(result!.path).toMatch(new RegExp(`${key.slice(0, 2)}/${key.slice(2)}$`));
    expect(result!.bytes.equals(bytes)).toBe(true);
    expect(result!.streamed.equals(bytes)).toBe(true);
  });

  it('throws NotFoundError for a missing key, or gives null with error: false', async () => {
    const storage = new HashKeyStorage(new Memory());
    const missing = sha(Buffer.from('never written'));
    await expect(storage.readBytes(missing)).rejects.toBeInstanceOf(NotFoundError);
    await expect(storage.read(missing, () => 1)).rejects.toMatchObject({ name: 'NotFoundError', code: 'ERR_NOT_FOUND', key: missing });
    expect(await storage.readBytes(missing, { error: false })).toBeNull();
    expect(await new HashKeyStorage(new Memory(), { error: false }).read(missing, () => 1)).toBeNull();
  });

  it('rejects bad keys and bad values with typed errors', async () => {
    const storage = new HashKeyStorage(new Memory());
    await expect(storage.readBytes('../../etc/passwd')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(storage.has('ABC')).rejects.toMatchObject({ code: 'ERR_INVALID_KEY' });
    await expect(storage.write(42 as never)).rejects.toBeInstanceOf(InvalidValueError);
    await expect(storage.write('/no/such/file')).rejects.toBeInstanceOf(InvalidValueError);
    await expect(storage.write(tempDir())).rejects.toThrow(/not a regular file/);
  });

  it('throws WriteError when no location accepts the value, or gives null with error: false', async () => {
    const storage = new HashKeyStorage(new Small(new Memory(), { maxSize: 10 }));
    await expect(storage.write(randomBytes(11))).rejects.toBeInstanceOf(WriteError);
    expect(await storage.write(randomBytes(11), { error: false })).toBeNull();
  });

  it('keeps labels per key and lists them with last use in contents()', async () => {
    const storage = new HashKeyStorage(tempDir(), { labels: ['lab'] });
    const a = (await storage.write(Buffer.from('a'), { labels: ['raw', 'ct'] }))!;
    const b = (await storage.write(Buffer.from('b')))!;
    const seen = new Map<string, { labels: string[] | null; lastUsed: Date | null }>();
    for await (const { key, meta } of storage.contents()) seen.set(key, meta);
    expect([...seen.keys()].sort()).toEqual([a, b].sort());
    expect(seen.get(a)!.labels!.sort()).toEqual(['ct', 'lab', 'raw']);
    expect(seen.get(b)!.labels).toEqual(['lab']);
    expect(seen.get(a)!.lastUsed).toBeInstanceOf(Date);
  });

  it('has() and delete()', async () => {
    const storage = new HashKeyStorage(new Memory());
    const key = (await storage.write(Buffer.from('x')))!;
    expect(await storage.has(key)).toBe(true);
    expect(await storage.delete(key)).toBe(true);
    expect(await storage.has(key)).toBe(false);
    expect(await storage.delete(key)).toBe(false);
  });

  it('reads from remote and copies into local (fetch), unless fetch is off', async () => {
    const remoteDisk = new Disk(tempDir());
    const remote = new HashKeyStorage(remoteDisk);
    const keys = [(await remote.write(randomBytes(100)))!, (await remote.write(randomBytes(200)))!];
    const missing = sha(Buffer.from('nowhere'));
    const local = new Memory();
    const noFetch = new HashKeyStorage(local, { remote: remoteDisk, fetch: false });
    expect(await noFetch.readBytes(keys[0]!, { error: false })).toBeNull();
    const storage = new HashKeyStorage(local, { remote: remoteDisk });
    const results: [string, boolean][] = [];
    for await (const result of storage.fetch([...keys, missing])) results.push(result);
    expect(results).toEqual([[keys[0], true], [keys[1], true], [missing, false]]);
    expect(await local.read(keys[1]!)).not.toBeNull();
    expect(await storage.has(keys[0]!)).toBe(true);
  });

  it('accepts an array as a Fanout and a folder string as a Disk', async () => {
    const first = tempDir();
    const second = tempDir();
    const storage = new HashKeyStorage([new Disk(first, { maxSize: 150 }), second]);
    expect(storage.local).toBeInstanceOf(Fanout);
    const a = (await storage.write(randomBytes(100)))!;
    const b = (await storage.write(randomBytes(100)))!;
    expect(await new Disk(first).read(a)).not.toBeNull();
    expect(await new Disk(second).read(b)).not.toBeNull();
  });

  it('works over the composition from tarn’s README: Levels(Level(Memory, write false), Level(Disk, write false), Disk)', async () => {
    const { Level } = await import('../../src/index.js');
    const memory = new Memory({ maxSize: '2MB' });
    const ssd = new Disk(tempDir());
    const nfs = new Disk(tempDir());
    const storage = new HashKeyStorage(new Levels(new Level(memory, { write: false }), new Level(ssd, { write: false }), nfs));
    const bytes = randomBytes(4096);
    const key = (await storage.write(bytes))!;
    expect(await memory.read(key)).toBeNull();
    expect(await ssd.read(key)).toBeNull();
    expect((await storage.readBytes(key))!.equals(bytes)).toBe(true);
    expect((await memory.readBytes(key))!.equals(bytes)).toBe(true);
    expect((await ssd.readBytes(key))!.equals(bytes)).toBe(true);
  });
});

/**
 * The conformance suite every Location passes: leaf locations and compositions alike.
 * A location's test file calls `locationConformance({ name, create, ... })` with switches for
 * what it cannot do (read-only, no labels, no usage times).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Location, Source, Value } from '../src/index.js';
import { InvalidKeyError, StorageCorruption } from '../src/index.js';

export interface ConformanceOptions {
  name: string;
  /** A fresh, empty location. */
  create: () => Location | Promise<Location>;
  /** Called after the suite (close connections, remove folders). */
  destroy?: (location: Location) => Promise<void> | void;
  /** Writes are declined; values are put in place with `seed` instead. */
  readOnly?: boolean;
  /** Puts a value into a read-only location from outside (for Nginx: write into the lake it serves). */
  seed?: (key: string, bytes: Buffer, labels?: string[]) => Promise<void>;
  /** The location keeps labels. @default true */
  labels?: boolean;
  /** The location keeps last-used times. @default true */
  usage?: boolean;
  /** The location lists its contents. @default true */
  contents?: boolean;
  /** Largest value it takes (Small). @default no limit */
  maxValueSize?: number;
  /** Changes the stored bytes of `key` behind the location's back, to check reads detect it. */
  corrupt?: (location: Location, key: string) => Promise<void>;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A source as HashKeyStorage hands it to a location. */
export function bytesSource(bytes: Buffer, verified = true): Source {
  return { size: bytes.length, path: null, verified, stream: () => Readable.from([bytes]), bytes: async () => bytes };
}

/** A source whose size is unknown and which arrives in chunks, as a copy from a remote does. */
export function streamSource(bytes: Buffer, verified = false, chunk = 64 * 1024): Source {
  const chunks = () => {
    const list: Buffer[] = [];
    for (let offset = 0; offset < bytes.length; offset += chunk) list.push(bytes.subarray(offset, offset + chunk));
    return list;
  };
  return {
    size: null,
    path: null,
    verified,
    stream: () => Readable.from(chunks()),
    bytes: async () => Buffer.from(bytes),
  };
}

/**
 * Checks what a location's write returned: the stored value of `key` (its key, its bytes hashing
 * to the key, and `bytes` when given), not just "something". Returns it.
 */
export async function expectStored(written: Promise<Value | null> | Value | null, key: string, bytes?: Buffer): Promise<Value> {
  const value = await written;
  expect(value).not.toBeNull();
  expect(value!.key).toBe(key);
  const stored = await value!.bytes();
  expect(sha256(stored)).toBe(key);
  if (bytes !== undefined) expect(stored.equals(bytes)).toBe(true);
  if (value!.size !== null) expect(value!.size).toBe(stored.length);
  return value!;
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

export function locationConformance(options: ConformanceOptions): void {
  const keepsLabels = options.labels ?? true;
  const keepsUsage = options.usage ?? true;
  const lists = options.contents ?? true;
  const maxValue = options.maxValueSize ?? Infinity;

  describe(`Location conformance: ${options.name}`, () => {
    let location: Location;

    beforeAll(async () => {
      location = await options.create();
    });
    afterAll(async () => {
      if (location) await options.destroy?.(location);
    });

    /** Stores `bytes` through the location (or seeds it, when read-only); returns the key. */
    async function put(bytes: Buffer, labels?: string[]): Promise<string> {
      const key = sha256(bytes);
      if (options.readOnly) await options.seed!(key, bytes, labels);
      else await expectStored(location.write(key, bytesSource(bytes), labels), key, bytes);
      return key;
    }

    it('reads a missing key as null, and touch/delete of it report false', async () => {
      const key = sha256(randomBytes(16));
      expect(await location.read(key)).toBeNull();
      if (location.readBytes) expect(await location.readBytes(key)).toBeNull();
      expect(await location.touch(key)).toBe(false);
      expect(await location.delete(key)).toBe(false);
    });

    it('gives back exactly the bytes written, as bytes, stream and readBytes', async () => {
      const bytes = randomBytes(10_000);
      const key = await put(bytes);
      const value = await location.read(key);
      expect(value).not.toBeNull();
      expect(value!.key).toBe(key);
      if (value!.size !== null) expect(value!.size).toBe(bytes.length);
      expect((await value!.bytes()).equals(bytes)).toBe(true);
      expect((await collect(value!.stream())).equals(bytes)).toBe(true);
      if (location.readBytes) expect((await location.readBytes(key))!.equals(bytes)).toBe(true);
    });

    it('stores an empty value', async () => {
      const key = await put(Buffer.alloc(0));
      const value = await location.read(key);
      expect(value).not.toBeNull();
      expect((await value!.bytes()).length).toBe(0);
    });

    it('rejects malformed keys with InvalidKeyError before touching storage', async () => {
      const bad = ['../../etc/passwd', 'AB'.repeat(32), 'abc', sha256(Buffer.from('x')) + '0', ''];
      for (const key of bad) {
        await expect(location.read(key)).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(location.write(key, bytesSource(Buffer.from('x')))).rejects.toBeInstanceOf(InvalidKeyError);
        await expect(location.delete(key)).rejects.toBeInstanceOf(InvalidKeyError);
      }
    });

    it('answers readBatch with every key once, null for a miss', async () => {
      const stored = [await put(randomBytes(100)), await put(randomBytes(200))];
      const missing = sha256(randomBytes(8));
      const seen = new Map<string, Buffer | null>();
      for await (const [key, value] of location.readBatch([stored[0]!, missing, stored[1]!])) {
        expect(seen.has(key)).toBe(false);
        seen.set(key, value === null ? null : await value.bytes());
      }
      expect(seen.size).toBe(3);
      expect(seen.get(missing)).toBeNull();
      expect(sha256(seen.get(stored[0]!)!)).toBe(stored[0]);
      expect(sha256(seen.get(stored[1]!)!)).toBe(stored[1]);
    });

    if (options.corrupt) {
      it('fails a read of a corrupted value with StorageCorruption, never a wrong value or a miss', async () => {
        const bytes = randomBytes(5000);
        const key = await put(bytes);
        await options.corrupt!(location, key);
        const value = await location.read(key);
        expect(value).not.toBeNull();
        await expect(value!.bytes()).rejects.toBeInstanceOf(StorageCorruption);
        await expect(collect(value!.stream())).rejects.toBeInstanceOf(StorageCorruption);
        if (location.readBytes) await expect(location.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
      });
    }

    if (options.readOnly) {
      it('declines writes and deletes (read-only)', async () => {
        const bytes = randomBytes(64);
        const key = sha256(bytes);
        expect(await location.write(key, bytesSource(bytes))).toBeNull();
        expect(await location.read(key)).toBeNull();
        const seeded = await put(randomBytes(64));
        expect(await location.delete(seeded)).toBe(false);
        expect(await location.read(seeded)).not.toBeNull();
      });
    } else {
      it('writes the same key twice: both succeed, one copy', async () => {
        const bytes = randomBytes(3000);
        const key = sha256(bytes);
        await expectStored(location.write(key, bytesSource(bytes)), key, bytes);
        // the second write finds the value in place: it still returns it
        await expectStored(location.write(key, bytesSource(bytes)), key, bytes);
        expect((await (await location.read(key))!.bytes()).equals(bytes)).toBe(true);
        if (lists) {
          let copies = 0;
          for await (const entry of location.contents()) if (entry.key === key) copies++;
          expect(copies).toBe(1);
        }
      });

      it('takes many concurrent writes of one key: all succeed, the value is intact', async () => {
        const bytes = randomBytes(Math.min(200_000, maxValue));
        const key = sha256(bytes);
        const results = await Promise.all(Array.from({ length: 12 }, () => location.write(key, bytesSource(bytes))));
        for (const result of results) await expectStored(result, key, bytes);
        expect((await (await location.read(key))!.bytes()).equals(bytes)).toBe(true);
      });

      it('copies a stream of unknown size, verifying it against the key', async () => {
        const bytes = randomBytes(Math.min(3 * 1024 * 1024 + 17, maxValue));
        const key = sha256(bytes);
        const written = await expectStored(location.write(key, streamSource(bytes, false)), key, bytes);
        expect(sha256(await collect(written.stream()))).toBe(key);
        const value = await location.read(key);
        expect(sha256(await collect(value!.stream()))).toBe(key);
      });

      it('refuses bytes that do not match the key with StorageCorruption and stores nothing', async () => {
        const bytes = randomBytes(2048);
        const key = sha256(randomBytes(2048));
        await expect(location.write(key, bytesSource(bytes, false))).rejects.toBeInstanceOf(StorageCorruption);
        await expect(location.write(key, streamSource(bytes, false, 512))).rejects.toBeInstanceOf(StorageCorruption);
        expect(await location.read(key)).toBeNull();
      });

      it('deletes: the key reads as missing afterwards and is gone from contents', async () => {
        const key = await put(randomBytes(500));
        expect(await location.delete(key)).toBe(true);
        expect(await location.read(key)).toBeNull();
        expect(await location.delete(key)).toBe(false);
        if (lists) for await (const entry of location.contents()) expect(entry.key).not.toBe(key);
      });

      if (Number.isFinite(maxValue)) {
        it('declines a value larger than its limit, of known or unknown size', async () => {
          const bytes = randomBytes(maxValue + 1);
          const key = sha256(bytes);
          expect(await location.write(key, bytesSource(bytes))).toBeNull();
          expect(await location.write(key, streamSource(bytes, false, 1000))).toBeNull();
          expect(await location.read(key)).toBeNull();
        });
      }
    }

    if (keepsLabels) {
      it('keeps labels per key, as the union of every write', async () => {
        const bytes = randomBytes(300);
        const key = await put(bytes, ['raw', 'ct']);
        const expected = options.readOnly ? ['ct', 'raw'] : ['ct', 'raw', 'train'];
        if (!options.readOnly) {
          // the value a write returns has the stored labels: this write's and the earlier ones'
          const written = await expectStored(location.write(key, bytesSource(bytes), ['ct', 'train']), key, bytes);
          expect([...((await written.labels()) ?? [])].sort()).toEqual(expected);
        }
        const labels = await (await location.read(key))!.labels();
        expect([...(labels ?? [])].sort()).toEqual(expected);
      });
    }

    if (lists) {
      it('lists what it holds in contents(), with size, labels and last use', async () => {
        const a = randomBytes(111);
        const b = randomBytes(222);
        const keyA = await put(a, keepsLabels ? ['listed'] : undefined);
        const keyB = await put(b);
        const found = new Map<string, { size: number | null; labels: string[] | null; lastUsed: Date | null }>();
        for await (const entry of location.contents()) {
          expect(found.has(entry.key)).toBe(false);
          found.set(entry.key, entry.meta);
        }
        expect(found.has(keyA)).toBe(true);
        expect(found.has(keyB)).toBe(true);
        const metaA = found.get(keyA)!;
        if (metaA.size !== null) expect(metaA.size).toBe(111);
        if (keepsLabels) expect(metaA.labels).toContain('listed');
        if (keepsUsage) {
          expect(metaA.lastUsed).toBeInstanceOf(Date);
          expect(Math.abs(Date.now() - metaA.lastUsed!.getTime())).toBeLessThan(10 * 60_000);
        }
      });
    }

    if (keepsUsage && lists && !options.readOnly) {
      it('touch moves the last-used time forward', async () => {
        const key = await put(randomBytes(64));
        const before = await lastUsed(location, key);
        await new Promise((resolve) => setTimeout(resolve, 1100));
        expect(await location.touch(key)).toBe(true);
        const after = await lastUsed(location, key);
        expect(after!.getTime()).toBeGreaterThan(before!.getTime());
      });
    }
  });
}

async function lastUsed(location: Location, key: string): Promise<Date | null> {
  for await (const entry of location.contents()) if (entry.key === key) return entry.meta.lastUsed;
  return null;
}

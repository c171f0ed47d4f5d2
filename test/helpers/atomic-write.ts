import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import { type Location, type Source, StorageCorruption } from '../../src/index.js';
import { bytesSource, sha256, expectStored } from '../conformance.js';

/**
 * Checks that a remote location whose lake lives in `root` (a folder the test can look into)
 * writes atomically: nothing at the final path until the upload is complete, something in .tmp
 * meanwhile, nothing left in .tmp afterwards, and a copy whose bytes do not match leaves nothing.
 */
export async function expectAtomicWrite(location: Location, root: string, size: number): Promise<void> {
  const bytes = randomBytes(size);
  const key = sha256(bytes);
  expect(await location.read(key)).toBeNull(); // also creates the lake
  const final = join(root, key.slice(0, 2), key.slice(2));
  const seenAtFinal: boolean[] = [];
  let tmpSeen = false;
  // a source that pauses after each chunk so the test can look at the server's folder
  const source: Source = {
    size: bytes.length,
    path: null,
    verified: false,
    bytes: async () => bytes,
    stream: () =>
      Readable.from(
        (async function* () {
          for (let offset = 0; offset < bytes.length; offset += 100_000) {
            yield bytes.subarray(offset, offset + 100_000);
            await new Promise((resolve) => setTimeout(resolve, 30));
            seenAtFinal.push(existsSync(final));
            if (readdirSync(join(root, '.tmp')).length > 0) tmpSeen = true;
          }
        })(),
      ),
  };
  await expectStored(location.write(key, source), key);
  expect(seenAtFinal.length).toBe(Math.ceil(size / 100_000));
  expect(seenAtFinal.every((present) => !present)).toBe(true);
  expect(tmpSeen).toBe(true);
  expect(readFileSync(final).equals(bytes)).toBe(true);
  expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  const wrong = sha256(randomBytes(8));
  await expect(location.write(wrong, bytesSource(bytes, false))).rejects.toBeInstanceOf(StorageCorruption);
  expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  expect(existsSync(join(root, wrong.slice(0, 2), wrong.slice(2)))).toBe(false);
  expect(await location.read(wrong)).toBeNull();
}

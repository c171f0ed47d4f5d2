import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDigest, digestBytes, digestStream, hashFile, hashStream, verifyBytes } from '../../src/digest.js';
import { StorageCorruption } from '../../src/errors.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const chunksOf = (bytes: Buffer, size: number): Buffer[] => {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
};

/** Pipes `chunks` through `stream`, collecting what comes out and the error that ends it, if any. */
async function through(chunks: Buffer[], stream: ReturnType<typeof digestStream>): Promise<{ out: Buffer; error: unknown }> {
  const received: Buffer[] = [];
  let error: unknown = null;
  const source = Readable.from(chunks);
  source.pipe(stream);
  try {
    for await (const chunk of stream) received.push(chunk as Buffer);
  } catch (failure) {
    error = failure;
  }
  return { out: Buffer.concat(received), error };
}

describe('digest', () => {
  it('digestBytes, hashStream and hashFile agree with sha256', async () => {
    const bytes = randomBytes(5 * 1024 * 1024 + 3);
    const file = join(tempDir(), 'blob');
    writeFileSync(file, bytes);
    expect(digestBytes(bytes)).toBe(sha(bytes));
    expect(await hashStream(Readable.from(chunksOf(bytes, 65536)))).toBe(sha(bytes));
    expect(await hashFile(file)).toBe(sha(bytes));
    expect(digestBytes(Buffer.alloc(0))).toBe(sha(Buffer.alloc(0)));
  });

  it('verifyBytes and checkDigest throw a StorageCorruption naming the key, the actual digest and the place', () => {
    const bytes = randomBytes(100);
    const wrong = sha(Buffer.from('other'));
    expect(() => verifyBytes(sha(bytes), bytes, 'here')).not.toThrow();
    const error = (() => {
      try {
        verifyBytes(wrong, bytes, 'the test location');
      } catch (failure) {
        return failure as StorageCorruption;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(StorageCorruption);
    expect(error!.code).toBe('ERR_STORAGE_CORRUPTION');
    expect(error!.key).toBe(wrong);
    expect(error!.actual).toBe(sha(bytes));
    expect(error!.message).toContain('the test location');
    expect(() => checkDigest(wrong, sha(bytes), 'x')).toThrow(StorageCorruption);
  });

  it('a stream that expects its key passes every byte of a matching value and records the digest', async () => {
    const bytes = randomBytes(300_000);
    const stream = digestStream({ expect: sha(bytes), where: 'test' });
    const { out, error } = await through(chunksOf(bytes, 10_000), stream);
    expect(error).toBeNull();
    expect(out.equals(bytes)).toBe(true);
    expect(stream.digest).toBe(sha(bytes));
  });

  it('a stream of a wrong value fails before its consumer has every byte: the last chunk is held back', async () => {
    const bytes = randomBytes(300_000);
    const wrong = sha(Buffer.from('not these bytes'));
    const { out, error } = await through(chunksOf(bytes, 10_000), digestStream({ expect: wrong, where: 'test' }));
    expect(error).toBeInstanceOf(StorageCorruption);
    expect((error as StorageCorruption).actual).toBe(sha(bytes));
    // the consumer never saw the last chunk, so it can never hold the whole wrong value
    expect(out.length).toBeLessThanOrEqual(bytes.length - 10_000);
    expect(out.equals(bytes.subarray(0, out.length))).toBe(true);
  });

  it('a one-chunk wrong value gives its consumer nothing', async () => {
    const bytes = randomBytes(1000);
    const { out, error } = await through([bytes], digestStream({ expect: sha(Buffer.from('x')) }));
    expect(error).toBeInstanceOf(StorageCorruption);
    expect(out.length).toBe(0);
  });

  it('without a key the stream only hashes: every byte passes and the digest is known at the end', async () => {
    const bytes = randomBytes(50_000);
    const stream = digestStream();
    expect(stream.digest).toBeNull();
    const { out, error } = await through(chunksOf(bytes, 4096), stream);
    expect(error).toBeNull();
    expect(out.equals(bytes)).toBe(true);
    expect(stream.digest).toBe(sha(bytes));
  });
});

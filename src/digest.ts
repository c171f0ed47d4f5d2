/**
 * The one sha256 primitive of cairn: every write, read, copy and verify checks "the sha256 of the
 * bytes is the key" through this file, so there is one integrity rule and one error for a mismatch.
 *
 * API
 * - `digestBytes(bytes)`: the key of bytes in memory.
 * - `verifyBytes(key, bytes, where)`: throws StorageCorruption unless `bytes` hash to `key`.
 * - `checkDigest(key, actual, where)`: the same for a digest computed elsewhere (a server's `sha256sum`).
 * - `createDigest()`: an incremental hasher (`update(chunk)`, `digest()`), for a loop that hashes
 *   while it writes (a temp file put while hashing).
 * - `digestStream({ expect, where, highWaterMark })`: a pass-through Transform that hashes what
 *   flows through it. With `expect` it holds back the last chunk until the digest matches, and fails
 *   with StorageCorruption instead of passing it: a consumer never gets the whole of a wrong value
 *   (a PUT of known length cannot complete, a file being written never gets its last bytes).
 *   `stream.digest` is the hex digest once the stream has ended (null before).
 * - `hashStream(chunks)`: the digest of everything an async iterable (a Readable) yields.
 * - `hashFile(path)`: the digest of a file, streamed in large chunks.
 */
import * as crypto from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { StorageCorruption } from './errors.js';
import type { Key } from './key.js';

// crypto.hash (Node >= 20.12) hashes in one call, a microsecond faster per small value than createHash
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : null;

/** Files are read in chunks this large: fewer reads through the thread pool. */
const FILE_CHUNK = 4 * 1024 * 1024;

/** The key of some bytes: their sha256 as lowercase hex. */
export function digestBytes(bytes: Uint8Array): Key {
  return oneShot ? oneShot('sha256', bytes, 'hex') : crypto.createHash('sha256').update(bytes).digest('hex');
}

/** Throws StorageCorruption when `actual` (a digest) is not `key`; `where` names the place the bytes came from. */
export function checkDigest(key: Key, actual: string, where: string): void {
  if (actual !== key) throw new StorageCorruption(key, actual, where);
}

/** Throws StorageCorruption when `bytes` do not hash to `key`. */
export function verifyBytes(key: Key, bytes: Uint8Array, where: string): void {
  checkDigest(key, digestBytes(bytes), where);
}

/** An incremental sha256. */
export interface Digest {
  update(chunk: Uint8Array): void;
  /** The hex digest of everything given; call once. */
  digest(): Key;
}

export function createDigest(): Digest {
  const hash = crypto.createHash('sha256');
  return {
    update: (chunk) => void hash.update(chunk),
    digest: () => hash.digest('hex'),
  };
}

export interface DigestStreamOptions {
  /** The key the bytes must hash to; without it the stream only computes the digest. */
  expect?: Key;
  /** Where the bytes come from, for the StorageCorruption message. @default 'a stream' */
  where?: string;
  /** Buffering of the Transform (larger buffers keep the extra stage cheap for big transfers). */
  highWaterMark?: number;
}

/**
 * A pass-through that hashes what flows through it. With `expect`, the last chunk is held back
 * until the end: it is passed on only when the digest matches, else the stream fails with
 * StorageCorruption, so the consumer never sees the complete bytes of a value that is not its key.
 */
export class DigestStream extends Transform {
  /** The hex digest, once the stream has ended; null before. */
  digest: Key | null = null;
  private readonly hash = crypto.createHash('sha256');
  private readonly expect: Key | undefined;
  private readonly where: string;
  private held: Buffer | null = null;

  constructor(options: DigestStreamOptions = {}) {
    super(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark });
    this.expect = options.expect;
    this.where = options.where ?? 'a stream';
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    if (this.expect === undefined) return callback(null, chunk);
    const previous = this.held;
    this.held = chunk;
    callback(null, previous ?? undefined);
  }

  override _flush(callback: TransformCallback): void {
    const actual = this.hash.digest('hex');
    this.digest = actual;
    if (this.expect !== undefined && actual !== this.expect) return callback(new StorageCorruption(this.expect, actual, this.where));
    callback(null, this.held ?? undefined);
    this.held = null;
  }
}

export function digestStream(options: DigestStreamOptions = {}): DigestStream {
  return new DigestStream(options);
}

/** The sha256 of everything `chunks` yields (a Readable is an async iterable of its chunks). */
export async function hashStream(chunks: AsyncIterable<Uint8Array>): Promise<Key> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

/** The sha256 of a file, streamed. */
export function hashFile(path: string): Promise<Key> {
  return hashStream(createReadStream(path, { highWaterMark: FILE_CHUNK }));
}

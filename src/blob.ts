import { createReadStream, promises as fsp } from 'node:fs';
import { Readable, type Transform } from 'node:stream';
import { digestStream, verifyBytes } from './digest.js';
import { LocationError } from './errors.js';
import type { Key } from './key.js';

/** @deprecated import verifyBytes from digest.ts (kept while the lake transports move over) */
export { verifyBytes } from './digest.js';

/**
 * A blob of bytes that can be read any number of times: each `stream()` call starts a new stream,
 * so a wrapper that tries several locations never hands one stream to two writers.
 */
export interface Blob {
  /** Size in bytes, when known without reading. */
  readonly size: number | null;
  /** A local file holding exactly these bytes, when there is one. */
  readonly path: string | null;
  /** A new stream of the bytes. */
  stream(): Readable;
  /** All the bytes in memory. Meant for small values. */
  bytes(): Promise<Buffer>;
}

/** What a location's `read` gives: the bytes of one key. */
export interface Value extends Blob {
  readonly key: Key;
  /** Labels stored with the key, or null when the location keeps none. */
  labels(): Promise<string[] | null>;
}

/** What a location's `write` receives. */
export interface Source extends Blob {
  /**
   * True when the bytes are known to hash to the key (HashKeyStorage computed it).
   * When false (a copy from another location) the writer verifies while it copies.
   */
  readonly verified: boolean;
  /**
   * A staged temporary file that the writer may move into place instead of copying
   * (it belongs to HashKeyStorage, which removes it if nobody took it).
   */
  readonly movable?: boolean;
}

export function bufferBlob(bytes: Buffer): Blob {
  return {
    size: bytes.length,
    path: null,
    stream: () => Readable.from([bytes], { objectMode: false }),
    bytes: async () => bytes,
  };
}

export function fileBlob(path: string, size: number | null): Blob {
  return {
    size,
    path,
    stream: () => createReadStream(path, { highWaterMark: 1024 * 1024 }),
    bytes: () => fsp.readFile(path),
  };
}

export function asSource(blob: Blob, verified: boolean, movable = false): Source {
  return { size: blob.size, path: blob.path, stream: () => blob.stream(), bytes: () => blob.bytes(), verified, movable };
}

/** @deprecated digestStream({ expect: key, where }) from digest.ts (kept while the lake transports move over) */
export function verifyingStream(key: Key, where: string, highWaterMark?: number): Transform {
  return digestStream({ expect: key, where, ...(highWaterMark === undefined ? {} : { highWaterMark }) });
}

/** Reads at most `limit` + 1 bytes: enough to tell whether a value fits under `limit`. */
export async function readUpTo(blob: Blob, limit: number): Promise<Buffer | null> {
  if (blob.size !== null) return blob.size > limit ? null : blob.bytes();
  const chunks: Buffer[] = [];
  let total = 0;
  const stream = blob.stream();
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total > limit) return null;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks, total);
}

/**
 * A Value whose bytes are already in memory (a Redis reply, a SQLite row): checked against the key
 * once, on first use; a stream of a corrupted value fails with the StorageCorruption.
 */
export function inMemoryValue(key: Key, data: Buffer, where: string, labels: () => Promise<string[] | null>): Value {
  let checked = false;
  const verified = (): Buffer => {
    if (!checked) verifyBytes(key, data, where);
    checked = true;
    return data;
  };
  return {
    key,
    size: data.length,
    path: null,
    stream: () => {
      try {
        return Readable.from([verified()], { objectMode: false });
      } catch (error) {
        const failed = new Readable({ read() {} });
        process.nextTick(() => failed.destroy(error as Error));
        return failed;
      }
    },
    bytes: async () => verified(),
    labels,
  };
}

/**
 * A Value read from a place that is not trusted local disk: `stream()` and `bytes()` hash what
 * they give and fail with StorageCorruption on a mismatch. `open` and `fetch` give the raw bytes;
 * `fetch` resolving to null means the value vanished after it was found.
 */
export function verifiedValue(
  key: Key,
  where: string,
  parts: { size: number | null; open: () => Readable; fetch: () => Promise<Buffer | null>; labels: () => Promise<string[] | null> },
): Value {
  return {
    key,
    size: parts.size,
    path: null,
    stream: () => {
      const check = digestStream({ expect: key, where });
      const raw = parts.open();
      raw.on('error', (error) => check.destroy(error));
      check.on('close', () => raw.destroy());
      return raw.pipe(check);
    },
    bytes: async () => {
      const bytes = await parts.fetch();
      if (bytes === null) throw new LocationError(`${where}: ${key} vanished while it was read`, where, { code: 'ERR_VANISHED' });
      verifyBytes(key, bytes, where);
      return bytes;
    },
    labels: parts.labels,
  };
}

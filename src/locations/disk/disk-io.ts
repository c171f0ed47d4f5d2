import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import { StorageCorruption } from '../../errors.js';
import type { Key } from '../../key.js';

const CHUNK = 1024 * 1024;

/** sha256 of a file, streamed. */
export async function hashFile(path: string): Promise<Key> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * CHUNK })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Writes a stream into a new file while hashing it in the same pass: each chunk's write runs in
 * the thread pool while the main thread hashes it. Returns the size and the sha256 of the bytes.
 * The file is created exclusively with `mode`; the caller removes it on failure.
 */
export async function streamToFile(
  path: string,
  mode: number,
  chunks: AsyncIterable<Uint8Array>,
  fsync: boolean,
): Promise<{ size: number; key: Key }> {
  const hash = createHash('sha256');
  const handle = await fsp.open(path, 'wx', mode);
  let size = 0;
  try {
    for await (const chunk of chunks) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const written = writeAll(handle, bytes);
      hash.update(bytes);
      size += bytes.length;
      await written;
    }
    if (fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
  return { size, key: hash.digest('hex') };
}

/**
 * Systems that cannot flush a folder say so with these codes (some network filesystems; Windows
 * cannot open one): their renames are as durable as they get there.
 */
const NO_FOLDER_SYNC = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR']);

/** fsyncs a folder: the names just put in it (a rename into place) then survive a power cut. */
export async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    if (!NO_FOLDER_SYNC.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}

/** streamToFile that also checks the bytes against `expectedKey` (when given). Returns the size. */
export async function writeStreamTo(
  path: string,
  mode: number,
  chunks: AsyncIterable<Uint8Array>,
  options: { expectedKey: Key | null; where: string; fsync: boolean },
): Promise<number> {
  const { size, key } = await streamToFile(path, mode, chunks, options.fsync);
  if (options.expectedKey !== null && key !== options.expectedKey) {
    throw new StorageCorruption(options.expectedKey, key, options.where);
  }
  return size;
}

/** FileHandle.write may write less than asked; this writes everything. */
async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/**
 * A write's input seen through its `onProgress` and `signal` options: bytes are reported as they
 * are read, and an abort stops the reading (the staging then removes its temp file).
 */
import { createReadStream, promises as fsp } from 'node:fs';
import type { ProgressCallback } from './maintenance/progress.js';
import type { WriteInput } from './stage.js';

interface Watch {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

async function* counted(chunks: AsyncIterable<Uint8Array>, totalBytes: number | null, watch: Watch): AsyncIterable<Uint8Array> {
  let bytes = 0;
  for await (const chunk of chunks) {
    watch.signal?.throwIfAborted();
    bytes += chunk.byteLength;
    watch.onProgress?.({ operation: 'write', files: 0, totalFiles: 1, bytes, totalBytes });
    yield chunk;
  }
  watch.signal?.throwIfAborted();
  watch.onProgress?.({ operation: 'write', files: 1, totalFiles: 1, bytes, totalBytes: totalBytes ?? bytes });
}

export async function watched(input: WriteInput, watch: Watch): Promise<WriteInput> {
  if (ArrayBuffer.isView(input) || input instanceof ArrayBuffer) {
    // bytes in memory are hashed at once: one event, when they are
    watch.onProgress?.({ operation: 'write', files: 1, totalFiles: 1, bytes: input.byteLength, totalBytes: input.byteLength });
    return input;
  }
  if (typeof input === 'string') {
    // a path that is not a readable file is left to stage(), which says why
    const stat = await fsp.stat(input).catch(() => null);
    if (stat === null || !stat.isFile()) return input;
    return counted(createReadStream(input), stat.size, watch);
  }
  const iterable = typeof input === 'object' && input !== null && Symbol.asyncIterator in input;
  return iterable ? counted(input, null, watch) : input;
}

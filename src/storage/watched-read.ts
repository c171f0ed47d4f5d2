/**
 * A read's value seen through its `onProgress` and `signal` options: the bytes the caller reads
 * with `stream()` or `bytes()` are reported as they come, and an abort ends that reading with the
 * signal's reason.
 */
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import type { Value } from '../blob.js';
import type { ProgressCallback } from './maintenance/progress.js';

export interface ReadWatch {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/** Values up to this size are read whole by `bytes()` (one event); larger or unknown ones as a stream. */
const READ_WHOLE = 1024 * 1024;

function watchedStream(value: Value, watch: ReadWatch): Readable {
  const { onProgress, signal } = watch;
  const totalBytes = value.size;
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      bytes += chunk.length;
      onProgress?.({ operation: 'read', files: 0, totalFiles: 1, bytes, totalBytes });
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      onProgress?.({ operation: 'read', files: 1, totalFiles: 1, bytes, totalBytes: totalBytes ?? bytes });
      callback();
    },
  });
  const source = value.stream();
  const abort = () => counter.destroy(signal!.reason as Error);
  // a failing source (a corrupted value, a dropped connection) fails the stream the caller holds
  source.on('error', (error) => counter.destroy(error));
  counter.on('close', () => {
    source.destroy();
    signal?.removeEventListener('abort', abort);
  });
  if (signal?.aborted) process.nextTick(abort);
  else signal?.addEventListener('abort', abort, { once: true });
  return source.pipe(counter);
}

async function watchedBytes(value: Value, watch: ReadWatch): Promise<Buffer> {
  watch.signal?.throwIfAborted();
  if (value.size !== null && value.size <= READ_WHOLE) {
    const bytes = await value.bytes();
    watch.signal?.throwIfAborted();
    watch.onProgress?.({ operation: 'read', files: 1, totalFiles: 1, bytes: bytes.length, totalBytes: bytes.length });
    return bytes;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of watchedStream(value, watch)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `value`, with `stream()` and `bytes()` reporting progress and stopping on abort. */
export function watchedValue(value: Value, watch: ReadWatch): Value {
  return {
    key: value.key,
    size: value.size,
    path: value.path,
    labels: () => value.labels(),
    stream: () => watchedStream(value, watch),
    bytes: () => watchedBytes(value, watch),
  };
}

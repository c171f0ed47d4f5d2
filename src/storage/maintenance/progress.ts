/** How far a long operation (verify, gc, migrate) has got. */
export interface Progress {
  operation: 'verify' | 'gc' | 'migrate' | 'du' | 'write' | 'read';
  /** Files (keys) done so far, whatever their outcome. */
  files: number;
  /** Files to do in all, when known. */
  totalFiles: number | null;
  /** Bytes done so far. */
  bytes: number;
  /** Bytes to do in all, when known. */
  totalBytes: number | null;
}

export type ProgressCallback = (progress: Progress) => void;

/**
 * Runs `task` over `items` with at most `jobs` in flight. Once `signal` is aborted no new task
 * starts; those in flight are waited for, then the signal's reason is thrown.
 */
export async function eachLimit<T>(items: readonly T[], jobs: number, task: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !signal?.aborted) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  signal?.throwIfAborted();
}

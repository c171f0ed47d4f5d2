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
 * Runs `task` over `items` (an array, or a stream such as a store's listing, pulled as tasks
 * finish: memory does not grow with its length) with at most `jobs` in flight. Once `signal` is
 * aborted no new task starts; those in flight are waited for, then the signal's reason is thrown.
 */
export async function eachLimit<T>(
  items: Iterable<T> | AsyncIterable<T>,
  jobs: number,
  task: (item: T) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  signal?.throwIfAborted();
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
  let done = false;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (!done && !signal?.aborted && failure === null) {
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (next.done) {
        done = true;
        return;
      }
      try {
        await task(next.value);
      } catch (error) {
        failure ??= { error };
        return;
      }
    }
  };
  try {
    // every worker ends (a failure stops the others pulling): nothing is left running
    await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  } finally {
    // stopped early (abort, a failed task): end the listing
    if (!done) await iterator.return?.();
  }
  if (failure !== null) throw (failure as { error: unknown }).error;
  signal?.throwIfAborted();
}

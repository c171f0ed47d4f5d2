/**
 * Retries with exponential backoff and jitter, for transient network failures.
 *
 * API
 * - `RetryOptions` (`retry: { attempts, baseDelayMs, maxDelayMs }` of every remote location; the
 *   config kind is RETRY_FIELDS in retry-kind.ts).
 * - `backoffMs(retry, options)`: the wait before retry number `retry` (1 for the first retry):
 *   `min(maxDelayMs, baseDelayMs × 2^(retry-1))`, half of it fixed and half random ("equal
 *   jitter"), so a retry never fires at once after a restart and clients that failed together
 *   spread out.
 * - `withRetry(operation, isTransient, options)`: runs `operation(attempt)` until it succeeds, fails
 *   with an error `isTransient` rejects, or has made `attempts` attempts; the last error is thrown.
 *   Remote locations use RemoteCalls (remote-calls.ts), which classifies the errors and calls this.
 */
export interface RetryOptions {
  /** Attempts in all, the first included. @default 3 */
  attempts?: number;
  /** Delay before the second attempt, in ms; doubles each time, with jitter. @default 100 */
  baseDelayMs?: number;
  /** Longest delay between attempts, in ms. @default 2000 */
  maxDelayMs?: number;
}

export function backoffMs(retry: number, options: RetryOptions = {}): number {
  const ceiling = Math.min(options.maxDelayMs ?? 2000, (options.baseDelayMs ?? 100) * 2 ** (retry - 1));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  isTransient: (error: unknown) => boolean,
  options: RetryOptions = {},
  firstAttempt = 1,
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  for (let attempt = firstAttempt; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= attempts || !isTransient(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt, options)));
    }
  }
}

/** Retries with exponential backoff and full jitter, for transient network failures. */
export interface RetryOptions {
  /** Attempts in all, the first included. @default 3 */
  attempts?: number;
  /** Delay before the second attempt, in ms; doubles each time, with jitter. @default 100 */
  baseDelayMs?: number;
  /** Longest delay between attempts, in ms. @default 2000 */
  maxDelayMs?: number;
}

export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  isTransient: (error: unknown) => boolean,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 2000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= attempts || !isTransient(error)) throw error;
      const delay = Math.random() * Math.min(max, base * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

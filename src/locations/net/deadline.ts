/**
 * Deadlines for remote operations: one per attempt of an operation, and one for a whole transfer.
 * A deadline that passes fails with DeadlineExceeded, an untyped marker that RemoteCalls (and
 * `kindOfTyped`) turn into a TimeoutError naming the location and its limit.
 *
 * API
 * - `withDeadline(promise, ms, onExpire?)`: `promise`, or DeadlineExceeded after `ms` (`onExpire`
 *   runs first: drop a stalled connection so nothing keeps waiting on it).
 * - `deadlineSignal(ms)`: an AbortSignal for a client that takes one (the AWS SDK, fetch):
 *   `{ signal, expired, clear() }`; call `clear()` when the attempt settles.
 * - `transferDeadline(stream, ms)`: destroys `stream` with DeadlineExceeded when it has not ended
 *   within `ms`; `{ expired, clear() }`.
 * - `transferBudgetMs(timeoutMs, bytes, bytesPerSecond)`: the time a transfer of `bytes` may take:
 *   the per-operation limit plus the bytes at the slowest rate accepted.
 */
import type { Readable } from 'node:stream';

export class DeadlineExceeded extends Error {
  constructor(
    readonly ms: number,
    options?: { cause?: unknown },
  ) {
    super(`no answer within ${ms} ms`, options);
    this.name = 'DeadlineExceeded';
  }
}

/** Rejects with DeadlineExceeded when `promise` has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, onExpire?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      onExpire?.();
      reject(new DeadlineExceeded(ms));
    }, ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

export interface Deadline {
  /** True once the time ran out. */
  readonly expired: boolean;
  /** Stops the timer (the work settled in time). */
  clear(): void;
}

/** An AbortSignal that aborts with DeadlineExceeded after `ms`. */
export function deadlineSignal(ms: number): Deadline & { readonly signal: AbortSignal } {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DeadlineExceeded(ms)), ms);
  return {
    signal: abort.signal,
    get expired() {
      return abort.signal.aborted;
    },
    clear: () => clearTimeout(timer),
  };
}

/** Destroys `stream` with DeadlineExceeded unless it ends (or fails, or closes) within `ms`. */
export function transferDeadline(stream: Readable, ms: number): Deadline {
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    stream.destroy(new DeadlineExceeded(ms));
  }, ms);
  const clear = () => clearTimeout(timer);
  stream.once('close', clear);
  stream.once('end', clear);
  return {
    get expired() {
      return expired;
    },
    clear,
  };
}

/** The time a transfer of `bytes` may take: the per-operation limit, plus the bytes at `bytesPerSecond`. */
export function transferBudgetMs(timeoutMs: number, bytes: number, bytesPerSecond: number): number {
  return timeoutMs + Math.ceil((bytes / bytesPerSecond) * 1000);
}

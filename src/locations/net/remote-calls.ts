/**
 * The one wrapper every remote operation goes through: the client's errors become typed errors,
 * and transient ones (a dropped connection, a server that says "try later") are retried with
 * backoff. The client only classifies its errors (see failures.ts); it never retries by itself.
 *
 * API
 * - `new RemoteCalls({ name, timeoutMs, retry, classify, transientCode })`: `name` is a function
 *   (a location's name may change once it is connected); `classify` is the client's Classifier;
 *   `transientCode` the code of a transient failure that outlived its retries (ERR_S3_TRANSIENT).
 * - `run(operation, attempt)`: runs `attempt()` (which applies its own deadline: withDeadline,
 *   deadlineSignal, or the client's timeout), types its failure, retries it while transient and
 *   attempts remain. The common path adds nothing but a `.catch` to the attempt's promise.
 * - `runOrNull(operation, attempt)`: the same, with a 'not-found' failure answered as null.
 * - `failure(operation, error)`: the typed error for one error, for failures outside `run` (a
 *   body that breaks while it streams); typed errors pass through unchanged.
 * - `retries(error)`: true when `run` would retry this (typed) error: one this wrapper typed from a
 *   'connection' or 'transient' failure, or a typed ConnectionError (or an error of `transientCode`).
 */
import { CairnError, type CodeOf } from '../../errors.js';
import { DeadlineExceeded } from './deadline.js';
import { type Classifier, kindOfTyped, typedFailure } from './failures.js';
import { backoffMs, type RetryOptions, withRetry } from './retry.js';

export interface RemoteCallsOptions {
  name: () => string;
  /** The per-operation limit, named by a TimeoutError. */
  timeoutMs: number;
  retry: RetryOptions;
  classify: Classifier;
  transientCode?: CodeOf<'LocationError'>;
}

/** Marks a failure the caller asked to see as a miss. */
const MISSING = Symbol('missing');

/**
 * The typed errors made from a transient failure. A code does not always tell (Nginx's 503 and its
 * 400 are both ERR_HTTP), so the classification is remembered with the error it made.
 */
const TRANSIENT = new WeakSet<CairnError>();

export class RemoteCalls {
  constructor(private readonly options: RemoteCallsOptions) {}

  run<T>(operation: string, attempt: () => Promise<T>): Promise<T> {
    return attempt().catch((error: unknown) => this.retried(operation, attempt, this.failure(operation, error)));
  }

  async runOrNull<T>(operation: string, attempt: () => Promise<T>): Promise<T | null> {
    const orMissing = () =>
      attempt().catch((error: unknown) => {
        if (kindOfTyped(error) === null && this.options.classify(error).kind === 'not-found') return MISSING;
        throw error;
      });
    const result = await this.run(operation, orMissing);
    return result === MISSING ? null : (result as T);
  }

  failure(operation: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    const { name, timeoutMs, transientCode, classify } = this.options;
    const context = { where: name(), operation, timeoutMs, ...(transientCode ? { transientCode } : {}) };
    const classified = classify(error);
    // the deadline marker is a timeout whatever else the client says of it (it may add why)
    const typed = typedFailure(context, error instanceof DeadlineExceeded && classified.kind !== 'timeout' ? { kind: 'timeout' } : classified, error);
    if (classified.kind === 'transient' && !(error instanceof DeadlineExceeded)) TRANSIENT.add(typed);
    return typed;
  }

  retries(error: unknown): boolean {
    if (error instanceof CairnError && TRANSIENT.has(error)) return true;
    const kind = kindOfTyped(error, this.options.transientCode);
    return kind === 'connection' || kind === 'transient';
  }

  /** After a first failure (typed already): the retries of a transient one, with backoff. */
  private async retried<T>(operation: string, attempt: () => Promise<T>, error: CairnError): Promise<T> {
    const retry = this.options.retry;
    if ((retry.attempts ?? 3) <= 1 || !this.retries(error)) throw error;
    await new Promise((resolve) => setTimeout(resolve, backoffMs(1, retry)));
    const typedAttempt = () =>
      attempt().catch((failure: unknown) => {
        throw this.failure(operation, failure);
      });
    return withRetry(typedAttempt, (failure) => this.retries(failure), retry, 2);
  }
}

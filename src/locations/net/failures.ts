/**
 * Error classification for remote locations, as restic's backends do it: a client only says what
 * kind of failure one of its errors is; one place (RemoteCalls) turns the kind into cairn's typed
 * error and decides whether to retry.
 *
 * API
 * - `FailureKind`: 'connection' (the server cannot be reached or went away: ConnectionError,
 *   retried), 'timeout' (no answer in time: TimeoutError, not retried, the limit is the user's),
 *   'transient' (the server answered "try later": a LocationError with the client's code, retried),
 *   'auth' (AuthenticationError), 'not-found' (a miss: `RemoteCalls.runOrNull` answers null),
 *   'permanent' (any other failure: LocationError).
 * - `Classified`: a kind, with an optional `detail` (the words after "failed:"), `cause` (when
 *   the useful cause is not the error itself, e.g. the socket error behind "Connection is closed")
 *   and `code` (why, for a LocationError or an AuthenticationError: ERR_NO_SPACE, ERR_HOST_KEY…).
 * - `Classifier`: `(error) => Classified`, what each client writes.
 * - `CONNECTION_CODES`: the socket error codes that mean 'connection', for every client.
 * - `errorCode(error)`: `error.code`, else `error.cause.code`, else ''.
 * - `kindOfTyped(error)`: the kind of an error that is typed already (it passes through unchanged).
 * - `typedFailure(...)`: the CairnError for a classified failure.
 */
import { AuthenticationError, CairnError, ConnectionError, type CodeOf, LocationError, TimeoutError } from '../../errors.js';
import { DeadlineExceeded } from './deadline.js';

export type FailureKind = 'connection' | 'timeout' | 'transient' | 'auth' | 'not-found' | 'permanent';

export interface Classified {
  kind: FailureKind;
  /** What went wrong, for the message; the error's message when absent. */
  detail?: string;
  /** The cause to keep; the error itself when absent. */
  cause?: unknown;
  /** The typed error's code: a LocationError's (ERR_PERMISSION…) or, for 'auth', an AuthenticationError's. */
  code?: CodeOf<'LocationError'> | CodeOf<'AuthenticationError'>;
}

export type Classifier = (error: unknown) => Classified;

/** Socket and HTTP-client codes of a server that cannot be reached or dropped the connection. */
export const CONNECTION_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** The code of an error or of its cause ('' when neither has one). */
export function errorCode(error: unknown): string {
  const details = error as { code?: unknown; cause?: { code?: unknown } } | null | undefined;
  const code = details?.code ?? details?.cause?.code;
  return typeof code === 'string' ? code : '';
}

/** The kind of an error cairn typed already, or of the deadline marker; null for a client's own error. */
export function kindOfTyped(error: unknown, transientCode?: string): FailureKind | null {
  if (error instanceof DeadlineExceeded) return 'timeout';
  if (!(error instanceof CairnError)) return null;
  if (error instanceof ConnectionError) return 'connection';
  if (error instanceof TimeoutError) return 'timeout';
  if (error instanceof AuthenticationError) return 'auth';
  if (transientCode !== undefined && error.code === transientCode) return 'transient';
  return 'permanent';
}

/** Where a failure happened, for its message and its fields. */
export interface FailureContext {
  /** The location's name. */
  where: string;
  /** What was being done ('read', 'write', 'contents'…). */
  operation: string;
  /** The limit a timeout exceeded. */
  timeoutMs: number;
  /** The code of a transient failure after the retries (ERR_S3_TRANSIENT…). */
  transientCode?: CodeOf<'LocationError'>;
}

/** The typed error for a failure the client classified. */
export function typedFailure(context: FailureContext, classified: Classified, error: unknown): CairnError {
  const { where, operation, timeoutMs } = context;
  const cause = classified.cause ?? error;
  const detail = classified.detail ?? messageOf(cause);
  const what = `${operation} on ${where}`;
  switch (classified.kind) {
    case 'connection':
      return new ConnectionError(`Cannot reach ${where} (${operation}): ${detail}`, where, { cause });
    case 'timeout': {
      // a client's own words only: a deadline marker's message would repeat the limit
      const why = classified.detail === undefined ? '' : ` (${classified.detail})`;
      return new TimeoutError(`${what} took more than ${timeoutMs} ms${why}`, where, timeoutMs, { cause });
    }
    case 'auth':
      return new AuthenticationError(`${what} was refused: ${detail}`, where, { cause, ...codeOf<'AuthenticationError'>(classified, AUTH_CODES) });
    case 'transient': {
      const code = classified.code ?? context.transientCode;
      return new LocationError(`${what} failed: ${detail}`, where, { cause, ...codeOf<'LocationError'>({ code }, null) });
    }
    case 'not-found':
    case 'permanent':
      return new LocationError(`${what} failed: ${detail}`, where, { cause, ...codeOf<'LocationError'>(classified, null) });
  }
}

const AUTH_CODES: ReadonlySet<string> = new Set<CodeOf<'AuthenticationError'>>(['ERR_AUTH', 'ERR_HOST_KEY']);

/** `{ code }` when the classified code belongs to the class (`auth`: the codes of AuthenticationError; else any other). */
function codeOf<Class extends 'LocationError' | 'AuthenticationError'>(
  classified: Pick<Classified, 'code'>,
  auth: ReadonlySet<string> | null,
): { code?: CodeOf<Class> } {
  const { code } = classified;
  if (code === undefined) return {};
  const fits = auth === null ? !AUTH_CODES.has(code) : auth.has(code);
  return fits ? { code: code as CodeOf<Class> } : {};
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

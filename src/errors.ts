/**
 * Every error cairn throws is a CairnError: it has a stable `code` to branch on, a `name` that
 * matches its class, and the underlying `cause` when there is one (an fs error, a socket error).
 * A missing key is never an error unless the caller asked for one (NotFoundError); every other
 * failure is an error, never a silent miss.
 *
 * This file lists every class and every code (ERROR_CODES); docs/errors.md is checked against it.
 */

/**
 * Every code a CairnError carries: the classes that carry it, and what it means. A code used
 * anywhere in cairn must be here (the constructors only take these), so this is the whole list.
 */
export const ERROR_CODES = {
  ERR_INVALID_KEY: { classes: ['InvalidKeyError'], meaning: 'A key that is not 64 lowercase hex characters (a sha256 digest).' },
  ERR_INVALID_LABELS: { classes: ['InvalidLabelsError'], meaning: 'Labels that are not a list of strings (a lone string is refused rather than spread into its characters).' },
  ERR_INVALID_VALUE: { classes: ['InvalidValueError'], meaning: 'A value given to `write` that cairn cannot read bytes from.' },
  ERR_NOT_FOUND: { classes: ['NotFoundError'], meaning: 'The key is in no location that was searched (only when a miss was asked to be an error, the default of `read`; with `{ error: false }` a miss is `null`).' },
  ERR_WRITE_DECLINED: { classes: ['WriteError'], meaning: 'No location accepted the value: all were full, read-only or too small for it.' },
  ERR_STORAGE_CORRUPTION: { classes: ['StorageCorruption', 'LocationError'], meaning: 'Stored or transferred bytes do not hash to their key; the copy is never promoted to another level. As a LocationError: a damaged database file (Packed), no key in particular.' },
  ERR_LOCATION: { classes: ['LocationError'], meaning: 'A location could not do what was asked (an I/O or protocol error not listed below); `cause` holds the underlying error.' },
  ERR_NO_SPACE: { classes: ['LocationError'], meaning: 'A full disk or quota (`ENOSPC`, `EDQUOT`, a full SQLite database).' },
  ERR_READ_ONLY: { classes: ['LocationError'], meaning: 'A read-only mount or database (`EROFS`).' },
  ERR_PERMISSION: { classes: ['LocationError'], meaning: 'The process may not read or write there (`EACCES`, `EPERM`).' },
  ERR_VANISHED: { classes: ['LocationError'], meaning: 'A value found a moment before was deleted while it was read (a concurrent delete or gc).' },
  ERR_CLOSED: { classes: ['LocationError'], meaning: 'The location was closed before the call.' },
  ERR_HTTP: { classes: ['LocationError'], meaning: 'Nginx: the server answered an unexpected HTTP status (a redirect, which is never followed, or a 4xx/5xx other than 404, 401 and 403).' },
  ERR_OUTSIDE_LAKE: { classes: ['LocationError'], meaning: 'Nginx: a request would have left the lake URL, and was refused.' },
  ERR_S3_TRANSIENT: { classes: ['LocationError'], meaning: 'S3: a 5xx answer or throttling, after the retries.' },
  ERR_NO_BUCKET: { classes: ['LocationError'], meaning: 'S3: the bucket does not exist.' },
  ERR_REDIS_BUSY: { classes: ['LocationError'], meaning: 'Redis is loading its data or busy running a script; retried, then this error.' },
  ERR_CONNECTION: { classes: ['ConnectionError'], meaning: 'A server could not be reached (connection refused or reset, DNS failure), after the retries.' },
  ERR_TIMEOUT: { classes: ['TimeoutError'], meaning: 'An operation did not finish within its time limit (`timeoutMs`).' },
  ERR_AUTH: { classes: ['AuthenticationError'], meaning: 'The server refused the credentials (a wrong password or key, HTTP 401/403).' },
  ERR_HOST_KEY: { classes: ['AuthenticationError'], meaning: 'SSH: the server\'s host key is unknown or does not match `knownHosts` / `hostKeyFingerprint`.' },
  ERR_CONFIG: { classes: ['ConfigError', 'ConfigFileError'], meaning: 'A bad option, a bad config file (ConfigFileError names its file, line and field), or a config that does not match what is on disk.' },
  ERR_MISSING_DEPENDENCY: { classes: ['MissingDependencyError'], meaning: 'An optional package a location or codec needs is not installed; `package` names it (`npm install <package>`).' },
  ERR_OUT_OF_RESOURCES: { classes: ['OutOfResourcesError'], meaning: 'TierKV: every tier is full; the value was not stored and the store is unchanged.' },
  ERR_UNHASHABLE: { classes: ['UnhashableError'], meaning: 'smartCache: an argument or dependency cannot be turned into a key (a symbol, a Promise…); `path` says where it is.' },
  ERR_UNSTORABLE: { classes: ['UnstorableError'], meaning: 'smartCache: a result cannot be stored as it is (a class instance, a function…); `path` says where it is.' },
  ERR_USAGE: { classes: ['UsageError'], meaning: 'The `cairn` command was called wrongly (an unknown command or option, a missing argument, no lake): exit code 2.' },
} as const satisfies Record<string, { readonly classes: readonly string[]; readonly meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes an error class may carry, from ERROR_CODES. */
export type CodeOf<Class extends string> = {
  [Code in ErrorCode]: Class extends (typeof ERROR_CODES)[Code]['classes'][number] ? Code : never;
}[ErrorCode];

/**
 * Warnings cairn emits (`process.emitWarning`, seen with `process.on('warning')`): something went
 * wrong that does not fail the call.
 */
export const WARNING_CODES = {
  CAIRN_GC_RECOVERY: 'Disk: what a killed gc had moved aside could not be put back at open; the next open tries again.',
  CAIRN_USAGE_MARK: 'Disk: a last-used mark could not be written (the value itself is stored), or the marks\' worker thread failed and the main thread keeps them. S3 (cairn\'s layout): the mark a read queued could not be written (the read gave its value); the message names the key and the failure, `detail` the error\'s class (`AuthenticationError`, `LocationError`…).',
  CAIRN_INDEX_TOUCH: 'smartCache: entries could not be marked as used in the index (their results are still returned).',
  CAIRN_SMARTCACHE_UNTRACKED: 'smartCache: a dependency of the function cannot be tracked, so a change to it will not invalidate the entries.',
  CAIRN_SMARTCACHE_STORE: 'smartCache: a result could not be stored (it is returned all the same).',
  CAIRN_SMARTCACHE_MUTATED: 'smartCache: what the function read changed while it ran; the result is returned but not stored.',
  CAIRN_SMARTCACHE_LISTENER: 'smartCache: a listener of its events threw; the call it reported on is unaffected.',
  CAIRN_CHECKPOINT: 'Packed and TierKV: the worker thread that checkpoints their SQLite files failed; checkpoints run in the main thread from then on (nothing is lost).',
} as const;

export type WarningCode = keyof typeof WARNING_CODES;

export class CairnError extends Error {
  readonly code: ErrorCode;

  constructor(message: string, code: ErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A key that is not a lowercase hex sha256 digest (64 characters). */
export class InvalidKeyError extends CairnError {
  readonly key: unknown;
  constructor(key: unknown) {
    super(`Invalid key ${describe(key)}: expected 64 lowercase hex characters (a sha256 digest)`, 'ERR_INVALID_KEY');
    this.key = key;
  }
}

/** The key is not stored in any location that was searched. */
export class NotFoundError extends CairnError {
  readonly key: string;
  constructor(key: string) {
    super(`The key ${key} is not found`, 'ERR_NOT_FOUND');
    this.key = key;
  }
}

/** No location accepted the value (all were full, read-only or too small for it). */
export class WriteError extends CairnError {
  readonly key: string | null;
  constructor(message: string, key: string | null, options?: { cause?: unknown }) {
    super(message, 'ERR_WRITE_DECLINED', options);
    this.key = key;
  }
}

/** Stored or transferred bytes do not hash to their key. */
export class StorageCorruption extends CairnError {
  readonly key: string;
  readonly actual: string | null;
  constructor(key: string, actual: string | null, where: string, options?: { cause?: unknown }) {
    super(
      `Corrupted value for ${key} in ${where}` + (actual ? `: its bytes hash to ${actual}` : ''),
      'ERR_STORAGE_CORRUPTION',
      options,
    );
    this.key = key;
    this.actual = actual;
  }
}

/** A location could not do what was asked (permissions, full disk, I/O error, protocol error). */
export class LocationError extends CairnError {
  readonly location: string;
  constructor(message: string, location: string, options?: { cause?: unknown; code?: CodeOf<'LocationError'> }) {
    super(message, options?.code ?? 'ERR_LOCATION', options);
    this.location = location;
  }
}

/** A bad option, a bad config file or a config that does not match what is on disk. */
export class ConfigError extends CairnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_CONFIG', options);
  }
}

/** A value given to `write` that cairn cannot read bytes from. */
export class InvalidValueError extends CairnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_INVALID_VALUE', options);
  }
}

/** Labels that are not a list of strings (a single string, a number…): tarn refuses them too. */
export class InvalidLabelsError extends CairnError {
  constructor(message: string) {
    super(message, 'ERR_INVALID_LABELS');
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 77) + '...' : value);
  return Object.prototype.toString.call(value);
}

/** A server could not be reached (connection refused, reset, DNS failure). */
export class ConnectionError extends CairnError {
  readonly location: string;
  constructor(message: string, location: string, options?: { cause?: unknown }) {
    super(message, 'ERR_CONNECTION', options);
    this.location = location;
  }
}

/** An operation did not finish within its time limit. */
export class TimeoutError extends CairnError {
  readonly location: string;
  readonly timeoutMs: number;
  constructor(message: string, location: string, timeoutMs: number, options?: { cause?: unknown }) {
    super(message, 'ERR_TIMEOUT', options);
    this.location = location;
    this.timeoutMs = timeoutMs;
  }
}

/** The server refused our credentials, or we refused the server's host key. */
export class AuthenticationError extends CairnError {
  readonly location: string;
  constructor(message: string, location: string, options?: { cause?: unknown; code?: CodeOf<'AuthenticationError'> }) {
    super(message, options?.code ?? 'ERR_AUTH', options);
    this.location = location;
  }
}

/** Every tier of a TierKV store is full: the value was not stored and the store is unchanged. */
export class OutOfResourcesError extends CairnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'ERR_OUT_OF_RESOURCES', options);
  }
}

/** A smartCache argument or dependency that cannot be turned into a key (a symbol, a Promise…). */
export class UnhashableError extends CairnError {
  /** Where in the arguments the value was, e.g. `args[1].opts.callback`. */
  readonly path: string;
  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, 'ERR_UNHASHABLE', options);
    this.path = path;
  }
}

/** An optional package that a location or codec needs is not installed (`npm install <package>`). */
export class MissingDependencyError extends CairnError {
  /** The npm package to install. */
  readonly package: string;
  constructor(pkg: string, needed: string, options?: { cause?: unknown }) {
    super(`${needed} needs the package ${pkg}, which is not installed: npm install ${pkg}`, 'ERR_MISSING_DEPENDENCY', options);
    this.package = pkg;
  }
}

/**
 * The `code` of a LocationError for a failed file-system or SQLite call, so that callers can
 * branch on it: `ERR_NO_SPACE` (a full disk or quota), `ERR_PERMISSION`, `ERR_READ_ONLY` (a
 * read-only mount or database), else `ERR_LOCATION`.
 */
export function storageErrorCode(cause: unknown): 'ERR_NO_SPACE' | 'ERR_READ_ONLY' | 'ERR_PERMISSION' | 'ERR_LOCATION' {
  const { code, errcode } = (cause ?? {}) as { code?: unknown; errcode?: unknown };
  // node:sqlite reports SQLite's primary result code as `errcode` (13 full, 8 read-only, 3 permission)
  const primary = typeof errcode === 'number' ? errcode & 0xff : null;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || primary === 13) return 'ERR_NO_SPACE';
  if (code === 'EROFS' || code === 'SQLITE_READONLY' || primary === 8) return 'ERR_READ_ONLY';
  if (code === 'EACCES' || code === 'EPERM' || code === 'SQLITE_PERM' || primary === 3) return 'ERR_PERMISSION';
  return 'ERR_LOCATION';
}

/** A smartCache result that cannot be stored as it is (a class instance, a function, a symbol…). */
export class UnstorableError extends CairnError {
  /** Where in the result the value was, e.g. `result.items[3]`. */
  readonly path: string;
  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, 'ERR_UNSTORABLE', options);
    this.path = path;
  }
}

/** A bad config file: names the file, the line and the field. */
export class ConfigFileError extends ConfigError {
  readonly file: string;
  readonly line: number;
  readonly field: string;
  constructor(file: string, line: number, field: string, message: string, options?: { cause?: unknown }) {
    super(`${file}:${line}: ${field || '(top)'}: ${message}`, options);
    this.file = file;
    this.line = line;
    this.field = field;
  }
}

/** A mistake in how the `cairn` command was called: exit code 2. */
export class UsageError extends CairnError {
  constructor(message: string) {
    super(message, 'ERR_USAGE');
  }
}

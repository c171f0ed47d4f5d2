/**
 * Every error cairn throws is a CairnError: it has a stable `code` to branch on, a `name` that
 * matches its class, and the underlying `cause` when there is one (an fs error, a socket error).
 * A missing key is never an error unless the caller asked for one (NotFoundError); every other
 * failure is an error, never a silent miss.
 */
export class CairnError extends Error {
  readonly code: string;

  constructor(message: string, code: string, options?: { cause?: unknown }) {
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
  constructor(message: string, location: string, options?: { cause?: unknown; code?: string }) {
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
  constructor(message: string, location: string, options?: { cause?: unknown; code?: string }) {
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
export function storageErrorCode(cause: unknown): string {
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

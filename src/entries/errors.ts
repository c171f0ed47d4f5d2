/**
 * `cairn-lake/errors`: every error class and code of cairn, and nothing else (see docs/errors.md).
 */
export {
  AuthenticationError,
  CairnError,
  ConfigError,
  ConfigFileError,
  ConnectionError,
  ERROR_CODES,
  InvalidKeyError,
  InvalidLabelsError,
  InvalidValueError,
  LocationError,
  MissingDependencyError,
  NotFoundError,
  OutOfResourcesError,
  StorageCorruption,
  TimeoutError,
  UnhashableError,
  UnstorableError,
  UsageError,
  WARNING_CODES,
  WriteError,
  type CodeOf,
  type ErrorCode,
  type WarningCode,
} from '../errors.js';

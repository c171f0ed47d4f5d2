/** @deprecated moved to locations/net/retry.ts; kept while the lake transports move over. */
export { type RetryOptions, withRetry } from './locations/net/retry.js';

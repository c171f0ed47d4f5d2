/** @deprecated moved to locations/net/retry-kind.ts; kept while the lake transports move over. */
export { RETRY_FIELDS } from './locations/net/retry-kind.js';

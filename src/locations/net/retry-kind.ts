import type { OptionTable } from '../../config/values.js';
import type { RetryOptions } from './retry.js';

/** `retry: { … }` in a config file, as RetryOptions. */
export const RETRY_FIELDS = { attempts: 'number', baseDelayMs: 'number', maxDelayMs: 'number' } as const satisfies OptionTable<RetryOptions>;

export { smartCache, type Cached, type CachedMethods, type CacheEventName, type CacheEvents, type CacheStats, type Explanation, type SmartCacheDecorator, type SmartCacheOptions } from './smart-cache.js';
export { markStable, markUnstable } from './mark.js';
export { cacheKey, hashValue } from './hash-args.js';
export { functionDigest, type FunctionDigest } from './function-digest.js';
export type { CacheWhere } from './store.js';
export { cacheUsage, clearCache, reduceCache, type CacheLimits, type FunctionUsage, type ReduceOptions, type ReduceReport, type RemovedEntry } from './reduce.js';
export type { EntryIndex, EntryMeta, IndexedEntry } from './entry-index.js';
export type { LockOptions } from './lock-options.js';

/**
 * `cairn-lake/cache`: smartCache, persistent memoisation invalidated by code changes, and the tools
 * that inspect, reduce and clear its caches. No optional package is needed unless the cache lives
 * on Redis or S3 (pass a RedisLocation or S3 from those entries).
 */
export { smartCache, markStable, markUnstable, cacheKey, hashValue, functionDigest, type Cached, type CachedMethods, type CacheEventName, type CacheEvents, type CacheStats, type CacheWhere, type Explanation, type FunctionDigest, type LockOptions, type SmartCacheDecorator, type SmartCacheOptions } from '../cache/index.js';
export { cacheUsage, clearCache, reduceCache, type CacheLimits, type EntryIndex, type EntryMeta, type FunctionUsage, type IndexedEntry, type ReduceOptions, type ReduceReport, type RemovedEntry } from '../cache/index.js';

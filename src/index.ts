export {
  AuthenticationError,
  CairnError,
  ConfigError,
  ConnectionError,
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
  WriteError,
} from './errors.js';
export { assertKey, digestBytes, isKey, type Key } from './key.js';
export { parseSize, type Size } from './size.js';
export type { Blob, Source, Value } from './blob.js';
export type { Entry, Location, LocationLike, Meta } from './locations/interface.js';
export { Disk, type DiskOptions } from './locations/disk.js';
export { Memory, type MemoryOptions } from './locations/memory.js';
export { Fanout } from './locations/fanout.js';
export { Level, Levels, type LevelOptions, type LevelsOptions, type SkipEvent } from './locations/levels.js';
export { Small, type SmallOptions } from './locations/small.js';
export { Packed, type PackedOptions } from './locations/packed.js';
export { HashKeyStorage, type HashKeyStorageOptions, type ReadOptions, type WriteOptions } from './storage/hash-key-storage.js';
export type { WriteInput } from './storage/stage.js';
export { FilesystemTier, ResourceFilesystem, ResourceMemory, TierKV, type CodecName, type Compression, type Limit, type Resource, type ResourceFilesystemOptions, type ResourceMemoryOptions, type Tags, type Reclaimed, type StoredValue, type TierKVOptions, type TierReadOptions, type TierSetOptions, type TierStats, type TierValue } from './storage/tierkv/index.js';
export { type Durability } from './storage/tierkv/index.js';
export { SFTP, type SFTPOptions } from './locations/sftp.js';
export { SCP, type SCPOptions } from './locations/scp.js';
export { type SSHOptions } from './locations/ssh-common.js';
export { Nginx, type NginxOptions } from './locations/nginx.js';
export { smartCache, markStable, markUnstable, cacheKey, hashValue, functionDigest, type Cached, type CachedMethods, type CacheStats, type CacheWhere, type Explanation, type FunctionDigest, type LockOptions, type SmartCacheDecorator, type SmartCacheOptions } from './cache/index.js';
export { cacheUsage, clearCache, reduceCache, type CacheLimits, type EntryIndex, type EntryMeta, type FunctionUsage, type IndexedEntry, type ReduceOptions, type ReduceReport, type RemovedEntry } from './cache/index.js';
export { RedisLocation, type RedisLocationOptions } from './locations/redis.js';
export { S3, type S3Options } from './locations/s3.js';
export { verify, gc, migrate, du, parseDuration, collectStats, keepStats, saveStats, readStats, sumStats, clearStats, leaves, disks, type BadBlob, type VerifyOptions, type VerifyReport, type Duration, type Evicted, type GcOptions, type GcReport, type MigrateOptions, type MigrateReport, type LocationUsage, type FunctionLike, type FunctionStats, type KeepStatsOptions, type StatsSnapshot, type Target, type Progress, type ProgressCallback } from './storage/maintenance/index.js';
export { type LevelStats } from './locations/levels.js';
export { loadConfig, findConfig, CONFIG_NAMES, type StorageConfig, type LoadOptions } from './config/load.js';
export { registerLocationKind, type LocationFactory, type BuildContext } from './config/kinds.js';
export { ConfigFileError, type ConfigNode } from './config/node.js';

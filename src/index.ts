/**
 * `cairn-lake`, the core entry: a lake on local storage (HashKeyStorage over Disk, Memory, Fanout,
 * Levels, Small, Packed), keys, sizes, config files and every error. Its declarations import no
 * optional package. The rest is by area, each a subpath that loads only its own part:
 *
 * - `cairn-lake/redis`   RedisLocation (peer: ioredis)
 * - `cairn-lake/s3`      S3 (peers: @aws-sdk/client-s3, @aws-sdk/lib-storage)
 * - `cairn-lake/ssh`     SFTP, SCP (peer: ssh2; types: @types/ssh2)
 * - `cairn-lake/nginx`   Nginx (peer: undici)
 * - `cairn-lake/cache`   smartCache and its cache tools
 * - `cairn-lake/tierkv`  TierKV, the tagged tiered feature store
 * - `cairn-lake/maintenance`  verify, gc, migrate, du, usage stats
 * - `cairn-lake/config`  config files, and new location kinds for them
 * - `cairn-lake/errors`  the error classes and codes alone
 */
export * from './entries/errors.js';
export { assertKey, digestBytes, isKey, type Key } from './key.js';
export { parseSize, type Size } from './size.js';
export type { Blob, Source, Value } from './blob.js';
export type { Entry, Location, LocationLike, LocationReadOptions, Meta } from './locations/interface.js';
export { HashKeyStorage, type HashKeyStorageOptions, type OrNull, type ReadOptions, type WriteOptions } from './storage/hash-key-storage.js';
export type { WriteInput } from './storage/stage.js';
export { Disk, type DiskOptions } from './locations/disk/disk.js';
export { Memory, type MemoryOptions } from './locations/memory.js';
export { Fanout } from './locations/compose/fanout.js';
export { Level, Levels, type LevelOptions, type LevelsOptions, type LevelStats, type SkipEvent } from './locations/compose/levels.js';
export { Small, type SmallOptions } from './locations/compose/small.js';
export { Packed, type PackedOptions } from './locations/packed/packed.js';
export { CONFIG_NAMES, findConfig, loadConfig, type LoadOptions, type StorageConfig } from './config/load.js';
export type { Progress, ProgressCallback } from './storage/maintenance/progress.js';

/**
 * `cairn-lake/tierkv`: TierKV, the tagged, tiered feature store, and its resources. The optional
 * `lz4-napi` is needed only for `compression: 'lz4'`.
 */
export { FilesystemTier, ResourceFilesystem, ResourceMemory, TierKV, type CodecName, type Compression, type Durability, type Limit, type Reclaimed, type Resource, type ResourceFilesystemOptions, type ResourceMemoryOptions, type StoredValue, type Tags, type TierKVOptions, type TierReadOptions, type TierSetOptions, type TierStats, type TierValue } from '../storage/tierkv/index.js';

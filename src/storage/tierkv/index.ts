export { TierKV, type Reclaimed, type StoredValue, type TierKVOptions, type TierReadOptions, type TierSetOptions, type TierStats, type TierValue } from './tierkv.js';
export { ResourceFilesystem, ResourceMemory, type Durability, type Limit, type Resource, type ResourceFilesystemOptions, type ResourceMemoryOptions } from './resources.js';
export { type CodecName, type Compression } from './codec.js';
export { FilesystemTier } from './fs-tier.js';
export { type Tags } from './tags.js';

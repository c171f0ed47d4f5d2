export { verify, type BadBlob, type VerifyOptions, type VerifyReport } from './verify.js';
export { gc, parseDuration, type Duration, type Evicted, type GcOptions, type GcReport } from './gc.js';
export { migrate, type MigrateOptions, type MigrateReport } from './migrate.js';
export { du, type LocationUsage } from './du.js';
export { clearStats, collectStats, keepStats, readStats, saveStats, sumStats, type FunctionLike, type FunctionStats, type KeepStatsOptions, type StatsSnapshot } from './stats.js';
export { disks, leaves, type Target } from './leaves.js';
export type { Progress, ProgressCallback } from './progress.js';

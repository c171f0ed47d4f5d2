/**
 * `cairn-lake/maintenance`: what the `cairn` command does, as functions: verify, gc, migrate, du,
 * and the usage statistics of smartCache functions.
 */
export { verify, gc, migrate, du, parseDuration, collectStats, keepStats, saveStats, readStats, sumStats, clearStats, leaves, disks, type BadBlob, type VerifyOptions, type VerifyReport, type Duration, type Evicted, type GcOptions, type GcReport, type MigrateOptions, type MigrateReport, type LocationUsage, type FunctionLike, type FunctionStats, type KeepStatsOptions, type StatsSnapshot, type Target, type Progress, type ProgressCallback } from '../storage/maintenance/index.js';

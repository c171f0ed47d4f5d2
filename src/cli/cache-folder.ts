/**
 * `cairn du` and `cairn gc` on a smartCache folder (`--cache DIR`, or `--lake DIR` naming a folder
 * that holds a cache index): entries and bytes by function, and eviction by the same flags as a
 * lake's. The folder is opened as a cache, never as a lake: nothing is created at its top.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FOLDER_INDEX } from '../cache/index-for.js';
import { reduceStore, storeUsage, sweepStore } from '../cache/reduce.js';
import { Store } from '../cache/store.js';
import { du as diskUsage } from '../storage/maintenance/du.js';
import { gc as collect } from '../storage/maintenance/gc.js';
import { json, out, str, UsageError, type Values } from './context.js';
import { formatBytes, table } from './format.js';

/** The cache folder a command names, or null when it names a lake. */
export function cacheFolderOf(values: Values): string | null {
  const cache = str(values, 'cache');
  if (cache !== undefined) {
    if (!existsSync(join(cache, FOLDER_INDEX))) throw new UsageError(`${cache} is not a smartCache folder (it has no ${FOLDER_INDEX})`);
    return resolve(cache);
  }
  const lake = str(values, 'lake') ?? (str(values, 'config') === undefined ? process.env.CAIRN_LAKE : undefined);
  return lake !== undefined && existsSync(join(lake, FOLDER_INDEX)) ? resolve(lake) : null;
}

export async function cacheDu(folder: string, values: Values): Promise<number> {
  const store = Store.of(folder, false);
  try {
    const functions = await storeUsage(store);
    const storage = await diskUsage(store.storage);
    const entries = functions.reduce((sum, usage) => sum + usage.entries, 0);
    const bytes = functions.reduce((sum, usage) => sum + usage.bytes, 0);
    if (values.json) {
      await json({ cache: folder, entries, bytes, functions, storage });
      return 0;
    }
    const rows = functions.map((usage) => [usage.fn, String(usage.entries), formatBytes(usage.bytes), usage.lastUsed?.toISOString() ?? '-']);
    await out(table([['FUNCTION', 'ENTRIES', 'BYTES', 'LAST USED'], ...rows, ['(all)', String(entries), formatBytes(bytes), '']]) + '\n');
    const blobs = storage.reduce((sum, usage) => sum + usage.count, 0);
    const blobBytes = storage.reduce((sum, usage) => sum + usage.bytes, 0);
    await out(`storage: ${blobs} parts (${formatBytes(blobBytes)}), counted once however many entries share them\n`);
  } finally {
    await store.close();
  }
  return 0;
}

export interface CacheGcFlags {
  maxSize?: string;
  maxCount?: number;
  olderThan?: string;
  keepRecent?: string;
  tmpAge?: string;
  dryRun: boolean;
}

export async function cacheGc(folder: string, flags: CacheGcFlags, values: Values): Promise<number> {
  const store = Store.of(folder, false);
  try {
    const report = await reduceStore(store, {
      ...(flags.maxSize !== undefined ? { maxBytes: flags.maxSize } : {}),
      ...(flags.maxCount !== undefined ? { maxEntries: flags.maxCount } : {}),
      ...(flags.olderThan !== undefined ? { maxAge: flags.olderThan } : {}),
      dryRun: flags.dryRun,
    });
    // parts no entry names (a crash between a part and its entry, entries of an older format)
    const swept = await sweepStore(store, { keepRecent: flags.keepRecent ?? '1h', dryRun: flags.dryRun });
    // temp files of crashed writers in the storage folder (no limits: no blob is evicted there)
    const temp = await collect(store.storage, { dryRun: flags.dryRun, ...(flags.tmpAge !== undefined ? { tmpAge: flags.tmpAge } : {}) });
    if (values.json) {
      await json({ cache: folder, ...report, sweptParts: swept.count, sweptBytes: swept.bytes, tempFiles: temp.tempFiles });
      return 0;
    }
    const verb = flags.dryRun ? 'would remove' : 'removed';
    for (const entry of report.removed) await out(`${verb} ${entry.key} ${entry.fn} ${formatBytes(entry.size)} last used ${entry.lastUsed.toISOString()}\n`);
    await out(
      `${flags.dryRun ? 'Would remove' : 'Removed'} ${report.removed.length} entries (${formatBytes(report.removedBytes)}), ` +
        `${report.removedParts + swept.count} parts no entry names${swept.count > 0 ? ` (${formatBytes(swept.bytes)} of them left behind earlier)` : ''} ` +
        `and ${temp.tempFiles.length} stale temp files; kept ${report.kept} entries (${formatBytes(report.keptBytes)})\n`,
    );
  } finally {
    await store.close();
  }
  return 0;
}

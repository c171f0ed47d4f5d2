import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Disk } from '../../locations/disk.js';
import { leaves, type Target } from './leaves.js';
import type { ProgressCallback } from './progress.js';

export interface LocationUsage {
  location: string;
  count: number;
  bytes: number;
  /** A Disk's temp files (writes in progress or leftovers) and quarantined blobs. */
  temp?: { count: number; bytes: number };
  quarantine?: { count: number; bytes: number };
}

/** Bytes and counts of blobs per location of `target` (each leaf of a composition). */
export async function du(target: Target, options: { onProgress?: ProgressCallback } = {}): Promise<LocationUsage[]> {
  const result: LocationUsage[] = [];
  let files = 0;
  let total = 0;
  for (const location of leaves(target)) {
    const usage: LocationUsage = { location: location.name, count: 0, bytes: 0 };
    if (location instanceof Disk) {
      for await (const key of location.keys()) {
        const stat = await fsp.stat(location.pathOf(key)).catch(() => null);
        if (stat === null) continue;
        usage.count++;
        usage.bytes += stat.size;
        options.onProgress?.({ operation: 'du', files: ++files, totalFiles: null, bytes: (total += stat.size), totalBytes: null });
      }
      usage.temp = await folderUsage(location.tmpDir);
      usage.quarantine = await folderUsage(join(location.root, '.quarantine'));
    } else {
      for await (const entry of location.contents()) {
        usage.count++;
        usage.bytes += entry.meta.size ?? 0;
        options.onProgress?.({ operation: 'du', files: ++files, totalFiles: null, bytes: (total += entry.meta.size ?? 0), totalBytes: null });
      }
    }
    result.push(usage);
  }
  return result;
}

async function folderUsage(dir: string): Promise<{ count: number; bytes: number }> {
  const usage = { count: 0, bytes: 0 };
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const stat = await fsp.stat(join(dir, name)).catch(() => null);
    if (stat?.isFile()) {
      usage.count++;
      usage.bytes += stat.size;
    }
  }
  return usage;
}

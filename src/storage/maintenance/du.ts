import { adminOf } from '../../locations/admin.js';
import { leaves, type Target } from './leaves.js';
import type { ProgressCallback } from './progress.js';

export interface LocationUsage {
  location: string;
  count: number;
  bytes: number;
  /** A local store's temp files (writes in progress or leftovers) and quarantined values. */
  temp?: { count: number; bytes: number };
  quarantine?: { count: number; bytes: number };
  /** Bytes a store's own files take (a Packed store's database and its log). */
  fileBytes?: number;
}

/** Bytes and counts of values per location of `target` (each leaf of a composition), streaming: memory does not grow with the count. */
export async function du(target: Target, options: { onProgress?: ProgressCallback } = {}): Promise<LocationUsage[]> {
  const result: LocationUsage[] = [];
  let files = 0;
  let total = 0;
  const tell = (size: number) => options.onProgress?.({ operation: 'du', files: ++files, totalFiles: null, bytes: (total += size), totalBytes: null });
  for (const location of leaves(target)) {
    const usage: LocationUsage = { location: location.name, count: 0, bytes: 0 };
    const admin = adminOf(location);
    if (admin !== null) {
      for await (const item of admin.items()) {
        usage.count++;
        usage.bytes += item.size;
        tell(item.size);
      }
      Object.assign(usage, await admin.usage());
    } else {
      for await (const entry of location.contents()) {
        usage.count++;
        usage.bytes += entry.meta.size ?? 0;
        tell(entry.meta.size ?? 0);
      }
    }
    result.push(usage);
  }
  return result;
}

/** Files directly in a folder (temp files, quarantined blobs): how many and their bytes; none when it is absent. */
import { promises as fsp, statSync } from 'node:fs';
import { join } from 'node:path';
import type { FileCount } from './admin.js';

export async function folderUsage(dir: string): Promise<FileCount> {
  const usage = { count: 0, bytes: 0 };
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    const stat = statSync(join(dir, name), { throwIfNoEntry: false });
    if (stat?.isFile()) {
      usage.count++;
      usage.bytes += stat.size;
    }
  }
  return usage;
}

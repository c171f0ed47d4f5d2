import { createHash } from 'node:crypto';
import { StorageCorruption } from '../../errors.js';
import type { Key } from '../../key.js';
import { Disk } from '../../locations/disk.js';
import { hashFile } from '../../locations/disk-io.js';
import type { Location } from '../../locations/interface.js';
import { leaves, type Target } from './leaves.js';
import { eachLimit, type ProgressCallback } from './progress.js';

export interface VerifyOptions {
  /** Blobs hashed at once. @default 4 */
  jobs?: number;
  /** Move bad blobs of a Disk into its `.quarantine/` (other locations: only listed). @default true */
  quarantine?: boolean;
  onProgress?: ProgressCallback;
  /** Stops the run: no new blob is checked, those in flight finish, then the signal's reason is thrown (quarantined blobs stay moved). */
  signal?: AbortSignal;
}

export interface BadBlob {
  key: Key;
  location: string;
  /** What the bytes hash to (null when they could not be read). */
  actual: string | null;
  /** Where the blob was moved, or null when it was left in place. */
  movedTo: string | null;
}

export interface VerifyReport {
  checked: number;
  bytes: number;
  bad: BadBlob[];
  /** Blobs that could not be read at all (I/O, permissions): listed, never moved. */
  errors: { key: Key; location: string; error: string }[];
}

/**
 * Re-hashes every blob of every location in `target`, streaming (memory stays bounded). A blob
 * whose bytes do not match its key is moved aside into the lake's `.quarantine/` (never deleted)
 * and listed. A read of that key is then a miss, so a Levels above fetches a good copy again.
 */
export async function verify(target: Target, options: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, bytes: 0, bad: [], errors: [] };
  const locations = leaves(target);
  const work: { location: Location; key: Key; size: number }[] = [];
  for (const location of locations) {
    options.signal?.throwIfAborted();
    for await (const entry of location.contents()) work.push({ location, key: entry.key, size: entry.meta.size ?? 0 });
  }
  const totalBytes = work.reduce((sum, item) => sum + item.size, 0);
  const tell = () =>
    options.onProgress?.({ operation: 'verify', files: report.checked, totalFiles: work.length, bytes: report.bytes, totalBytes });
  tell();
  await eachLimit(work, options.jobs ?? 4, async ({ location, key, size }) => {
    try {
      const actual = await hashOf(location, key);
      if (actual !== null && actual !== key) {
        const movedTo = options.quarantine !== false && location instanceof Disk ? await location.quarantine(key) : null;
        report.bad.push({ key, location: location.name, actual, movedTo });
      }
    } catch (error) {
      report.errors.push({ key, location: location.name, error: (error as Error).message });
    }
    report.checked++;
    report.bytes += size;
    tell();
  }, options.signal);
  return report;
}

/** The sha256 of the stored bytes (null when the key vanished meanwhile). */
async function hashOf(location: Location, key: Key): Promise<string | null> {
  if (location instanceof Disk) {
    try {
      return await hashFile(location.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
  const value = await location.read(key, { use: false }); // checking a value is not a use
  if (value === null) return null;
  const hash = createHash('sha256');
  try {
    for await (const chunk of value.stream()) hash.update(chunk as Buffer);
  } catch (error) {
    // a location that verifies its own reads reports the mismatch itself
    if (error instanceof StorageCorruption) return error.actual ?? 'unreadable';
    throw error;
  }
  return hash.digest('hex');
}

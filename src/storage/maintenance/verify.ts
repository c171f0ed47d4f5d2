import { StorageCorruption } from '../../errors.js';
import { hashStream } from '../../digest.js';
import type { Key } from '../../key.js';
import { adminOf, type LakeAdmin } from '../../locations/admin.js';
import type { Location } from '../../locations/interface.js';
import { leaves, type Target } from './leaves.js';
import { eachLimit, type ProgressCallback } from './progress.js';

export interface VerifyOptions {
  /** Blobs hashed at once. @default 4 */
  jobs?: number;
  /** Set bad values aside (a Disk: `tools/quarantine/`; a Packed store: `quarantine/`; other locations: only listed). @default true */
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
 * Re-hashes every value of every location in `target`, streaming: the listing is pulled as the
 * hashes finish, so memory does not grow with the number of keys (the totals of the progress are
 * known once the listing ends). A value whose bytes do not match its key is set aside (a Disk:
 * into `tools/quarantine/`; a Packed store: into its `quarantine/` folder; never deleted) and
 * listed. A read of that key is then a miss, so a Levels above fetches a good copy again.
 */
export async function verify(target: Target, options: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { checked: 0, bytes: 0, bad: [], errors: [] };
  let listed = 0;
  let listedBytes = 0;
  let listingDone = false;
  const tell = () =>
    options.onProgress?.({
      operation: 'verify',
      files: report.checked,
      totalFiles: listingDone ? listed : null,
      bytes: report.bytes,
      totalBytes: listingDone ? listedBytes : null,
    });
  const work = async function* (): AsyncIterable<{ location: Location; admin: LakeAdmin | null; key: Key; size: number }> {
    for (const location of leaves(target)) {
      options.signal?.throwIfAborted();
      const admin = adminOf(location);
      const listing = admin !== null ? admin.items() : sizes(location);
      for await (const { key, size } of listing) {
        listed++;
        listedBytes += size;
        yield { location, admin, key, size };
      }
    }
    listingDone = true;
  };
  tell();
  await eachLimit(work(), options.jobs ?? 4, async ({ location, admin, key, size }) => {
    try {
      const actual = admin !== null ? await admin.hashStored(key, size) : await hashOf(location, key);
      if (actual !== null && actual !== key) {
        const movedTo = options.quarantine !== false && admin !== null ? await admin.quarantine(key) : null;
        report.bad.push({ key, location: location.name, actual, movedTo });
      }
    } catch (error) {
      report.errors.push({ key, location: location.name, error: (error as Error).message });
    }
    report.checked++;
    report.bytes += size;
    tell();
  }, options.signal);
  listingDone = true;
  tell();
  return report;
}

async function* sizes(location: Location): AsyncIterable<{ key: Key; size: number }> {
  for await (const entry of location.contents()) yield { key: entry.key, size: entry.meta.size ?? 0 };
}

/** The sha256 of the bytes a location without an admin view holds (null when the key vanished meanwhile). */
async function hashOf(location: Location, key: Key): Promise<string | null> {
  const value = await location.read(key, { use: false }); // checking a value is not a use
  if (value === null) return null;
  try {
    return await hashStream(value.stream());
  } catch (error) {
    // a location that verifies its own reads reports the mismatch itself
    if (error instanceof StorageCorruption) return error.actual ?? 'unreadable';
    throw error;
  }
}

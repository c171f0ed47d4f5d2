/**
 * Lake administration: what maintenance (`du`, `verify`, `gc`, `migrate`, the CLI, a smartCache
 * index) needs of a store beyond the Location interface (quarantine, temp files, usage, labels,
 * paths, eviction). A location that can be administered on this machine has an `admin()` method
 * (Disk, Packed); maintenance asks `adminOf(location)`, never which class a location is.
 */
import type { Key } from '../key.js';
import type { Location } from './interface.js';

/** One stored value as maintenance lists it: no labels read, no value read. */
export interface StoredItem {
  key: Key;
  size: number;
  /** Its last use (a Disk: its mark, else its mtime); null unless asked for. */
  lastUsed: Date | null;
}

export interface FileCount {
  count: number;
  bytes: number;
}

/** What a store holds besides its values (`cairn du`). */
export interface AdminUsage {
  /** Temp files: writes in progress, or leftovers of writers that crashed. */
  temp?: FileCount;
  /** Values set aside by verify because their bytes did not match their key. */
  quarantine?: FileCount;
  /** Bytes the store's own files take (a database with its log), when that is not the sum of its values. */
  fileBytes?: number;
}

/** A value chosen for eviction. */
export interface Eviction {
  key: Key;
  size: number;
  lastUsed: Date;
}

export interface CollectOptions {
  /** Decide and report, change nothing. */
  dryRun: boolean;
  /** How long to wait between setting chosen values aside and removing them (a Disk). */
  graceMs: number;
  /** Temp files not modified since then (ms since the epoch) are leftovers. */
  tmpCutoff: number;
  /** When the gc run started (ms since the epoch). */
  now: number;
}

export interface TidyReport {
  /** Stale temp files removed (or that would be). */
  tempFiles: { path: string; size: number }[];
  /** Bytes the store's files gave back to the filesystem (a database compacted); 0 when none. */
  reclaimedBytes: number;
}

/** One gc run on one store. Made before the store is listed: writes acknowledged after that are never removed by it. */
export interface Collection {
  /**
   * Removes a batch of chosen values. A value written, touched or read while gc ran is kept
   * (`restored`): the store checks again, atomically where it can, before it removes one.
   */
  evict(batch: readonly Eviction[]): Promise<{ removed: Eviction[]; restored: Eviction[] }>;
  /** After the evictions: leftovers of crashed writers and runs, and space given back. */
  tidy(): Promise<TidyReport>;
  /** Ends the run (always called, also after a failure). */
  finish(): Promise<void>;
}

/** How a worker thread opens the same store (a Disk: its folder and options). */
export interface ThreadOpen {
  kind: 'disk';
  root: string;
  options: Record<string, unknown>;
}

export interface LakeAdmin {
  readonly location: Location;
  /** The store's folder on this machine. */
  readonly folder: string;
  /**
   * A folder of the store where files of other tools may live without ever being listed as
   * values (a smartCache index, saved counters): a Disk's `tools/`, a Packed store's folder.
   */
  readonly sideFolder: string;
  /** Every stored value with its size (and last use when asked), streaming: memory does not grow with the count. */
  items(options?: { lastUsed?: boolean }): AsyncIterable<StoredItem>;
  /** Temp files, quarantined values, the store's own files. */
  usage(): Promise<AdminUsage>;
  /** The sha256 of the bytes as stored, read without marking the key as used; null when it is gone. `size`: as listed, when known. */
  hashStored(key: Key, size?: number): Promise<string | null>;
  /** Sets aside a value whose bytes do not match its key (it is then a miss); returns where, or null when gone. */
  quarantine(key: Key): Promise<string | null>;
  /** The key's labels (null when none), without marking it as used. */
  labelsOf(key: Key): Promise<string[] | null>;
  /** Adds labels to a stored key (a no-op where the store keeps none). */
  addLabels(key: Key, labels: readonly string[]): Promise<void>;
  /** True when the key is stored with this size (a cheap check: no read of the bytes). */
  holds(key: Key, size: number): Promise<boolean>;
  /** A local file holding exactly the stored bytes of `key`, or null (a store without a file per value). */
  filePath(key: Key): string | null;
  /** The stored bytes of a store that holds its values whole in its own file (Packed), read without marking the key as used; else absent. */
  readStored?(key: Key): Promise<Buffer | null>;
  /** How a worker thread opens the same store, or null when it cannot be shared with one. */
  threadOpen(): ThreadOpen | null;
  /** Starts a gc run on this store. */
  collect(options: CollectOptions): Promise<Collection>;
}

/** A location that has an administration view. */
export interface Administered {
  admin(): LakeAdmin;
}

/** The administration view of `location`, or null when it has none (a remote or in-memory store, a wrapper). */
export function adminOf(location: Location): LakeAdmin | null {
  const admin = (location as Partial<Administered>).admin;
  return typeof admin === 'function' ? admin.call(location) : null;
}

/**
 * What a lake location lets its owner decide beyond the format: a Disk's marks queue, its
 * `verifyReads` and `markOnWrite`, and its usage limits and size counter (asked before a new blob,
 * told after one is stored or deleted) plug in here (disk/disk.ts). Every hook is optional; without one the lake does
 * what the format says (SFTP, SCP and Nginx set none).
 */
import type { Key } from '../../key.js';

export interface LakeHooks {
  /** Hash what reads return (`bytes()`, `stream()`, `readBytes`). @default true */
  verifyReads?: boolean;
  /**
   * A read that is a use of `key` (already throttled by touchInterval): queue the refresh of its
   * last-used mark instead of touching it before the read returns. Returns a promise to wait for
   * when the queue is far behind, else null.
   */
  noteUse?(key: Key): Promise<void> | null;
  /**
   * Create a new blob's last-used mark as it is published. Off, a new blob has no mark (an old
   * mark of the key left behind is refreshed). @default true
   */
  markOnWrite?: boolean;
  /** Asked before a new blob is put in place (`size` null when unknown): false declines the write (write() gives null). */
  admit?(size: number | null): Promise<boolean>;
  /** Told once a new blob of `size` bytes is in place, instead of `replaced` bytes (a corrupted blob it replaced; 0 for none). */
  stored?(size: number, replaced: number): Promise<void>;
  /** Told once a blob of `size` bytes is deleted. */
  removed?(size: number): Promise<void>;
}

/**
 * What a lake location lets its owner decide beyond the format: a Disk's marks queue and its
 * `verifyReads` plug in here (disk/disk.ts). Every hook is optional; without one the lake does
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
}

import { chmodSync, chownSync, mkdirSync, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';

/** How a process creates files and folders in a lake: their group, and whether the lake is shared by a group. */
export interface Ownership {
  /** A group given to every file and folder created, or null. */
  gid: number | null;
  /** Folders are group-writable and setgid, labels and marks group-writable. */
  shared: boolean;
  /** The mode of new folders. */
  dirMode: number;
}

/**
 * Creates folders (remembering those known to exist) and gives what this process creates the lake's
 * group and modes. Plain data in, so that a worker thread can make its own from a Disk's `Ownership`.
 */
export class Owner {
  private readonly knownDirs = new Set<string>();

  constructor(readonly ownership: Ownership) {}

  /** The mode of labels and last-used marks: group-writable in a shared lake. */
  get markMode(): number {
    return this.ownership.shared ? 0o664 : 0o666 & this.ownership.dirMode;
  }

  /**
   * Gives a file or folder this process has just created the lake's group and, for a shared lake,
   * `mode` (null: keep the mode). Never called on another user's file.
   */
  own(path: string, mode: number | null): void {
    if (this.ownership.gid !== null) chownSync(path, -1, this.ownership.gid);
    if (this.ownership.shared && mode !== null) chmodSync(path, mode);
  }

  /** Applies the group to a new file (a temp file about to be renamed into place). */
  ownFile(path: string): void {
    if (this.ownership.gid !== null) chownSync(path, -1, this.ownership.gid);
  }

  /** Creates `dir` and its missing parents; returns the first folder it created (undefined: none). */
  async ensureDir(dir: string): Promise<string | undefined> {
    if (this.knownDirs.has(dir)) return undefined;
    const first = await fsp.mkdir(dir, { recursive: true, mode: this.ownership.dirMode });
    this.ownDirs(first, dir);
    this.knownDirs.add(dir);
    return first;
  }

  ensureDirSync(dir: string): string | undefined {
    if (this.knownDirs.has(dir)) return undefined;
    const first = mkdirSync(dir, { recursive: true, mode: this.ownership.dirMode });
    this.ownDirs(first, dir);
    this.knownDirs.add(dir);
    return first;
  }

  /** Forgets that `dir` exists (it was removed behind our back). */
  forget(dir: string): void {
    this.knownDirs.delete(dir);
  }

  /** Applies group and mode to the folders mkdir just created, from `first` down to `last` (the umask would drop them). */
  private ownDirs(first: string | undefined, last: string): void {
    if (first === undefined || (this.ownership.gid === null && !this.ownership.shared)) return;
    for (let dir = last; ; dir = dirname(dir)) {
      this.own(dir, this.ownership.dirMode);
      if (dir === first || dir.length <= first.length) break;
    }
  }
}

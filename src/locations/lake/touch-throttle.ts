import type { Key } from '../../key.js';

/** Keys remembered at most: a forgotten key only costs one more mark update. */
const MAX_REMEMBERED = 100_000;
export const DEFAULT_TOUCH_INTERVAL = 60_000;

/**
 * How often a read moves a key's last-used mark: at most once per `interval` ms per process, so
 * that a hot key read in a loop does not cost a file update per read. Writes and `touch()` always
 * move it (`record`).
 */
export class TouchThrottle {
  private readonly last = new Map<Key, number>();

  constructor(private readonly interval = DEFAULT_TOUCH_INTERVAL) {}

  /** True (and remembered as done now) when a read of `key` should move its mark. */
  due(key: Key, now = Date.now()): boolean {
    if (now - (this.last.get(key) ?? 0) < this.interval) return false;
    this.record(key, now);
    return true;
  }

  /** Remembers that the mark of `key` was moved at `now`. */
  record(key: Key, now = Date.now()): void {
    if (this.last.size > MAX_REMEMBERED) this.last.clear();
    this.last.set(key, now);
  }

  forget(key: Key): void {
    this.last.delete(key);
  }
}

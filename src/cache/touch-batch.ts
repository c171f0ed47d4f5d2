/**
 * Marks of hits on a remote index, throttled and sent together: a hit marks its entry at most once
 * per `interval` per process, and the marks waiting are sent `delay` ms after the first one (or at
 * once when `flushAt` wait). A failure to send is a process warning, once: a mark is not worth
 * failing a hit, and a mark not sent is sent again at the next hit.
 */
import type { Key } from '../key.js';

export interface TouchBatchOptions {
  /** Names the index in the warning. */
  name: string;
  interval: number;
  delay: number;
  flushAt: number;
  send: (keys: Key[]) => Promise<unknown>;
}

/** Keys whose last mark is remembered, at the most: a cleared memory costs one more mark. */
const REMEMBERED = 100_000;

export class TouchBatch {
  private readonly last = new Map<Key, number>();
  private pending = new Set<Key>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private warned = false;

  constructor(private readonly options: TouchBatchOptions) {}

  touch(key: Key): void {
    const now = Date.now();
    const last = this.last.get(key);
    if (last !== undefined && now - last < this.options.interval) return;
    if (this.last.size >= REMEMBERED) this.last.clear();
    this.last.set(key, now);
    this.pending.add(key);
    if (this.pending.size >= this.options.flushAt) void this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), this.options.delay);
      this.timer.unref();
    }
  }

  /** A removed entry is not marked. */
  forget(key: Key): void {
    this.pending.delete(key);
  }

  /** Sends the marks waiting; resolves when every mark sent so far has been answered. */
  flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const keys = [...this.pending];
    this.pending = new Set();
    if (keys.length === 0) return this.flushing;
    const sent = this.options.send(keys).then(
      () => undefined,
      (error: unknown) => {
        for (const key of keys) this.last.delete(key);
        if (this.warned) return;
        this.warned = true;
        process.emitWarning(`${this.options.name}: cannot mark entries as used: ${(error as Error).message}`, { code: 'CAIRN_INDEX_TOUCH' });
      },
    );
    this.flushing = this.flushing.then(() => sent);
    return this.flushing;
  }
}

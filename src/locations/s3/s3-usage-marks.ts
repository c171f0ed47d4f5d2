import type { Key } from '../../key.js';

/**
 * Marks written at once. Few: a mark is a PUT, the gateway's dearest request (an object and a
 * bucket-index update), and the reads' GETs should have most of the server; the rest of the
 * marks go out when the reads pause, or before close() returns.
 */
const IN_FLIGHT = 2;
/** Marks written at once by a close() (or by reads that wait for the backlog): nothing else wants the server then. */
const DRAIN_IN_FLIGHT = 16;
/** Keys queued beyond this make reads wait for the marks (they then go at the marks' pace rather than hold ever more keys). */
const MAX_BACKLOG = 100_000;

/**
 * The last-used marks a bucket's reads owe, written off the read's critical path: a read queues
 * its key here and returns; IN_FLIGHT marks are written at once (DRAIN_IN_FLIGHT once someone waits
 * for them: close, or reads held by a long backlog), a key queued twice before
 * its mark went out is marked once. A mark that fails is reported through `failed` (as Disk's
 * marks are: the read itself succeeded); `idle()` (from close) waits for every queued mark.
 */
export class UsageMarks {
  private readonly queued = new Set<Key>();
  private readonly writing = new Map<Key, Promise<void>>();
  private workers = 0;
  private limit = IN_FLIGHT;
  private drained: { promise: Promise<void>; resolve: () => void } | null = null;

  constructor(
    private readonly mark: (key: Key) => Promise<void>,
    private readonly failed: (key: Key, error: unknown) => void,
  ) {}

  /** Queues the mark of `key`; a promise to wait for when the backlog is long, else null. */
  add(key: Key): Promise<void> | null {
    this.queued.add(key);
    this.startWorkers();
    return this.queued.size > MAX_BACKLOG ? this.idle() : null;
  }

  /** Drops a queued mark of `key` and waits for one being written (a delete must not be followed by a stray mark). */
  async settle(key: Key): Promise<void> {
    this.queued.delete(key);
    await this.writing.get(key);
  }

  /** Resolves once every queued mark is written (or has failed, reported). */
  idle(): Promise<void> {
    if (this.workers === 0) return Promise.resolve();
    // someone waits for the marks: write them as fast as the server takes them
    this.limit = DRAIN_IN_FLIGHT;
    this.startWorkers();
    if (this.drained === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      this.drained = { promise, resolve };
    }
    return this.drained.promise;
  }

  private startWorkers(): void {
    while (this.workers < this.limit && this.workers < this.queued.size) {
      this.workers++;
      void this.work();
    }
  }

  private async work(): Promise<void> {
    for (const key of this.queued) {
      // a Set iterates in insertion order and sees keys added meanwhile: this takes the oldest
      this.queued.delete(key);
      const writing = this.mark(key).catch((error: unknown) => this.failed(key, error));
      this.writing.set(key, writing);
      await writing;
      if (this.writing.get(key) === writing) this.writing.delete(key);
    }
    this.workers--;
    if (this.workers === 0) this.limit = IN_FLIGHT;
    if (this.workers === 0 && this.drained !== null) {
      const { resolve } = this.drained;
      this.drained = null;
      resolve();
    }
  }
}

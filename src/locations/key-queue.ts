import type { Key } from '../key.js';

/**
 * Runs one task per key at a time within a process: a write of a key waits for the write of the
 * same key already under way, then runs (and usually finds the value in place).
 */
export class KeyQueue {
  private readonly running = new Map<Key, Promise<unknown>>();

  async run<T>(key: Key, task: () => Promise<T>): Promise<T> {
    for (let pending = this.running.get(key); pending; pending = this.running.get(key)) {
      await pending.catch(() => undefined);
    }
    const promise = task();
    this.running.set(key, promise);
    try {
      return await promise;
    } finally {
      this.running.delete(key);
    }
  }
}

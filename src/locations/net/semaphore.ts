/**
 * A limit on how many operations run at once (channels of one SSH connection, requests in flight).
 *
 * API
 * - `new Semaphore(limit)`; `await semaphore.acquire()` gives a `release()` function (calling it
 *   twice releases once); `semaphore.run(task)` acquires, runs `task`, and releases however it ends.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // the slot passes straight to the next waiter, so a newcomer cannot overtake it
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await task();
    } finally {
      release();
    }
  }
}

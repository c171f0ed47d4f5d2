/**
 * Runs `work` on the items with up to `inFlight` of them at once, yielding `[item, result]` in the
 * items' order. A failure is thrown when its turn comes (the works already started are waited
 * for first), and a caller that stops early also waits for the works in flight: none is left
 * running behind its back.
 */
export async function* inOrder<T, R>(items: Iterable<T>, inFlight: number, work: (item: T) => Promise<R>): AsyncIterable<[T, R]> {
  const window: [T, Promise<R>][] = [];
  try {
    for (const item of items) {
      const running = work(item);
      running.catch(() => {}); // seen when its turn comes; not an unhandled rejection meanwhile
      window.push([item, running]);
      if (window.length >= inFlight) {
        const [first, result] = window.shift()!;
        yield [first, await result];
      }
    }
    while (window.length > 0) {
      const [first, result] = window.shift()!;
      yield [first, await result];
    }
  } finally {
    await Promise.all(window.map(([, running]) => running.catch(() => null)));
  }
}

/** The items once each, in their first order. */
export function* distinct<T>(items: Iterable<T>): Iterable<T> {
  const seen = new Set<T>();
  for (const item of items) {
    if (seen.has(item)) continue;
    seen.add(item);
    yield item;
  }
}

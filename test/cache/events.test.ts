import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { smartCache, type CacheEvents, type CacheStats, type Explanation } from '../../src/entries/cache.js';
import { MemoryIndex } from '../../src/cache/index-memory.js';
import { Memory } from '../../src/locations/memory.js';
import { Small } from '../../src/locations/compose/small.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

type Seen = { [K in keyof CacheEvents]: [K, CacheEvents[K]] }[keyof CacheEvents];

/** Listens to every event of `cached`, in order. */
function record(cached: { on(event: keyof CacheEvents, listener: (event: unknown) => void): unknown }): Seen[] {
  const seen: Seen[] = [];
  for (const kind of ['hit', 'miss', 'store', 'unstored', 'error'] as const) cached.on(kind, (event: unknown) => seen.push([kind, event] as Seen));
  return seen;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('smartCache events', () => {
  it('a miss then a hit: miss, store, hit, each matching a counter of stats', async () => {
    const cachedSquare = smartCache(tempDir())(async function square(x: number) {
      return x * x;
    });
    const seen = record(cachedSquare);
    expect(await cachedSquare(3)).toBe(9);
    expect(await cachedSquare(3)).toBe(9);
    const key = cachedSquare.key(3);
    expect(seen.map(([kind]) => kind)).toEqual(['miss', 'store', 'hit']);
    expect(seen[0]).toEqual(['miss', { name: 'square', key, replaces: false }]);
    expect(seen[1]![0]).toBe('store');
    expect(seen[1]![1]).toMatchObject({ name: 'square', key, repaired: false });
    expect((seen[1]![1] as CacheEvents['store']).ms).toBeGreaterThanOrEqual(0);
    expect(seen[2]).toEqual(['hit', { name: 'square', key, from: 'entry' }]);
    expect(cachedSquare.stats).toMatchObject({ hits: 1, misses: 1 });
  });

  it('a call joining one in flight is a hit from running', async () => {
    const slow = smartCache(tempDir())(async function slow(x: number) {
      await sleep(50);
      return x + 1;
    });
    const seen = record(slow);
    expect(await Promise.all([slow(1), slow(1)])).toEqual([2, 2]);
    // the first call's miss is reported as it starts, before the second call joins it
    expect(seen.map(([kind, event]) => (kind === 'hit' ? `hit:${event.from}` : kind))).toEqual(['miss', 'hit:running', 'store']);
  });

  it('a corrupted entry: a miss that replaces it, stored as repaired', async () => {
    const index = new MemoryIndex();
    const double = smartCache({ index, storage: new Memory() }, { name: 'double' })(async (x: number) => x * 2);
    await double(5);
    const key = double.key(5);
    let entry;
    for await (const found of index.entries('double')) if (found.key === key) entry = found;
    index.putSync(key, Buffer.from('not an entry'), { fn: entry!.fn, digest: entry!.digest, args: entry!.args, size: 12 }, []);
    const seen = record(double);
    expect(await double(5)).toBe(10);
    expect(seen.map(([kind]) => kind)).toEqual(['miss', 'store']);
    expect(seen[0]![1]).toMatchObject({ replaces: true });
    expect(seen[1]![1]).toMatchObject({ repaired: true });
    expect(double.stats.repaired).toBe(1);
  });

  it('a result whose arguments changed while it ran: unstored, with what changed', async () => {
    const warnings: string[] = [];
    const listener = (warning: Error) => warnings.push(warning.message);
    process.on('warning', listener);
    try {
      const consume = smartCache(tempDir(), { name: 'consume' })(async (list: number[]) => {
        return list.splice(0).length;
      });
      const seen = record(consume);
      const input = [1, 2, 3];
      const key = consume.key(input);
      expect(await consume(input)).toBe(3);
      expect(seen).toEqual([
        ['miss', { name: 'consume', key, replaces: false }],
        ['unstored', { name: 'consume', key, changed: 'arguments' }],
      ]);
      expect(consume.stats.unstored).toBe(1);
      await sleep(0);
      expect(warnings.some((message) => message.includes('changed while it ran'))).toBe(true);
    } finally {
      process.off('warning', listener);
    }
  });

  it('a result no location accepts: an error event with its key, beside onError', async () => {
    const errors: unknown[] = [];
    const storage = new Small(new Memory(), { maxSize: 10 });
    const big = smartCache({ index: new MemoryIndex(), storage }, { name: 'big', onError: (error) => errors.push(error) })(async () => {
      return new Uint8Array(100_000);
    });
    const seen = record(big);
    expect((await big()).length).toBe(100_000);
    const error = seen.find(([kind]) => kind === 'error');
    expect(error).toEqual(['error', { name: 'big', key: big.key(), error: errors[0] }]);
    expect(errors[0]).toMatchObject({ name: 'UnhashableError', message: expect.stringContaining('no location accepted it') });
    expect(big.stats.errors).toBe(1);
    expect(seen.map(([kind]) => kind)).toEqual(['miss', 'error']);
  });

  it('a hit from an entry another cache stored while this one waited for the lock', async () => {
    const index = new MemoryIndex();
    const storage = new Memory();
    const locks = tempDir();
    let runs = 0;
    async function build(x: number) {
      runs++;
      await sleep(200);
      return x * 10;
    }
    // two caches on one index: two Stores, no call in flight shared between them, as two processes
    const first = smartCache({ index, storage }, { lock: { dir: locks, poll: 10 } })(build);
    const second = smartCache({ index, storage }, { lock: { dir: locks, poll: 10 } })(build);
    const seen = record(second);
    const running = first(4);
    await sleep(50);
    expect(await second(4)).toBe(40);
    expect(await running).toBe(40);
    expect(runs).toBe(1);
    expect(seen).toEqual([['hit', { name: 'build', key: second.key(4), from: 'lock' }]]);
  });

  it('off removes a listener; a listener that throws is a warning and the call still returns', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const inc = smartCache(tempDir(), { name: 'inc' })(async (x: number) => x + 1);
      const hits: number[] = [];
      const counting = () => hits.push(1);
      const throwing = () => {
        throw new Error('listener bug');
      };
      expect(inc.on('hit', counting).on('hit', throwing)).toBe(inc);
      await inc(1);
      expect(await inc(1)).toBe(2);
      expect(hits).toHaveLength(1);
      inc.off('hit', counting).off('hit', throwing);
      await inc(1);
      expect(hits).toHaveLength(1);
      await sleep(0);
      expect(warnings.filter((warning) => (warning as Error & { code?: string }).code === 'CAIRN_SMARTCACHE_LISTENER').map((warning) => warning.message)).toEqual([
        "smartCache(inc): a 'hit' listener threw: listener bug",
      ]);
      expect(inc.stats.hits).toBe(2);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('an unknown event name or a listener that is not a function is a TypeError', () => {
    const inc = smartCache(tempDir())(async (x: number) => x + 1);
    // @ts-expect-error: there is no 'hits' event
    expect(() => inc.on('hits', () => undefined)).toThrow(/no event named hits \(the events: hit, miss, store, unstored, error\)/);
    // @ts-expect-error: a listener is a function
    expect(() => inc.on('hit', 'log')).toThrow(TypeError);
  });

  it('listeners get typed events', () => {
    const inc = smartCache(tempDir())(async (x: number) => x + 1);
    inc.on('hit', (event) => expectTypeOf(event.from).toEqualTypeOf<'entry' | 'running' | 'lock'>());
    inc.on('store', (event) => expectTypeOf(event.ms).toEqualTypeOf<number>());
    inc.on('unstored', (event) => expectTypeOf(event.changed).toEqualTypeOf<'arguments' | 'captured values'>());
    inc.on('error', (event) => expectTypeOf(event.key).toEqualTypeOf<string | null>());
  });
});

describe('smartCache.of: a decorated method with its explain, stats and events in its type', () => {
  const dir = tempDir();
  let runs = 0;

  class Pipeline {
    constructor(readonly lowercase: boolean) {}

    @smartCache(dir)
    async embed(text: string) {
      runs++;
      return (this.lowercase ? text.toLowerCase() : text).split(' ').map((word) => word.length);
    }

    @smartCache(dir)
    async #secret(n: number) {
      return n * 7;
    }

    secret(n: number) {
      return { value: this.#secret(n), handle: smartCache.of(this.#secret, this) };
    }
  }

  it('explain, key, stats and on through smartCache.of(instance.method), typed by the method', async () => {
    const pipeline = new Pipeline(true);
    const embed = smartCache.of(pipeline.embed);
    expectTypeOf(embed.explain).parameters.toEqualTypeOf<[text: string]>();
    expectTypeOf(embed.explain).returns.resolves.toEqualTypeOf<Explanation>();
    expectTypeOf(embed.stats).toEqualTypeOf<CacheStats>();
    expectTypeOf(embed).returns.resolves.toEqualTypeOf<number[]>();
    // @ts-expect-error: the decorated method's declared type has no stats (a decorator cannot add it)
    expect(pipeline.embed.stats).toBe(embed.stats);
    // @ts-expect-error: explain takes the method's arguments
    await expect(embed.explain(42)).resolves.toMatchObject({ hit: false });
    const seen = record(embed);
    expect((await embed.explain('Hello World')).hit).toBe(false);
    expect(await pipeline.embed('Hello World')).toEqual([5, 5]);
    expect(await embed.explain('Hello World')).toMatchObject({ hit: true, key: embed.key('Hello World') });
    // the key follows this instance: another state, another key
    expect(smartCache.of(new Pipeline(false).embed).key('Hello World')).not.toBe(embed.key('Hello World'));
    expect(await new Pipeline(true).embed('Hello World')).toEqual([5, 5]);
    expect(runs).toBe(1);
    // one function for every instance: one stats, one set of listeners
    expect(seen.map(([kind]) => kind)).toEqual(['miss', 'store', 'hit']);
    expect(embed.stats).toMatchObject({ hits: 1, misses: 1 });
    expect(smartCache.of(new Pipeline(true).embed).stats).toBe(embed.stats);
  });

  it('a private method, given with its instance', async () => {
    const pipeline = new Pipeline(true);
    const { value, handle } = pipeline.secret(6);
    expect(await value).toBe(42);
    expect(await handle.explain(6)).toMatchObject({ hit: true });
    expect(await handle(6)).toBe(42);
    expect(handle.stats).toMatchObject({ hits: 1, misses: 1 });
  });

  it('a plain wrapped function comes back as it is; anything else is a TypeError', () => {
    const wrapped = smartCache(tempDir())(async (x: number) => x);
    expect(smartCache.of(wrapped)).toBe(wrapped);
    expect(() => smartCache.of(async (x: number) => x)).toThrow(/not a function or method cached by smartCache/);
    const pipeline = new Pipeline(true);
    expect(() => smartCache.of(pipeline.embed.bind(pipeline))).toThrow(TypeError);
    // @ts-expect-error: a function is expected
    expect(() => smartCache.of('embed')).toThrow(/expected a cached function or method/);
  });
});

/**
 * What smartCache tracks within one process: captured data read again at every call, state the
 * function keeps for itself, values it cannot key (a loud warning, an error with `strict`), bound
 * functions, and results whose inputs changed while the function ran.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { smartCache } from '../../src/cache/index.js';
import { UnhashableError } from '../../src/errors.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

/** Runs `body` and returns the process warnings of `code` it emitted. */
async function warningsOf(code: string, body: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const listener = (warning: Error & { code?: string }) => {
    if (warning.code === code) seen.push(warning.message);
  };
  process.on('warning', listener);
  try {
    await body();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', listener);
  }
  return seen;
}

describe('captured data', () => {
  it('is read again at every call: changing it in the process is a miss with the new value', async () => {
    const CFG = { sigma: 2 };
    let runs = 0;
    const f = smartCache(tempDir())(async (x: number) => {
      runs++;
      return x * CFG.sigma;
    });
    expect(await f(5)).toBe(10);
    expect(await f(5)).toBe(10);
    CFG.sigma = 3;
    expect(await f(5)).toBe(15);
    expect(runs).toBe(2);
    CFG.sigma = 2;
    expect(await f(5)).toBe(10);
    expect(runs).toBe(2);
  });

  it('that the function fills itself (a memo table, a counter) is its state, not an input', async () => {
    const seen = new Set<number>();
    const counter = { calls: 0 };
    const f = smartCache(tempDir())(async (x: number) => {
      seen.add(x);
      counter.calls++;
      return x + 1;
    });
    expect([await f(1), await f(2), await f(1), await f(2)]).toEqual([2, 3, 2, 3]);
    expect(f.stats).toMatchObject({ hits: 2, misses: 2 });
    expect(counter.calls).toBe(2);
  });

  it('bound functions are keyed by their target and bound arguments', async () => {
    const dir = tempDir();
    const scale = (k: number, x: number) => k * x;
    const byTwo = scale.bind(null, 2);
    const byThree = scale.bind(null, 3);
    const f = smartCache(dir)(async (x: number) => byTwo(x));
    const g = smartCache(dir)(async (x: number) => byThree(x));
    expect([await f(5), await g(5)]).toEqual([10, 15]);
  });
});

describe('what cannot be tracked is never silent', () => {
  it('a captured value that cannot be keyed warns, and is an error with strict', async () => {
    const pending = Promise.resolve(3);
    const make = (strict: boolean) => smartCache(tempDir(), { strict })(async (x: number) => x + (await pending));
    const warnings = await warningsOf('CAIRN_SMARTCACHE_UNTRACKED', async () => expect(await make(false)(1)).toBe(4));
    expect(warnings.some((message) => message.includes('pending cannot be keyed'))).toBe(true);
    await expect(make(true)(1)).rejects.toThrow(UnhashableError);
  });

  it('eval warns: what it reads cannot be listed', async () => {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars -- read by the eval
    const f = smartCache(tempDir())(async (x: number) => eval('x * 2') as number);
    const warnings = await warningsOf('CAIRN_SMARTCACHE_UNTRACKED', async () => expect(await f(2)).toBe(4));
    expect(warnings.join('\n')).toMatch(/uses eval\(\)/);
  });
});

describe('inputs that change while the function runs', () => {
  it('the result is returned, not stored, and the next call computes again', async () => {
    let runs = 0;
    const f = smartCache(tempDir())(async (xs: number[]) => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 10));
      return xs[0]! * 2;
    });
    const xs = [1];
    const warnings = await warningsOf('CAIRN_SMARTCACHE_MUTATED', async () => {
      const pending = f(xs);
      xs[0] = 100;
      expect(await pending).toBe(200);
    });
    expect(warnings).toHaveLength(1);
    expect(f.stats.unstored).toBe(1);
    expect(await f([1])).toBe(2);
    expect(await f([100])).toBe(200);
    expect(runs).toBe(3);
  });
});

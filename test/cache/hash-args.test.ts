import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnhashableError } from '../../src/errors.js';
import { cacheKey, hashValue } from '../../src/cache/hash-args.js';
import { markStable, markUnstable } from '../../src/cache/mark.js';

/** Rebuilds an object with its keys inserted in another order, recursively. */
function shuffled(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((item) => shuffled(item, seed));
  if (typeof value !== 'object' || value === null) return value;
  const keys = Object.keys(value);
  const order = keys.map((key, index) => ({ key, rank: (index * 7919 + seed) % (keys.length + 3) })).sort((a, b) => a.rank - b.rank);
  const copy: Record<string, unknown> = {};
  for (const { key } of order.reverse()) {
    // defineProperty, so that an own "__proto__" key stays a key
    Object.defineProperty(copy, key, { value: shuffled((value as Record<string, unknown>)[key], seed), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

const json = fc.jsonValue();

/** JSON with sorted keys: equal exactly when two JSON values are the same value. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value !== 'object' || value === null) return Object.is(value, -0) ? '-0' : JSON.stringify(value);
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(',')}}`;
}

describe('argument hashing', () => {
  it('object key order never matters', () => {
    fc.assert(
      fc.property(json, fc.nat(), (value, seed) => {
        expect(hashValue(shuffled(value, seed))).toBe(hashValue(value));
      }),
    );
  });

  it('two JSON values get the same key exactly when they are the same value', () => {
    fc.assert(
      fc.property(json, json, (a, b) => {
        expect(hashValue(a) === hashValue(b)).toBe(canonicalJson(a) === canonicalJson(b));
      }),
    );
  });

  it('numbers follow Object.is: -0 differs from 0, every NaN is one value', () => {
    expect(hashValue(-0)).not.toBe(hashValue(0));
    expect(hashValue({ x: -0 })).not.toBe(hashValue({ x: 0 }));
    expect(hashValue(NaN)).toBe(hashValue(Number('not a number')));
    fc.assert(
      fc.property(fc.double(), fc.double(), (a, b) => {
        expect(hashValue(a) === hashValue(b)).toBe(Object.is(a, b));
      }),
    );
  });

  it('a missing key differs from a key holding undefined; a hole from undefined', () => {
    expect(hashValue({ a: 1 })).not.toBe(hashValue({ a: 1, b: undefined }));
    expect(hashValue([1, , 3])).not.toBe(hashValue([1, undefined, 3])); // eslint-disable-line no-sparse-arrays
    expect(hashValue(null)).not.toBe(hashValue(undefined));
  });

  it('types are never confused: 1, "1", 1n, true, [1], {0: 1}', () => {
    const values = [1, '1', 1n, true, [1], { 0: 1 }, new Date(1), new Set([1]), new Map([[0, 1]]), new Uint8Array([1])];
    expect(new Set(values.map((value) => hashValue(value))).size).toBe(values.length);
  });

  it('every TypedArray kind is distinct for the same bytes; equal bytes and kind are equal', () => {
    const bytes = new Uint8Array([0, 0, 128, 63, 0, 0, 0, 64]);
    const views = [
      new Uint8Array(bytes),
      new Int8Array(bytes.buffer.slice(0)),
      new Uint8ClampedArray(bytes.buffer.slice(0)),
      new Int16Array(bytes.buffer.slice(0)),
      new Uint16Array(bytes.buffer.slice(0)),
      new Int32Array(bytes.buffer.slice(0)),
      new Uint32Array(bytes.buffer.slice(0)),
      new Float32Array(bytes.buffer.slice(0)),
      new Float64Array(bytes.buffer.slice(0)),
      new BigInt64Array(bytes.buffer.slice(0)),
      new BigUint64Array(bytes.buffer.slice(0)),
      new DataView(bytes.buffer.slice(0)),
      Buffer.from(bytes),
    ];
    expect(new Set(views.map((view) => hashValue(view))).size).toBe(views.length);
    expect(hashValue(new Float32Array([1, 2]))).toBe(hashValue(new Float32Array([1, 2])));
    // a view is keyed by the bytes it shows, not by the buffer behind it
    const big = new Float32Array([9, 1, 2, 9]);
    expect(hashValue(big.subarray(1, 3))).toBe(hashValue(new Float32Array([1, 2])));
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 50 }), fc.float32Array({ maxLength: 50 }), (a, b) => {
        const same = Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
        expect(hashValue(a) === hashValue(b)).toBe(same);
      }),
    );
  });

  it('Map and Set are keyed in insertion order, which a function can observe', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(fc.string(), json), { selector: ([key]) => key, minLength: 2, maxLength: 20 }), (entries) => {
        const forward = new Map(entries);
        expect(hashValue(new Map(entries))).toBe(hashValue(forward));
        expect(hashValue(new Map([...entries].reverse()))).not.toBe(hashValue(forward));
        expect(hashValue(new Set(entries.map(([key]) => key)))).not.toBe(hashValue(new Set([...entries].reverse().map(([key]) => key))));
        expect(hashValue(new Map(entries.slice(1)))).not.toBe(hashValue(forward));
      }),
    );
    // [...m.values()] as a feature vector: the two orders give two different vectors
    expect(hashValue(new Map([['a', 1], ['b', 2]]))).not.toBe(hashValue(new Map([['b', 2], ['a', 1]])));
    expect(hashValue(new Set([1, 2]))).not.toBe(hashValue(new Set([2, 1])));
  });

  it('BigInt, Date, RegExp, URL and boxed values are keyed by value', () => {
    expect(hashValue(2n ** 80n)).toBe(hashValue(BigInt('1208925819614629174706176')));
    expect(hashValue(-5n)).not.toBe(hashValue(5n));
    expect(hashValue(new Date(5))).toBe(hashValue(new Date(5)));
    expect(hashValue(new Date(5))).not.toBe(hashValue(new Date(6)));
    expect(hashValue(/a/g)).not.toBe(hashValue(/a/i));
    expect(hashValue(new URL('https://example.org/a'))).not.toBe(hashValue(new URL('https://example.org/b')));
  });

  it('cycles are keyed by their shape, and differently shaped cycles differ', () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = a;
    const b: Record<string, unknown> = { x: 1 };
    b.self = b;
    expect(hashValue(a)).toBe(hashValue(b));
    const c: Record<string, unknown> = { x: 1 };
    c.self = { x: 1, self: c };
    expect(hashValue(c)).not.toBe(hashValue(a));
    const cyclic = () => {
      const list: unknown[] = [1];
      list.push(list);
      const map = new Map<string, unknown>();
      map.set('me', map);
      return [list, map];
    };
    expect(hashValue(cyclic())).toBe(hashValue(cyclic()));
    expect(hashValue(cyclic())).not.toBe(hashValue([[1, [1]], new Map([['me', new Map()]])]));
  });

  it('one object reached twice differs from two equal objects (a function can tell with ===)', () => {
    const shared = { x: 1 };
    expect(hashValue([shared, shared])).not.toBe(hashValue([{ x: 1 }, { x: 1 }]));
    const again = { x: 1 };
    expect(hashValue([shared, shared])).toBe(hashValue([again, again]));
  });

  it('class instances: by constructor name and own fields, or by their cacheKey hook', () => {
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    class Other {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    expect(hashValue(new Point(1, 2))).toBe(hashValue(new Point(1, 2)));
    expect(hashValue(new Point(1, 2))).not.toBe(hashValue(new Point(1, 3)));
    expect(hashValue(new Point(1, 2))).not.toBe(hashValue(new Other(1, 2)));
    expect(hashValue(new Point(1, 2))).not.toBe(hashValue({ x: 1, y: 2 }));
    class Session {
      constructor(
        readonly id: string,
        readonly socket: unknown,
      ) {}
      [cacheKey]() {
        return this.id;
      }
    }
    expect(hashValue(new Session('a', Promise.resolve()))).toBe(hashValue(new Session('a', Symbol('other'))));
    expect(hashValue(new Session('a', null))).not.toBe(hashValue(new Session('b', null)));
  });

  it('marked functions are keyed by code or pinned name', () => {
    const one = markUnstable(function step(x: number) {
      return x + 1;
    });
    const two = markUnstable(function step(x: number) {
      return x + 2;
    });
    const same = markUnstable(function step(x: number) {
      // a comment does not count
      return x   +   1;
    });
    expect(hashValue(one)).not.toBe(hashValue(two));
    expect(hashValue(one)).toBe(hashValue(same));
    const pinnedA = markStable(function a() {
      return 1;
    }, 'v1');
    const pinnedB = markStable(function b() {
      return 2;
    }, 'v1');
    expect(hashValue(pinnedA)).toBe(hashValue(pinnedB));
  });

  it('values that cannot be keyed are an UnhashableError naming the argument', () => {
    const cases: [unknown, string][] = [
      [[{ opts: { callback: new WeakSet() } }], 'args[0].opts.callback'],
      [[1, Symbol('s')], 'args[1]'],
      [[{ pending: Promise.resolve(1) }], 'args[0].pending'],
      [[{ 'odd key': new WeakMap() }], 'args[0]["odd key"]'],
      [[new Map([['k', Symbol('v')]])], 'args[0]<entry 0>'],
    ];
    for (const [value, path] of cases) {
      let error: unknown;
      try {
        hashValue(value, 'args');
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(UnhashableError);
      expect((error as UnhashableError).path).toBe(path);
      expect((error as UnhashableError).code).toBe('ERR_UNHASHABLE');
      expect((error as Error).message).toContain(path);
    }
  });

  it('a large Float32Array is keyed from its bytes in place', () => {
    const big = new Float32Array(4_000_000);
    for (let i = 0; i < big.length; i += 997) big[i] = i;
    const key = hashValue(big);
    big[123_456] = 1;
    expect(hashValue(big)).not.toBe(key);
    big[123_456] = 0;
    expect(hashValue(big)).toBe(key);
  });
});

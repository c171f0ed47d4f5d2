/**
 * Results come back as they were stored: same types, same values, same sharing, at every size
 * (in the body below `minPart`, as parts above it). What cannot be stored is a typed error.
 */
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { smartCache } from '../../src/cache/index.js';
import { joinValue, MAX_RESULT_DEPTH, splitValue } from '../../src/cache/serialize.js';
import { InvalidValueError, UnstorableError } from '../../src/errors.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

/** Stores and reads back, with the parts copied as a storage would hand them back. */
function roundTrip<T>(value: T, minPart = 4096): T {
  const { body, parts } = splitValue(value, minPart);
  return joinValue(Buffer.from(body), parts.map((part) => Buffer.from(part))) as T;
}

function unstorable(value: unknown): UnstorableError {
  try {
    splitValue(value, 4096);
  } catch (error) {
    if (error instanceof UnstorableError) return error;
    throw new Error(`expected an UnstorableError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected an UnstorableError, the value was stored');
}

type BinaryType = { name: string; make: (bytes: number) => ArrayBufferView | ArrayBuffer };
const VIEW_TYPES = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  // from Node 24 on
  ...((globalThis as { Float16Array?: typeof Float32Array }).Float16Array ? [(globalThis as unknown as { Float16Array: typeof Float32Array }).Float16Array] : []),
];
const BINARY_TYPES: BinaryType[] = [
  ...VIEW_TYPES.map((View) => ({
    name: View.name,
    make: (bytes: number) => {
      const buffer = new ArrayBuffer(bytes);
      new Uint8Array(buffer).forEach((_, i, all) => (all[i] = (i * 37 + 11) & 0xff));
      return new View(buffer);
    },
  })),
  { name: 'DataView', make: (bytes) => new DataView(new Uint8Array(bytes).map((_, i) => i & 0xff).buffer) },
  { name: 'Buffer', make: (bytes) => Buffer.from(new Uint8Array(bytes).map((_, i) => (i * 3) & 0xff)) },
  { name: 'ArrayBuffer', make: (bytes) => new Uint8Array(bytes).map((_, i) => (i * 5) & 0xff).buffer },
  { name: 'SharedArrayBuffer', make: (bytes) => {
    const shared = new SharedArrayBuffer(bytes);
    new Uint8Array(shared).forEach((_, i, all) => (all[i] = (i * 7) & 0xff));
    return shared as unknown as ArrayBuffer;
  } },
];

const bytesOf = (value: ArrayBufferView | ArrayBuffer) =>
  Buffer.from(ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value)).toString('hex');

describe('binary results', () => {
  it('every TypedArray, DataView, Buffer, ArrayBuffer comes back with its type and bytes, below and above minPart', () => {
    for (const { name, make } of BINARY_TYPES) {
      for (const bytes of [0, 8, 4088, 4096, 40_000]) {
        const value = make(bytes);
        const { parts } = splitValue(value, 4096);
        expect(parts.length, `${name} of ${bytes} bytes`).toBe(bytes >= 4096 ? 1 : 0);
        const back = roundTrip({ value }).value;
        expect(Object.getPrototypeOf(back), `${name} of ${bytes} bytes`).toBe(Object.getPrototypeOf(value));
        expect(bytesOf(back)).toBe(bytesOf(value));
        if (ArrayBuffer.isView(back)) {
          // a buffer of its own: views on it (`new Float32Array(r.buffer)`) see exactly the value
          expect(back.byteOffset).toBe(0);
          expect(back.buffer.byteLength).toBe(bytes);
        }
      }
    }
  });

  it('a Uint8Array is not a Buffer, and a Buffer is not a Uint8Array, after a round trip', () => {
    const back = roundTrip([new Uint8Array([1, 2]), Buffer.from([1, 2])]);
    expect(Buffer.isBuffer(back[0])).toBe(false);
    expect(back[0]).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(back[1])).toBe(true);
  });

  it('a view on part of a buffer comes back holding the bytes it shows', () => {
    const whole = new Float32Array([1, 2, 3, 4]);
    const back = roundTrip(whole.subarray(1, 3), 4);
    expect(Array.from(back)).toEqual([2, 3]);
    expect(back.buffer.byteLength).toBe(8);
  });

  it('parts are read in place when the storage hands back a buffer of their own', () => {
    const { body, parts } = splitValue(new Float64Array(1000).fill(0.5), 4096);
    const stored = Buffer.alloc(parts[0]!.byteLength);
    stored.set(parts[0]!);
    const back = joinValue(body, [stored]) as Float64Array;
    expect(back.buffer).toBe(stored.buffer);
    expect(back[999]).toBe(0.5);
  });
});

describe('shared references and cycles', () => {
  it('an object reached twice comes back as one object', () => {
    const a = { x: 1 };
    const back = roundTrip([a, a, { a }] as [object, object, { a: object }]);
    expect(back[0]).toBe(back[1]);
    expect(back[2].a).toBe(back[0]);
    const big = new Float32Array(2000);
    const map = new Map<unknown, unknown>([[a, big]]);
    const again = roundTrip({ map, big, a, set: new Set([a]) }, 4096);
    expect(again.map.get(again.a)).toBe(again.big);
    expect([...again.set][0]).toBe(again.a);
    expect(splitValue({ map, big }, 4096).parts).toHaveLength(1);
  });

  it('cycles round-trip: objects, arrays, Maps and Sets that contain themselves', () => {
    const node: Record<string, unknown> = { name: 'root' };
    node.self = node;
    node.children = [node, { parent: node }];
    const map = new Map<string, unknown>();
    map.set('me', map);
    const set = new Set<unknown>();
    set.add(set);
    const list: unknown[] = [1];
    list.push(list);
    const back = roundTrip({ node, map, set, list });
    expect(back.node.self).toBe(back.node);
    expect((back.node.children as unknown[])[0]).toBe(back.node);
    expect(((back.node.children as unknown[])[1] as { parent: unknown }).parent).toBe(back.node);
    expect(back.map.get('me')).toBe(back.map);
    expect([...back.set][0]).toBe(back.set);
    expect(back.list[1]).toBe(back.list);
  });
});

describe('values that CBOR would change', () => {
  it('-0, NaN, undefined in objects and arrays, sparse arrays', () => {
    const back = roundTrip({ z: -0, n: NaN, u: undefined, list: [-0, undefined, NaN, 0], inf: -Infinity });
    expect(Object.is(back.z, -0)).toBe(true);
    expect(back.n).toBeNaN();
    expect('u' in back && back.u === undefined).toBe(true);
    expect(Object.is(back.list[0], -0)).toBe(true);
    expect(1 in back.list && back.list[1] === undefined).toBe(true);
    expect(back.list[2]).toBeNaN();
    expect(Object.is(back.list[3], 0)).toBe(true);
    expect(back.inf).toBe(-Infinity);
    // eslint-disable-next-line no-sparse-arrays
    const sparse = roundTrip([1, , 3, , ]);
    expect(sparse).toHaveLength(4);
    expect(1 in sparse).toBe(false);
    expect(3 in sparse).toBe(false);
    expect(sparse[2]).toBe(3);
    const long = new Array(1000);
    long[999] = 'end';
    expect(Object.keys(roundTrip(long))).toEqual(['999']);
  });

  it('BigInt, Date, RegExp, Map and Set (in their order)', () => {
    const regexp = /a(b)?/gu;
    regexp.lastIndex = 3;
    const value = {
      big: [0n, -1n, 2n ** 64n, -(2n ** 100n)],
      dates: [new Date(0), new Date(Date.UTC(2024, 1, 29, 12)), new Date(NaN)],
      regexp,
      map: new Map<unknown, unknown>([['b', 1], ['a', 2], [3, 'three'], [-0, 'minus zero']]),
      set: new Set(['z', 'a', 1]),
    };
    const back = roundTrip(value);
    expect(back.big).toEqual(value.big);
    expect(back.dates.map((date) => date.getTime())).toEqual([0, Date.UTC(2024, 1, 29, 12), NaN]);
    expect(back.dates[2]).toBeInstanceOf(Date);
    expect(back.regexp).toBeInstanceOf(RegExp);
    expect(back.regexp.source).toBe('a(b)?');
    expect(back.regexp.flags).toBe('gu');
    expect(back.regexp.lastIndex).toBe(3);
    expect([...back.map]).toEqual([...value.map]);
    expect([...back.set]).toEqual(['z', 'a', 1]);
  });

  it('lone surrogates, __proto__ keys, null-prototype objects', () => {
    const own = JSON.parse('{"__proto__": {"x": 1}, "a": 2}') as Record<string, unknown>;
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { k: 1 });
    const back = roundTrip({ lone: '\uD800', pair: '\uD800\uDC00', replaced: '\uFFFD', keys: { '\uDC00': 1, '\uFFFD': 2 }, own, bare });
    expect(back.lone).toBe('\uD800');
    expect(back.pair).toBe('\u{10000}');
    expect(back.replaced).toBe('\uFFFD');
    expect(Object.keys(back.keys)).toEqual(['\uDC00', '\uFFFD']);
    expect(Object.getPrototypeOf(back.own)).toBe(Object.prototype);
    expect(Object.keys(back.own)).toEqual(['__proto__', 'a']);
    expect(back.own['__proto__']).toEqual({ x: 1 });
    expect(Object.getPrototypeOf(back.bare)).toBe(null);
    expect(back.bare.k).toBe(1);
  });

  it('URL and boxed primitives come back as themselves', () => {
    const back = roundTrip([new URL('https://example.org/a?b=c#d'), new Number(1), new Number(-0), new String('x\uD800'), new Boolean(false), Object(1n)]);
    expect(back[0]).toBeInstanceOf(URL);
    expect((back[0] as URL).href).toBe('https://example.org/a?b=c#d');
    expect(back[1]).toBeInstanceOf(Number);
    expect(Object.is((back[2] as number).valueOf(), -0)).toBe(true);
    expect(back[3]).toBeInstanceOf(String);
    expect(back[3]!.valueOf()).toBe('x\uD800');
    expect(back[4]).toBeInstanceOf(Boolean);
    expect(back[4]!.valueOf()).toBe(false);
    expect(typeof back[5]).toBe('object');
    expect(back[5]!.valueOf()).toBe(1n);
  });

  it('any generated value comes back deeply and strictly equal (prototypes, -0, holes, types)', () => {
    const units = fc.array(fc.constantFrom(0x61, 0xd800, 0xdc00, 0xfffd, 0xe9, 0x1f), { maxLength: 5 }).map((codes) => String.fromCharCode(...codes));
    const value = fc.anything({
      key: fc.oneof(units, fc.constant('__proto__')),
      values: [fc.double(), fc.integer(), units, fc.boolean(), fc.constant(null), fc.constant(undefined), fc.bigInt()],
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withNullPrototype: true,
      withSet: true,
      withSparseArray: true,
      withTypedArray: true,
      maxDepth: 4,
    });
    fc.assert(
      fc.property(value, fc.constantFrom(0, 16, 4096), (item, minPart) => {
        expect(isDeepStrictEqual(roundTrip(item, minPart), item)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('what cannot be stored is an UnstorableError naming where', () => {
  it('class instances, functions, symbols, Promises, built-in subclasses, Errors', () => {
    class Point {
      constructor(readonly x: number) {}
    }
    class Registry extends Map {}
    const cases: [unknown, string][] = [
      [{ items: [1, new Point(1)] }, 'result.items[1]'],
      [{ f: () => 1 }, 'result.f'],
      [[Symbol('s')], 'result[0]'],
      [{ pending: Promise.resolve(1) }, 'result.pending'],
      [new Map([['k', new Registry()]]), 'result<entry 0>'],
      [{ 'odd key': new Error('e') }, 'result["odd key"]'],
      [{ boxed: Object(Symbol('s')) }, 'result.boxed'],
      [{ [Symbol('k')]: 1 }, 'result'],
      [{ weak: new WeakMap() }, 'result.weak'],
    ];
    for (const [value, path] of cases) {
      const error = unstorable(value);
      expect(error.path, path).toBe(path);
      expect(error.code).toBe('ERR_UNSTORABLE');
      expect(error.message).toContain(path);
    }
    expect(unstorable({ p: new Point(1) }).message).toContain('Point');
  });

  it('a throwing getter, with its cause', () => {
    const failure = new Error('no');
    const error = unstorable({
      a: {
        get b() {
          throw failure;
        },
      },
    });
    expect(error.path).toBe('result.a.b');
    expect(error.cause).toBe(failure);
    const { proxy, revoke } = Proxy.revocable([1], {});
    revoke();
    expect(unstorable({ list: [0, proxy] }).path).toBe('result.list[1]');
    const element = unstorable([
      1,
      new Proxy([2], {
        get() {
          throw new Error('trap');
        },
      }),
    ]);
    expect(element.path).toBe('result[1]');
    expect((element.cause as Error).message).toBe('trap');
  });

  it(`nesting up to ${MAX_RESULT_DEPTH} levels is stored, deeper is an error, not a stack overflow`, () => {
    const nested = (depth: number) => {
      let value: unknown = new Float32Array([1]);
      for (let i = 0; i < depth; i++) value = i % 3 === 0 ? new Map([['k', value]]) : i % 3 === 1 ? new Set([value]) : [value];
      return value;
    };
    const deepest = nested(MAX_RESULT_DEPTH - 1);
    expect(isDeepStrictEqual(roundTrip(deepest), deepest)).toBe(true);
    const error = unstorable(nested(MAX_RESULT_DEPTH * 20));
    expect(error.message).toContain(`${MAX_RESULT_DEPTH} levels`);
    expect(error.message.length).toBeLessThan(1000);
  });

  it('a damaged body or a missing part is an InvalidValueError (read as a damaged entry)', () => {
    const { body } = splitValue({ big: new Float32Array(2000) }, 4096);
    expect(() => joinValue(body, [])).toThrow(InvalidValueError);
    expect(() => joinValue(body.subarray(0, body.length - 3), [])).toThrow(InvalidValueError);
  });
});

describe('through smartCache', () => {
  it('a hit gives back the types, values and sharing of what was returned', async () => {
    let runs = 0;
    const make = smartCache(tempDir(), { minPart: 64 })(function make(n: number) {
      runs++;
      const shared = { n };
      const out: Record<string, unknown> = { shared, again: shared, zero: -0, lone: '\uD800', url: new URL('https://example.org/'), big: new Float32Array(100).fill(n), small: new Int16Array([n]) };
      out.self = out;
      return out;
    });
    await make(2);
    const back = await make(2);
    expect(runs).toBe(1);
    expect(back.again).toBe(back.shared);
    expect(back.self).toBe(back);
    expect(Object.is(back.zero, -0)).toBe(true);
    expect(back.lone).toBe('\uD800');
    expect(back.url).toBeInstanceOf(URL);
    expect(back.big).toBeInstanceOf(Float32Array);
    expect((back.big as Float32Array)[99]).toBe(2);
    expect(back.small).toBeInstanceOf(Int16Array);
  });

  it('a class instance result is returned, reported through onError and not stored', async () => {
    class Model {
      constructor(readonly weights: number[]) {}
    }
    const errors: unknown[] = [];
    let runs = 0;
    const fit = smartCache(tempDir(), { onError: (error) => errors.push(error) })(function fit(n: number) {
      runs++;
      return new Model([n]);
    });
    expect(await fit(1)).toBeInstanceOf(Model);
    expect(await fit(1)).toBeInstanceOf(Model);
    expect(runs).toBe(2);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBeInstanceOf(UnstorableError);
    expect((errors[0] as UnstorableError).path).toBe('result');
  });
});

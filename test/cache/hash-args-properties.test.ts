/**
 * Property tests of argument keys against a model of what a function can observe: two values key
 * alike exactly when the model sees them as one. Values are drawn from small pools (keys,
 * symbols, numbers), so equal and nearly equal pairs are common, and pairs are also made by
 * changing one thing in a value: an order, a type, the sign of a zero, a symbol key, a surrogate...
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashValue } from '../../src/cache/hash-args.js';

const LOCAL = Symbol('local');
const SYMBOLS = [Symbol.for('a'), Symbol.iterator, LOCAL];
const SYMBOL_NAMES = new Map<symbol, string>([
  [Symbol.for('a'), 'registered:a'],
  [Symbol.iterator, 'well-known:iterator'],
  [LOCAL, 'local:local'],
]);

class Alpha {
  constructor(readonly v: unknown) {}
}
const Beta = (() =>
  class Alpha {
    constructor(readonly v: unknown) {}
    twice() {
      return [this.v, this.v];
    }
  })();
const CLASSES = new Map<unknown, string>([
  [Alpha, 'Alpha#1'],
  [Beta, 'Alpha#2'],
]);

/** What a function can observe of a value, as text: the model the keys are checked against. */
function observe(value: unknown, seen = new Map<object, number>()): string {
  switch (typeof value) {
    case 'number':
      return Number.isNaN(value) ? 'NaN' : Object.is(value, -0) ? 'n-0' : `n${value}`;
    case 'string':
      // every UTF-16 code unit, lone surrogates included
      return `s${Array.from({ length: value.length }, (_, i) => value.charCodeAt(i)).join(',')}`;
    case 'bigint':
      return `b${value}`;
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'symbol':
      return `y${SYMBOL_NAMES.get(value)}`;
    case 'object': {
      if (value === null) return 'null';
      const index = seen.get(value);
      if (index !== undefined) return `ref${index}`;
      seen.set(value, seen.size);
      if (Array.isArray(value)) return `[${Array.from({ length: value.length }, (_, i) => (i in value ? observe(value[i], seen) : 'hole')).join(' ')}]`;
      if (value instanceof Map) return `map(${[...value].map(([k, v]) => `${observe(k, seen)}=>${observe(v, seen)}`).join(' ')})`;
      if (value instanceof Set) return `set(${[...value].map((v) => observe(v, seen)).join(' ')})`;
      if (ArrayBuffer.isView(value)) return `${value.constructor.name}<${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}>`;
      if (value instanceof Date) return `date${value.getTime()}`;
      const klass = CLASSES.get(Object.getPrototypeOf(value)?.constructor);
      const fields = Object.keys(value)
        .sort()
        .map((key) => `${observe(key)}:${observe((value as Record<string, unknown>)[key], seen)}`);
      const symbols = Object.getOwnPropertySymbols(value)
        .sort((a, b) => (SYMBOL_NAMES.get(a)! < SYMBOL_NAMES.get(b)! ? -1 : 1))
        .map((key) => `${SYMBOL_NAMES.get(key)}:${observe((value as Record<symbol, unknown>)[key], seen)}`);
      return `${klass ?? ''}{${[...fields, ...symbols].join(' ')}}`;
    }
    default:
      throw new Error(`not generated: ${typeof value}`);
  }
}

/** Code units, lone surrogates included, from a small alphabet so that strings repeat. */
const text = fc.array(fc.constantFrom(0x61, 0x62, 0xd800, 0xdc00, 0xfffd, 0xe9), { maxLength: 4 }).map((units) => String.fromCharCode(...units));
const leaf = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, NaN, Infinity, 2 ** 53),
  fc.double(),
  fc.constantFrom(0n, 1n, -1n, 2n ** 64n),
  text,
  fc.constantFrom(true, false, null, undefined),
  fc.constantFrom(Symbol.for('a'), Symbol.iterator),
);
const key = fc.constantFrom('a', 'b', '\uD800', '\uFFFD', '0', '__proto__');

const { value: arbitraryValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, leaf, tie('array'), tie('object'), tie('map'), tie('set'), tie('view'), tie('instance'), tie('date')),
  array: fc.sparseArray(tie('value'), { maxLength: 4 }),
  object: fc
    .tuple(fc.uniqueArray(fc.tuple(key, tie('value')), { selector: ([k]) => k, maxLength: 3 }), fc.subarray(SYMBOLS), fc.array(tie('value'), { minLength: 3, maxLength: 3 }))
    .map(([entries, symbols, values]) => {
      const object: Record<string | symbol, unknown> = {};
      // defineProperty, so that "__proto__" stays an own key
      for (const [k, v] of entries) Object.defineProperty(object, k, { value: v, enumerable: true, writable: true, configurable: true });
      symbols.forEach((symbol, i) => (object[symbol] = values[i]));
      return object;
    }),
  map: fc.uniqueArray(fc.tuple(fc.oneof(key, fc.constantFrom(0, -0, 1)), tie('value')), { selector: ([k]) => k, maxLength: 3 }).map((entries) => new Map(entries)),
  set: fc.uniqueArray(fc.oneof(key, fc.constantFrom(0, 1, 2)), { maxLength: 3 }).map((items) => new Set(items)),
  view: fc.tuple(fc.constantFrom('Uint8Array', 'Int8Array', 'Float32Array'), fc.array(fc.constantFrom(0, 1, 63, 128), { maxLength: 8 })).map(([kind, bytes]) => {
    const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
    padded.set(bytes);
    return kind === 'Uint8Array' ? padded : kind === 'Int8Array' ? new Int8Array(padded.buffer) : new Float32Array(padded.buffer);
  }),
  instance: fc.tuple(fc.constantFrom(Alpha, Beta), tie('value')).map(([Klass, v]) => new Klass(v)),
  date: fc.constantFrom(0, 1, -1).map((time) => new Date(time)),
}));

/** A copy with every object rebuilt and object keys inserted in reverse order. */
function rebuilt(value: unknown, copies = new Map<object, unknown>()): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (copies.has(value)) return copies.get(value);
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    copies.set(value, copy);
    value.forEach((item, i) => (copy[i] = rebuilt(item, copies)));
    return copy;
  }
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [rebuilt(k, copies), rebuilt(v, copies)]));
  if (value instanceof Set) return new Set([...value].map((v) => rebuilt(v, copies)));
  if (ArrayBuffer.isView(value)) return new (value.constructor as new (b: ArrayBuffer) => unknown)(value.buffer.slice(0) as ArrayBuffer);
  if (value instanceof Date) return new Date(value.getTime());
  const copy = Object.create(Object.getPrototypeOf(value)) as Record<string | symbol, unknown>;
  copies.set(value, copy);
  for (const k of Reflect.ownKeys(value).reverse()) {
    Object.defineProperty(copy, k, { value: rebuilt((value as Record<string | symbol, unknown>)[k], copies), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** Values that differ from `value` by one thing, somewhere inside it. */
function variants(value: unknown): unknown[] {
  const out: unknown[] = [];
  switch (typeof value) {
    case 'number':
      out.push(-value, String(value));
      if (Number.isInteger(value)) out.push(BigInt(value));
      break;
    case 'string':
      out.push(value + '\uD800', value + '\uFFFD', value.replace('\uD800', '\uFFFD'), value.replace('\uFFFD', '\uD800'));
      break;
    case 'bigint':
      out.push(Number(value), -value);
      break;
    case 'boolean':
      out.push(!value, Number(value));
      break;
    case 'undefined':
      out.push(null);
      break;
  }
  if (typeof value !== 'object' || value === null) return out;
  if (Array.isArray(value)) {
    if (value.length >= 2) out.push([...value].reverse());
    value.forEach((_, i) => {
      const copy = [...value];
      delete copy[i];
      out.push(copy);
      for (const inner of variants(value[i])) {
        const changed = value.slice();
        changed[i] = inner;
        out.push(changed);
      }
    });
    out.push([...value, undefined]);
  } else if (value instanceof Map) {
    if (value.size >= 2) out.push(new Map([...value].reverse()));
    for (const [k, v] of value) for (const inner of variants(v)) out.push(new Map([...value].map(([k2, v2]) => [k2, k2 === k ? inner : v2])));
  } else if (value instanceof Set) {
    if (value.size >= 2) out.push(new Set([...value].reverse()));
  } else if (ArrayBuffer.isView(value)) {
    if (value.byteLength % 4 === 0) out.push(value instanceof Int32Array ? new Float32Array(value.buffer) : new Int32Array(value.buffer, value.byteOffset, value.byteLength / 4));
  } else if (!(value instanceof Date)) {
    const withField = (k: string | symbol, v: unknown) => {
      const copy = Object.create(Object.getPrototypeOf(value)) as Record<string | symbol, unknown>;
      const define = (own: string | symbol, v: unknown) => Object.defineProperty(copy, own, { value: v, enumerable: true, writable: true, configurable: true });
      for (const own of Reflect.ownKeys(value)) define(own, (value as Record<string | symbol, unknown>)[own]);
      Object.defineProperty(copy, k, { value: v, enumerable: true, writable: true, configurable: true });
      return copy;
    };
    out.push(withField(Symbol.for('a'), 'added'), withField(Symbol.iterator, undefined), withField('extra', undefined));
    for (const own of Reflect.ownKeys(value)) for (const inner of variants((value as Record<string | symbol, unknown>)[own])) out.push(withField(own, inner));
    if (value instanceof Alpha) out.push(new Beta(value.v));
  }
  return out;
}

describe('argument keys against a model of what a function observes', () => {
  it('two generated values key alike exactly when the model sees one value', () => {
    fc.assert(
      fc.property(arbitraryValue, arbitraryValue, (a, b) => {
        expect(hashValue(a) === hashValue(b)).toBe(observe(a) === observe(b));
      }),
      { numRuns: 2000 },
    );
  });

  it('a rebuilt copy (other objects, other insertion order of keys) keys alike', () => {
    fc.assert(
      fc.property(arbitraryValue, (value) => {
        const copy = rebuilt(value);
        expect(observe(copy)).toBe(observe(value));
        expect(hashValue(copy)).toBe(hashValue(value));
      }),
      { numRuns: 500 },
    );
  });

  it('a value changed in one thing keys differently whenever the function can tell', () => {
    fc.assert(
      fc.property(arbitraryValue, fc.nat(), (value, pick) => {
        const all = variants(value);
        fc.pre(all.length > 0);
        const changed = all[pick % all.length];
        expect(hashValue(changed) === hashValue(value)).toBe(observe(changed) === observe(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('the same object twice differs from two equal objects, in any container', () => {
    fc.assert(
      fc.property(arbitraryValue, (value) => {
        fc.pre(typeof value === 'object' && value !== null);
        expect(hashValue([value, value])).not.toBe(hashValue([value, rebuilt(value)]));
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * Arguments that a cached function can tell apart and that keyed alike before: each must be a
 * key of its own. And arguments that cannot be read: a typed error naming where they are.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { UnhashableError } from '../../src/errors.js';
import { hashValue } from '../../src/cache/hash-args.js';
import { classIdentity, moduleOfClass } from '../../src/cache/identity.js';
import { smartCache } from '../../src/cache/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

function unhashable(value: unknown, path = 'args'): UnhashableError {
  try {
    hashValue(value, path);
  } catch (error) {
    if (error instanceof UnhashableError) return error;
    throw new Error(`expected an UnhashableError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected an UnhashableError, the value was keyed');
}

/** Every value gets a key no other value in the list has. */
function expectDistinct(values: unknown[]): void {
  const keys = values.map((value) => hashValue(value));
  expect(new Set(keys).size).toBe(values.length);
}

describe('symbol-keyed properties', () => {
  it('count: {[s]: 1} is not {}', () => {
    const s = Symbol('s');
    expect(hashValue({ [s]: 1 })).not.toBe(hashValue({}));
    expect(hashValue({ [s]: 1 })).not.toBe(hashValue({ [s]: 2 }));
    expect(hashValue({ a: 1, [s]: 1 })).not.toBe(hashValue({ a: 1 }));
    // a string key and a symbol with that description are different keys
    expect(hashValue({ s: 1 })).not.toBe(hashValue({ [s]: 1 }));
  });

  it('registered symbols by their key, well-known ones by name, others by description', () => {
    expectDistinct([
      { [Symbol.for('iterator')]: 1 },
      { [Symbol.iterator]: 1 },
      { [Symbol('iterator')]: 1 },
      { [Symbol('Symbol.iterator')]: 1 },
      { [Symbol()]: 1 },
      { [Symbol('')]: 1 },
      { [Symbol.for('other')]: 1 },
    ]);
    expect(hashValue({ [Symbol.for('k')]: 1 })).toBe(hashValue({ [Symbol.for('k')]: 1 }));
    expect(hashValue({ [Symbol.asyncIterator]: 1 })).toBe(hashValue({ [Symbol.asyncIterator]: 1 }));
    // the documented limit: two distinct symbols with one description are one key
    expect(hashValue({ [Symbol('d')]: 1 })).toBe(hashValue({ [Symbol('d')]: 1 }));
  });

  it('are sorted like string keys: insertion order does not count', () => {
    const a = Symbol.for('a');
    const b = Symbol('b');
    expect(hashValue({ [a]: 1, [b]: 2, x: 3 })).toBe(hashValue({ x: 3, [b]: 2, [a]: 1 }));
  });

  it('non-enumerable ones do not count, on class instances too', () => {
    const hidden = {};
    Object.defineProperty(hidden, Symbol('h'), { value: 1, enumerable: false });
    expect(hashValue(hidden)).toBe(hashValue({}));
    const tag = Symbol.for('tag');
    class Box {
      constructor() {
        (this as unknown as Record<symbol, number>)[tag] = 1;
      }
    }
    const other = new Box();
    (other as unknown as Record<symbol, number>)[Symbol.for('tag')] = 2;
    expect(hashValue(new Box())).not.toBe(hashValue(other));
  });

  it('registered and well-known symbols are keyable values; a local symbol value is not', () => {
    expect(hashValue([Symbol.for('a')])).not.toBe(hashValue([Symbol.for('b')]));
    expect(hashValue([Symbol.iterator])).not.toBe(hashValue([Symbol.for('iterator')]));
    expect(unhashable([1, Symbol('local')]).path).toBe('args[1]');
  });
});

describe('strings', () => {
  it('a lone surrogate is not U+FFFD', () => {
    expectDistinct(['\uD800', '\uFFFD', '\uDC00', '\uD800\uDC00', '\uDC00\uD800', '', '\u0000']);
    expect(hashValue({ '\uD800': 1 })).not.toBe(hashValue({ '\uFFFD': 1 }));
    expect(hashValue(['\uD800x'])).not.toBe(hashValue(['\uFFFDx']));
  });

  it('a surrogate pair is its code point; long strings with and without surrogates', () => {
    expect(hashValue('\uD83D\uDE00')).toBe(hashValue('😀'));
    const long = 'x'.repeat(100_000);
    expect(hashValue(long + '\uD800')).not.toBe(hashValue(long + '\uFFFD'));
    expect(hashValue(long + '\uD800')).toBe(hashValue('x'.repeat(100_000) + '\uD800'));
    expect(hashValue('é'.repeat(40_000))).not.toBe(hashValue('é'.repeat(40_001)));
  });

  it('UTF-16 code units and UTF-8 bytes never meet: no well-formed string keys like an ill-formed one', () => {
    // the UTF-16 form of '\uD800' is the bytes 00 D8; a well-formed string with those bytes in UTF-8 is not possible,
    // and the length marker of the UTF-16 form is one no UTF-8 string has
    expect(hashValue('\u0000\u00D8')).not.toBe(hashValue('\uD800'));
    expect(hashValue('\uD800'.repeat(3))).not.toBe(hashValue('\uD800'.repeat(2)));
  });
});

describe('class instances', () => {
  it('two classes with one name and different code key their instances differently', () => {
    const A = (() =>
      class Point {
        constructor(readonly x: number) {}
        norm() {
          return Math.abs(this.x);
        }
      })();
    const B = (() =>
      class Point {
        constructor(readonly x: number) {}
        norm() {
          return this.x * this.x;
        }
      })();
    expect(A.name).toBe(B.name);
    expect(hashValue(new A(1))).not.toBe(hashValue(new B(1)));
    expect(classIdentity(A)).not.toBe(classIdentity(B));
    expect(classIdentity(A).startsWith('Point:')).toBe(true);
  });

  it('the same code (formatting aside) in one module is one class identity', () => {
    const A = (() =>
      class Point {
        constructor(readonly x: number) {}
      })();
    // prettier-ignore
    const B = (() => class Point { constructor(readonly x: number) { /* a comment */ } })();
    expect(hashValue(new A(1))).toBe(hashValue(new B(1)));
    expect(hashValue(new A(1))).not.toBe(hashValue(new A(2)));
  });

  it('methods added to a prototype and the base class count', () => {
    function Legacy(this: { x: number }) {
      this.x = 1;
    }
    function Legacy2(this: { x: number }) {
      this.x = 1;
    }
    Object.defineProperty(Legacy2, 'name', { value: 'Legacy' });
    (Legacy.prototype as { f: () => number }).f = () => 1;
    (Legacy2.prototype as { f: () => number }).f = () => 2;
    const one = new (Legacy as unknown as new () => object)();
    const two = new (Legacy2 as unknown as new () => object)();
    expect(hashValue(one)).not.toBe(hashValue(two));

    const makeBase = (n: number) =>
      class Base {
        n() {
          return n;
        }
      };
    const BaseA = makeBase(1);
    const BaseB = class Base {
      n() {
        return 2;
      }
    };
    class ChildA extends BaseA {}
    const ChildB = (() => class ChildA extends BaseB {})();
    expect(hashValue(new ChildA())).not.toBe(hashValue(new ChildB()));
  });

  it('subclasses of built-ins and instances of ad-hoc prototypes are not their plain forms', () => {
    class Registry extends Map<string, number> {}
    class Bytes extends Uint8Array {}
    class List extends Array<number> {}
    expectDistinct([new Map([['a', 1]]), new Registry([['a', 1]])]);
    expectDistinct([new Uint8Array([1]), new Bytes([1])]);
    expectDistinct([[1], List.from([1])]);
    const proto = { kind: 'a' };
    expect(hashValue(Object.create(proto))).not.toBe(hashValue({}));
    expect(hashValue(Object.create(proto))).not.toBe(hashValue(Object.create({ kind: 'b' })));
    expect(hashValue(Object.create(null))).not.toBe(hashValue({}));
  });

  it('a plain object can choose its key with a [cacheKey]() hook too', () => {
    const key = Symbol.for('cairn.smartCache.key');
    const session = (id: string, socket: unknown) => ({ id, socket, [key]: () => id });
    expect(hashValue(session('a', Promise.resolve()))).toBe(hashValue(session('a', null)));
    expect(hashValue(session('a', null))).not.toBe(hashValue(session('b', null)));
    expect(hashValue(session('a', null))).not.toBe(hashValue('a'));
  });

  it('built-ins are native identities; a class names its package and path', () => {
    expect(classIdentity(Map)).toBe('native:Map');
    expect(moduleOfClass(class X {})).toBe('cairn-lake:test/cache/hash-args-collisions.test.ts');
  });
});

describe('arguments that cannot be read', () => {
  it('a throwing getter is an UnhashableError naming its path, with the cause', () => {
    const failure = new Error('no access');
    const error = unhashable([
      {
        a: {
          b: {
            get c() {
              throw failure;
            },
          },
        },
      },
    ]);
    expect(error.path).toBe('args[0].a.b.c');
    expect(error.code).toBe('ERR_UNHASHABLE');
    expect(error.cause).toBe(failure);
    expect(error.message).toContain('args[0].a.b.c');
    expect(error.message).toContain('no access');
  });

  it('a Proxy whose trap throws, and a revoked Proxy', () => {
    const trap = new Proxy(
      {},
      {
        ownKeys() {
          throw new RangeError('trap');
        },
      },
    );
    const trapped = unhashable([{ a: { b: trap } }]);
    expect(trapped.path).toBe('args[0].a.b');
    expect(trapped.cause).toBeInstanceOf(RangeError);
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const revoked = unhashable([{ a: { b: proxy } }]);
    expect(revoked.path).toBe('args[0].a.b');
    expect(revoked.cause).toBeInstanceOf(TypeError);
    // a hook that throws
    const hooked = unhashable([
      {
        [Symbol.for('cairn.smartCache.key')]() {
          throw new Error('hook');
        },
      },
    ]);
    expect(hooked.path).toBe('args[0]');
  });

  it('paths name Map keys and entries, Set entries and array indexes', () => {
    expect(unhashable([new Map([['k', Symbol('v')]])]).path).toBe('args[0]<entry 0>');
    expect(unhashable([new Map<unknown, number>([[1, 1], [Symbol('k'), 1]])]).path).toBe('args[0]<key 1>');
    expect(unhashable([new Set([1, 2, new WeakSet()])]).path).toBe('args[0]<entry 2>');
    expect(unhashable([[1, [2, Promise.resolve()]]]).path).toBe('args[0][1][1]');
    expect(unhashable([{ [Symbol('s')]: new WeakMap() }]).path).toBe('args[0][Symbol(s)]');
  });

  it('200,000 levels of nesting are keyed without overflowing the stack', () => {
    const chain = (depth: number, last: unknown) => {
      let value: unknown = last;
      for (let i = 0; i < depth; i++) value = { next: value };
      return value;
    };
    const nested = (depth: number, last: unknown) => {
      let value: unknown = last;
      for (let i = 0; i < depth; i++) value = [value];
      return value;
    };
    expect(hashValue(chain(200_000, 1))).toBe(hashValue(chain(200_000, 1)));
    expect(hashValue(chain(200_000, 1))).not.toBe(hashValue(chain(200_000, 2)));
    expect(hashValue(nested(200_000, 'x'))).not.toBe(hashValue(nested(199_999, 'x')));
    // an unkeyable value at the bottom: the full path in `path`, a short one in the message
    const error = unhashable([chain(200_000, Symbol('deep'))]);
    expect(error.path).toBe(`args[0]${'.next'.repeat(200_000)}`);
    expect(error.message.length).toBeLessThan(1000);
  });
});

describe('through smartCache: no result computed for other inputs', () => {
  it('each argument a function can tell apart gets its own result', async () => {
    const seen = smartCache(tempDir())(function seen(value: unknown) {
      if (value instanceof Map) return [...value.values()];
      if (typeof value === 'string') return Array.from(value, (unit) => unit.charCodeAt(0));
      if (typeof value === 'object' && value !== null) return [Object.getOwnPropertySymbols(value).length, (value as { constructor: { name: string } }).constructor.name, String((value as { f?: () => unknown }).f?.())];
      return null;
    });
    const A = (() =>
      class P {
        f() {
          return 'a';
        }
      })();
    const B = (() =>
      class P {
        f() {
          return 'b';
        }
      })();
    expect(await seen(new Map([['x', 1], ['y', 2]]))).toEqual([1, 2]);
    expect(await seen(new Map([['y', 2], ['x', 1]]))).toEqual([2, 1]);
    expect(await seen('\uD800')).toEqual([0xd800]);
    expect(await seen('\uFFFD')).toEqual([0xfffd]);
    expect(await seen({})).toEqual([0, 'Object', 'undefined']);
    expect(await seen({ [Symbol('s')]: 1 })).toEqual([1, 'Object', 'undefined']);
    expect(await seen(new A())).toEqual([0, 'P', 'a']);
    expect(await seen(new B())).toEqual([0, 'P', 'b']);
    expect(seen.stats.hits).toBe(0);
    // and the same inputs again are hits
    expect(await seen(new Map([['y', 2], ['x', 1]]))).toEqual([2, 1]);
    expect(seen.stats.hits).toBe(1);
  });
});

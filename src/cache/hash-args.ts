/**
 * A canonical, type-tagged encoding of JavaScript values, fed straight into a hash. Two values
 * get the same bytes exactly when a cached function cannot tell them apart:
 * - object keys are sorted; a missing key differs from a key holding `undefined`;
 * - numbers follow `Object.is` (-0 differs from 0, every NaN is the same);
 * - TypedArrays are keyed by their exact constructor and bytes, hashed in place without a copy;
 * - Map and Set entries are sorted by their own digests, so insertion order does not matter;
 * - a reference back to an enclosing object (a cycle) is encoded by its distance;
 * - class instances by constructor name and own fields, or by their `[cacheKey]()` value.
 * Functions are keyed as function-digest.ts says. Symbols, Promises and weak collections cannot be keyed: UnhashableError,
 * naming where the value was.
 */
import { createHash, type Hash } from 'node:crypto';
import { UnhashableError } from '../errors.js';
import { functionKey } from './function-digest.js';
import { markOf } from './mark.js';

/**
 * A method an object can define to choose its own key: smartCache hashes what it returns
 * (with the constructor's name) instead of the object's fields.
 */
export const cacheKey: unique symbol = Symbol.for('cairn.smartCache.key') as never;

const enum Tag {
  Undefined = 1,
  Null,
  True,
  False,
  Number,
  NaN,
  BigInt,
  String,
  Array,
  Hole,
  Object,
  Instance,
  Hook,
  Date,
  RegExp,
  Map,
  Set,
  View,
  ArrayBuffer,
  BackRef,
  Function,
  StableFunction,
  Url,
  Boxed,
  Error,
  End,
}

/** Views larger than this are passed to the hash directly instead of through the scratch buffer. */
const DIRECT = 4096;
const SCRATCH = 64 * 1024;

/** Thrown inside the encoder; unwinding adds path segments, the entry point makes the UnhashableError. */
class Unhashable {
  readonly segments: string[] = [];
  constructor(readonly what: string) {}
}

function describeType(value: unknown): string {
  if (typeof value === 'function') return `the function ${value.name || '(anonymous)'}`;
  if (typeof value === 'symbol') return `the symbol ${String(value)}`;
  return Object.prototype.toString.call(value).slice(8, -1);
}

const viewName = (value: ArrayBufferView): string => (Object.getPrototypeOf(value)?.constructor?.name as string | undefined) ?? 'View';

/** Writes values into one hash; reusable for several values in a row. */
export class KeyEncoder {
  private readonly scratch: Buffer;
  private pos = 0;
  /** Enclosing objects and their depth, for cycles. */
  private readonly open: Map<object, number>;
  private depth: number;

  constructor(
    private readonly hash: Hash,
    open?: Map<object, number>,
    depth = 0,
    scratch?: Buffer,
  ) {
    this.scratch = scratch ?? (open ? Buffer.allocUnsafe(1024) : Buffer.allocUnsafe(SCRATCH));
    this.open = open ?? new Map();
    this.depth = depth;
  }

  /** Encodes `value`; `path` names it in errors (e.g. `args[0]`). */
  write(value: unknown, path: string): void {
    try {
      this.value(value);
    } catch (error) {
      if (error instanceof Unhashable) {
        const where = path + error.segments.join('');
        throw new UnhashableError(`Cannot key ${error.what} at ${where}: mark it, pass it differently or give it a [cacheKey]() method`, where);
      }
      throw error;
    }
  }

  /** Writes any pending bytes into the hash. */
  flush(): void {
    if (this.pos > 0) {
      this.hash.update(this.scratch.subarray(0, this.pos));
      this.pos = 0;
    }
  }

  private room(bytes: number): void {
    if (this.pos + bytes > this.scratch.length) this.flush();
  }

  private tag(tag: Tag): void {
    this.room(1);
    this.scratch[this.pos++] = tag;
  }

  private u32(value: number): void {
    this.room(4);
    this.scratch.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  private f64(value: number): void {
    this.room(8);
    this.scratch.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  private string(value: string): void {
    // a quick upper bound first: most strings are short and fit the scratch buffer
    if (value.length * 3 + 4 <= this.scratch.length) {
      this.room(value.length * 3 + 4);
      const written = this.scratch.write(value, this.pos + 4, 'utf8');
      this.scratch.writeUInt32LE(written, this.pos);
      this.pos += 4 + written;
      return;
    }
    this.u32(Buffer.byteLength(value, 'utf8'));
    this.flush();
    this.hash.update(value, 'utf8');
  }

  private bytes(view: Uint8Array): void {
    this.u32(view.byteLength);
    if (view.byteLength > DIRECT || view.byteLength > this.scratch.length - this.pos) {
      this.flush();
      this.hash.update(view);
      return;
    }
    this.scratch.set(view, this.pos);
    this.pos += view.byteLength;
  }

  private value(value: unknown): void {
    switch (typeof value) {
      case 'undefined':
        return this.tag(Tag.Undefined);
      case 'boolean':
        return this.tag(value ? Tag.True : Tag.False);
      case 'number':
        if (Number.isNaN(value)) return this.tag(Tag.NaN);
        this.tag(Tag.Number);
        return this.f64(value);
      case 'bigint':
        this.tag(Tag.BigInt);
        return this.string(value.toString(16));
      case 'string':
        this.tag(Tag.String);
        return this.string(value);
      case 'symbol':
        throw new Unhashable(describeType(value));
      case 'function':
        return this.func(value);
      case 'object':
        if (value === null) return this.tag(Tag.Null);
        return this.object(value);
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  private func(value: Function): void {
    const mark = markOf(value);
    if (mark?.kind === 'stable') {
      this.tag(Tag.StableFunction);
      return this.string(mark.name);
    }
    // by the rules of function-digest.ts: by value, or by module and code for a top-level one
    this.tag(Tag.Function);
    return this.string(functionKey(value));
  }

  private object(value: object): void {
    const seen = this.open.get(value);
    if (seen !== undefined) {
      this.tag(Tag.BackRef);
      return this.u32(this.depth - seen);
    }
    if (ArrayBuffer.isView(value)) {
      this.tag(Tag.View);
      this.string(viewName(value));
      return this.bytes(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    }
    this.open.set(value, this.depth++);
    try {
      this.container(value);
    } finally {
      this.open.delete(value);
      this.depth--;
    }
  }

  private container(value: object): void {
    if (Array.isArray(value)) {
      if (Object.getPrototypeOf(value) !== Array.prototype) {
        this.tag(Tag.Instance);
        this.string(value.constructor?.name ?? '');
      }
      this.tag(Tag.Array);
      this.u32(value.length);
      for (let index = 0; index < value.length; index++) {
        if (!(index in value)) {
          this.tag(Tag.Hole);
          continue;
        }
        this.child(value[index], index);
      }
      return;
    }
    const proto = Object.getPrototypeOf(value) as object | null;
    if (proto === Object.prototype || proto === null) return this.fields(value);
    const hook = (value as { [cacheKey]?: unknown })[cacheKey];
    if (typeof hook === 'function') {
      this.tag(Tag.Hook);
      this.string(value.constructor?.name ?? '');
      return this.child(hook.call(value), '[cacheKey]()');
    }
    if (value instanceof Date) {
      this.tag(Tag.Date);
      const time = value.getTime();
      return Number.isNaN(time) ? this.tag(Tag.NaN) : this.f64(time);
    }
    if (value instanceof RegExp) {
      this.tag(Tag.RegExp);
      this.string(value.source);
      return this.string(value.flags);
    }
    if (value instanceof Map) return this.unordered(Tag.Map, value, true);
    if (value instanceof Set) return this.unordered(Tag.Set, value, false);
    if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
      this.tag(Tag.ArrayBuffer);
      this.string(value.constructor.name);
      return this.bytes(new Uint8Array(value));
    }
    if (value instanceof URL) {
      this.tag(Tag.Url);
      return this.string(value.href);
    }
    if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt) {
      this.tag(Tag.Boxed);
      this.string(value.constructor.name);
      return this.value(value.valueOf());
    }
    if (value instanceof Error) {
      this.tag(Tag.Error);
      this.string(value.name);
      this.string(value.message);
      return this.fields(value);
    }
    if (
      value instanceof Promise ||
      value instanceof WeakMap ||
      value instanceof WeakSet ||
      value instanceof WeakRef ||
      typeof (value as { then?: unknown }).then === 'function'
    ) {
      throw new Unhashable(describeType(value));
    }
    // a class instance: its constructor (and its code, when the class is marked) and its own fields
    const ctor = (value as { constructor?: unknown }).constructor;
    this.tag(Tag.Instance);
    this.string(typeof ctor === 'function' ? ctor.name : '');
    // the class by the rules of function-digest.ts: its module and code, or its code and what it reaches when marked
    if (typeof ctor === 'function') this.func(ctor);
    this.fields(value);
  }

  private fields(value: object): void {
    const keys = Object.keys(value).sort();
    this.tag(Tag.Object);
    this.u32(keys.length);
    for (const key of keys) {
      this.string(key);
      this.child((value as Record<string, unknown>)[key], key);
    }
  }

  private child(value: unknown, segment: string | number): void {
    try {
      this.value(value);
    } catch (error) {
      if (error instanceof Unhashable) {
        error.segments.unshift(
          typeof segment === 'number' ? `[${segment}]` : /^[A-Za-z_$][\w$]*$/.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`,
        );
      }
      throw error;
    }
  }

  /** Map and Set entries: each hashed alone, then the digests sorted, so insertion order does not matter. */
  private unordered(tag: Tag, value: Map<unknown, unknown> | Set<unknown>, pairs: boolean): void {
    const digests: Buffer[] = [];
    let index = 0;
    for (const entry of value.entries()) {
      const hash = createHash('sha256');
      const sub = new KeyEncoder(hash, this.open, this.depth);
      try {
        sub.value(entry[0]);
        if (pairs) sub.value(entry[1]);
      } catch (error) {
        if (error instanceof Unhashable) error.segments.unshift(`<entry ${index}>`);
        throw error;
      }
      sub.flush();
      digests.push(hash.digest());
      index++;
    }
    digests.sort(Buffer.compare);
    this.tag(tag);
    this.u32(digests.length);
    for (const digest of digests) this.bytes(digest);
  }
}

let spare: Buffer | null = null;

/**
 * Encodes values into `hash` with a reused scratch buffer (a `[cacheKey]()` hook that hashes in
 * turn gets a buffer of its own).
 */
export function encodeInto(hash: Hash, body: (encoder: KeyEncoder) => void): void {
  const scratch = spare ?? Buffer.allocUnsafe(SCRATCH);
  spare = null;
  try {
    const encoder = new KeyEncoder(hash, undefined, 0, scratch);
    body(encoder);
    encoder.flush();
  } finally {
    spare = scratch;
  }
}

/** The sha256 (hex) of the canonical encoding of `value`; `path` names it in errors. */
export function hashValue(value: unknown, path = 'value'): string {
  const hash = createHash('sha256');
  encodeInto(hash, (encoder) => encoder.write(value, path));
  return hash.digest('hex');
}

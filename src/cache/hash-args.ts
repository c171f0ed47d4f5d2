/**
 * A canonical, type-tagged encoding of JavaScript values, fed straight into a hash. Two values
 * get the same bytes exactly when a cached function cannot tell them apart (the project's rule:
 * a function must not get a result computed for inputs it can tell apart):
 * - object keys are sorted; a missing key differs from a key holding `undefined`; own enumerable
 *   symbol-keyed properties count (a registered symbol by its key, a well-known one by its name,
 *   any other by its description);
 * - numbers follow `Object.is` (-0 differs from 0, every NaN is the same);
 * - strings by their UTF-16 code units (a lone surrogate is not U+FFFD);
 * - TypedArrays are keyed by their exact type and bytes, hashed in place without a copy;
 * - Map and Set entries in insertion order, which a function can observe;
 * - an object met again (a cycle, or one object reached twice) is encoded as a reference to
 *   where it was first met, so `[a, a]` differs from `[a, copy of a]`;
 * - class instances by their class identity (identity.ts: name, code, module) and own fields,
 *   or by their `[cacheKey]()` value.
 * Functions are keyed as function-digest.ts says (by value, or by module and code). Local symbols
 * as values, Promises and weak collections cannot be keyed, nor
 * can values whose reading throws (a getter, a Proxy trap): UnhashableError, naming where the value
 * was. The walk keeps its own stack, so nesting depth is bounded by memory, not by the call stack.
 */
import { createHash, type Hash } from 'node:crypto';
import { UnhashableError } from '../errors.js';
import { functionKey } from './function-digest.js';
import { classIdentity, classOf } from './identity.js';
import { markOf } from './mark.js';

/**
 * A method an object can define to choose its own key: smartCache hashes what it returns
 * (with the object's class identity) instead of the object's fields.
 */
export const cacheKey: unique symbol = Symbol.for('cairn.smartCache.key') as never;

/** Written first by encodeInto: a change of the encoding must never let old keys meet new ones. */
const ARGS_FORMAT = Buffer.from('cairn.args/2');

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
  Symbol,
  NullObject,
  AdHocPrototype,
}

const enum SymbolKind {
  Registered = 1,
  WellKnown,
  Local,
  LocalWithoutDescription,
}

/** Views larger than this are passed to the hash directly instead of through the scratch buffer. */
const DIRECT = 4096;
const SCRATCH = 64 * 1024;
/** A string length field of this value announces UTF-16 code units (a string with lone surrogates). */
const UTF16 = 0xffffffff;

/** Thrown for a value that cannot be keyed; the entry point adds the path. */
class Unhashable {
  constructor(readonly what: string) {}
}

const WELL_KNOWN = new Map<symbol, string>(
  Object.getOwnPropertyNames(Symbol)
    .filter((name) => typeof (Symbol as unknown as Record<string, unknown>)[name] === 'symbol')
    .map((name) => [(Symbol as unknown as Record<string, symbol>)[name]!, name]),
);

/** The exact built-in view types, by prototype; a subclass is keyed by its class identity too. */
const VIEW_KINDS = new Map<object, string>();
for (const name of ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array', 'DataView']) {
  const ctor = (globalThis as Record<string, unknown>)[name] as { prototype: object } | undefined;
  if (ctor !== undefined) VIEW_KINDS.set(ctor.prototype, name);
}
VIEW_KINDS.set(Buffer.prototype, 'Buffer');

const isWellFormed = (value: string): boolean => (value as unknown as { isWellFormed(): boolean }).isWellFormed();

function describeType(value: unknown): string {
  if (typeof value === 'function') return `the function ${value.name || '(anonymous)'}`;
  if (typeof value === 'symbol') return `the symbol ${String(value)}`;
  return Object.prototype.toString.call(value).slice(8, -1);
}

/** How the children of an open object are named in paths. */
const enum Style {
  /** Array elements by index (holes allowed). */
  Elements,
  /** `items` are the object's own keys; values are read from the object. */
  Fields,
  /** `items` are key, value, key, value... of a Map. */
  MapEntries,
  /** `items` are the values of a Set. */
  SetEntries,
  /** One child named by `label`. */
  Single,
}

/** An object being encoded: its children are taken one by one from the explicit stack. */
interface Frame {
  readonly object: object;
  readonly style: Style;
  readonly items: readonly unknown[];
  readonly length: number;
  readonly label: string;
  /** Index of the next child; the current one (named in errors) is `next - 1`. */
  next: number;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function segment(frame: Frame): string {
  const index = frame.next - 1;
  switch (frame.style) {
    case Style.Elements:
      return `[${index}]`;
    case Style.Fields: {
      const key = frame.items[index] as string | symbol;
      if (typeof key === 'symbol') return `[${String(key)}]`;
      return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    }
    case Style.MapEntries:
      return index % 2 === 0 ? `<key ${index >> 1}>` : `<entry ${index >> 1}>`;
    case Style.SetEntries:
      return `<entry ${index}>`;
    case Style.Single:
      return frame.label;
  }
}

/** A path short enough for a message: the full one stays in the error's `path`. */
function shortPath(path: string): string {
  return path.length <= 300 ? path : `${path.slice(0, 150)}…${path.slice(-120)}`;
}

/** Writes values into one hash; reusable for several values in a row. */
export class KeyEncoder {
  private readonly scratch: Buffer;
  private pos = 0;
  private readonly frames: Frame[] = [];
  /** Every object met in the current value, with the order in which it was first met. */
  private readonly seen = new Map<object, number>();

  constructor(
    private hash: Hash,
    scratch?: Buffer,
  ) {
    this.scratch = scratch ?? Buffer.allocUnsafe(SCRATCH);
  }

  /** Starts on another hash (the encoder is reused from call to call), with the format name first. */
  begin(hash: Hash): void {
    this.hash = hash;
    this.scratch.set(ARGS_FORMAT, 0);
    this.pos = ARGS_FORMAT.length;
  }

  /** Encodes `value`; `path` names it in errors (e.g. `args[0]`). */
  write(value: unknown, path: string): void {
    try {
      this.value(value);
      this.drain();
    } catch (error) {
      // a frame that has not started a child yet belongs to the value being read (not to the path)
      const where = path + this.frames.filter((frame) => frame.next > 0).map(segment).join('');
      const shown = shortPath(where);
      if (error instanceof Unhashable) {
        throw new UnhashableError(`Cannot key ${error.what} at ${shown}: mark it, pass it differently or give it a [cacheKey]() method`, where);
      }
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new UnhashableError(`Cannot key the value at ${shown}: reading it threw (${reason})`, where, { cause: error });
    } finally {
      this.frames.length = 0;
      if (this.seen.size > 0) this.seen.clear();
    }
  }

  /** Writes any pending bytes into the hash. */
  flush(): void {
    if (this.pos > 0) {
      this.hash.update(this.scratch.subarray(0, this.pos));
      this.pos = 0;
    }
  }

  /** Takes the children of open objects one by one until every object is closed. */
  private drain(): void {
    const frames = this.frames;
    while (frames.length > 0) {
      const top = frames[frames.length - 1]!;
      if (top.next >= top.length) {
        frames.pop();
        continue;
      }
      const index = top.next++;
      switch (top.style) {
        case Style.Elements:
          if (!(index in top.object)) this.tag(Tag.Hole);
          else this.value((top.object as unknown[])[index]);
          break;
        case Style.Fields: {
          const key = top.items[index] as string | symbol;
          if (typeof key === 'symbol') this.symbol(key);
          else this.string(key);
          this.value((top.object as Record<string | symbol, unknown>)[key]);
          break;
        }
        default:
          this.value(top.items[index]);
      }
    }
  }

  private open(object: object, style: Style, items: readonly unknown[], length: number, label = ''): void {
    if (length > 0) this.frames.push({ object, style, items, length, label, next: 0 });
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

  /**
   * UTF-8 for well-formed strings (the common case, one pass); a string with a lone surrogate,
   * which UTF-8 cannot hold, as its UTF-16 code units behind a length no UTF-8 string can have.
   */
  private string(value: string): void {
    if (!isWellFormed(value)) return this.utf16(value);
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

  private utf16(value: string): void {
    this.u32(UTF16);
    this.u32(value.length);
    if (value.length * 2 <= this.scratch.length) {
      this.room(value.length * 2);
      this.pos += this.scratch.write(value, this.pos, 'utf16le');
      return;
    }
    this.flush();
    this.hash.update(Buffer.from(value, 'utf16le'));
  }

  /** A symbol by what names it across processes; two local symbols with one description are one. */
  private symbol(value: symbol): void {
    const registered = Symbol.keyFor(value);
    this.tag(Tag.Symbol);
    if (registered !== undefined) {
      this.tag(SymbolKind.Registered as number as Tag);
      return this.string(registered);
    }
    const wellKnown = WELL_KNOWN.get(value);
    if (wellKnown !== undefined) {
      this.tag(SymbolKind.WellKnown as number as Tag);
      return this.string(wellKnown);
    }
    if (value.description === undefined) return this.tag(SymbolKind.LocalWithoutDescription as number as Tag);
    this.tag(SymbolKind.Local as number as Tag);
    this.string(value.description);
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

  /** Encodes a primitive, or an object's header (its children are queued on the stack). */
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
        // a local symbol's identity cannot be keyed across processes
        if (Symbol.keyFor(value) === undefined && !WELL_KNOWN.has(value)) throw new Unhashable(describeType(value));
        return this.symbol(value);
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
    const seen = this.seen.get(value);
    if (seen !== undefined) {
      this.tag(Tag.BackRef);
      return this.u32(seen);
    }
    this.seen.set(value, this.seen.size);
    const proto = Object.getPrototypeOf(value) as object | null;
    if (Array.isArray(value)) {
      if (proto !== Array.prototype) this.instance(proto);
      // >>> 0: a Proxy's length trap cannot make the walk loop forever
      const length = value.length >>> 0;
      this.tag(Tag.Array);
      this.u32(length);
      return this.open(value, Style.Elements, [], length);
    }
    // a plain object's hook can only be its own: fields() finds it among its symbol keys
    if (proto === Object.prototype) return this.fields(value, Tag.Object);
    if (proto === null) return this.fields(value, Tag.NullObject);
    const hook = (value as { [cacheKey]?: unknown })[cacheKey];
    if (typeof hook === 'function') return this.hook(value, proto, hook as (this: object) => unknown);
    this.builtin(value, proto);
  }

  private hook(value: object, proto: object | null, hook: (this: object) => unknown): void {
    this.tag(Tag.Hook);
    if (proto !== Object.prototype) this.instance(proto);
    this.open(value, Style.Single, [hook.call(value)], 1, '[cacheKey]()');
  }

  /** The class of an instance: its identity, or an ad-hoc prototype keyed as a value. */
  private instance(proto: object | null): void {
    const ctor = proto === null ? null : classOf(proto);
    if (ctor === null) {
      this.tag(Tag.AdHocPrototype);
      this.open(proto ?? {}, Style.Single, [proto], 1, '<prototype>');
      return;
    }
    this.tag(Tag.Instance);
    this.string(classIdentity(ctor));
    // and by the rules of function-digest.ts: its module, or what it reaches when it is marked or local
    this.func(ctor);
  }

  /** A built-in type keyed by value; a subclass of one is keyed by its class identity first. */
  private builtin(value: object, proto: object): void {
    const exact = (builtin: { prototype: object }): void => {
      if (proto !== builtin.prototype) this.instance(proto);
    };
    if (ArrayBuffer.isView(value)) {
      const kind = VIEW_KINDS.get(proto);
      if (kind === undefined) this.instance(proto);
      this.tag(Tag.View);
      this.string(kind ?? (value instanceof DataView ? 'DataView' : Object.prototype.toString.call(value).slice(8, -1)));
      return this.bytes(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    }
    if (value instanceof Date) {
      exact(Date);
      this.tag(Tag.Date);
      const time = value.getTime();
      return Number.isNaN(time) ? this.tag(Tag.NaN) : this.f64(time);
    }
    if (value instanceof RegExp) {
      exact(RegExp);
      this.tag(Tag.RegExp);
      this.string(value.source);
      this.string(value.flags);
      // where the next match starts: observable through exec() on a global or sticky RegExp
      return this.f64(Number(value.lastIndex));
    }
    if (value instanceof Map) {
      exact(Map);
      const items: unknown[] = [];
      value.forEach((entry, key) => items.push(key, entry));
      this.tag(Tag.Map);
      this.u32(value.size);
      return this.open(value, Style.MapEntries, items, items.length);
    }
    if (value instanceof Set) {
      exact(Set);
      const items = Array.from(value);
      this.tag(Tag.Set);
      this.u32(items.length);
      return this.open(value, Style.SetEntries, items, items.length);
    }
    if (value instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && value instanceof SharedArrayBuffer)) {
      exact(value instanceof ArrayBuffer ? ArrayBuffer : SharedArrayBuffer);
      this.tag(Tag.ArrayBuffer);
      this.string(value instanceof ArrayBuffer ? 'ArrayBuffer' : 'SharedArrayBuffer');
      return this.bytes(new Uint8Array(value));
    }
    if (value instanceof URL) {
      exact(URL);
      this.tag(Tag.Url);
      return this.string(value.href);
    }
    if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt || value instanceof Symbol) {
      this.instance(proto);
      this.tag(Tag.Boxed);
      return this.value(value.valueOf());
    }
    if (value instanceof Error) {
      this.instance(proto);
      this.tag(Tag.Error);
      this.string(String(value.name));
      this.string(String(value.message));
      return this.fields(value, Tag.Object);
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
    // a class instance: its class identity (and code, when the class is marked) and its own fields
    this.instance(proto);
    this.fields(value, Tag.Object);
  }

  /** Own enumerable fields: string keys sorted, then symbol keys sorted by what names them. */
  private fields(value: object, tag: Tag): void {
    const keys: (string | symbol)[] = Object.keys(value).sort();
    const strings = keys.length;
    let symbols = Object.getOwnPropertySymbols(value);
    if (symbols.length > 0) {
      // a plain object's own hook (an instance's was found through its prototype chain before)
      if (symbols.includes(cacheKey)) {
        const hook = (value as { [cacheKey]?: unknown })[cacheKey];
        if (typeof hook === 'function') return this.hook(value, Object.getPrototypeOf(value) as object | null, hook as (this: object) => unknown);
      }
      symbols = symbols.filter((key) => Object.prototype.propertyIsEnumerable.call(value, key));
      keys.push(...sortSymbols(symbols));
    }
    this.tag(tag);
    this.u32(strings);
    this.u32(symbols.length);
    this.open(value, Style.Fields, keys, keys.length);
  }
}

/** Symbols in the order of what names them (ties, which key alike, keep their insertion order). */
function sortSymbols(symbols: symbol[]): symbol[] {
  const named = symbols.map((symbol) => {
    const registered = Symbol.keyFor(symbol);
    const name = registered !== undefined ? `1${registered}` : WELL_KNOWN.has(symbol) ? `2${WELL_KNOWN.get(symbol)!}` : symbol.description === undefined ? '4' : `3${symbol.description}`;
    return { symbol, name };
  });
  named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return named.map(({ symbol }) => symbol);
}

let spare: KeyEncoder | null = null;

/**
 * Encodes values into `hash` with a reused encoder and scratch buffer (a `[cacheKey]()` hook that
 * hashes in turn gets an encoder of its own). The encoding's format name comes first.
 */
export function encodeInto(hash: Hash, body: (encoder: KeyEncoder) => void): void {
  const encoder = spare ?? new KeyEncoder(hash);
  spare = null;
  try {
    encoder.begin(hash);
    body(encoder);
    encoder.flush();
  } finally {
    spare = encoder;
  }
}

/** The sha256 (hex) of the canonical encoding of `value`; `path` names it in errors. */
export function hashValue(value: unknown, path = 'value'): string {
  const hash = createHash('sha256');
  encodeInto(hash, (encoder) => encoder.write(value, path));
  return hash.digest('hex');
}

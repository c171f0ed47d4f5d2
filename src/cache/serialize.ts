/**
 * Results as tarn stores them: a small body (CBOR, through cbor-x) that refers to parts, and the
 * parts (the bytes of TypedArrays, Buffers, DataViews and ArrayBuffers of at least `minPart`
 * bytes) stored one by one in a HashKeyStorage, so equal parts are stored once and large arrays
 * are never copied into the body.
 *
 * A result comes back as the same types and values it was stored with. What CBOR (or cbor-x)
 * would change is written as a private tagged node: -0, strings with lone surrogates, objects
 * with a null prototype or an own `__proto__` key, sparse arrays, Map, Set, Date, RegExp, URL,
 * boxed primitives, every view type, and an object met again (a shared reference or a cycle),
 * which is a reference to where it was first met. Anything else that is not plain data (a class
 * instance, a function, a symbol, a Promise...) is an UnstorableError naming where it is: a
 * silent change of type would hand back a value the function never returned.
 *
 * The body is a root node `[BODY_FORMAT, walk, tree]`: `walk` is false when the tree holds no
 * tagged node, so a plain result is decoded by cbor-x alone. A body without that root was written
 * by an earlier version (plain cbor-x): it is read as it was then when it has no parts, and is
 * another format (recomputed) when it has.
 */
import { addExtension, Encoder } from 'cbor-x';
import { InvalidValueError, UnstorableError } from '../errors.js';

/** The body's format, inside its root node; bump it when the layout of nodes changes. */
const BODY_FORMAT = 2;
/** Containers nested deeper than this are not stored (cbor-x recurses on both ends). */
export const MAX_RESULT_DEPTH = 300;

const enum Kind {
  MinusZero = 1,
  Utf16,
  Ref,
  Object,
  SparseArray,
  Map,
  Set,
  Date,
  RegExp,
  Url,
  Boxed,
  View,
  Part,
  /** The root of a body: `[BODY_FORMAT, walk, tree]`. */
  Body,
}

/** A tagged node of the body. */
class Node {
  constructor(
    readonly kind: Kind,
    readonly data: unknown,
  ) {}
}

// a private tag number; the extension only applies to Node, a class nobody else has
addExtension({
  Class: Node,
  tag: 51740,
  encode(node: Node, encode: (value: unknown) => Uint8Array) {
    return encode([node.kind, node.data]);
  },
  decode(data: [Kind, unknown]) {
    return new Node(data[0], data[1]);
  },
});

const encoder = new Encoder({ useRecords: false });

type ViewMaker = (buffer: ArrayBuffer, length: number) => ArrayBufferView | ArrayBuffer;

/** Every binary type, by the exact prototype of its values (a subclass is not one of them). */
const BINARY = new Map<object, string>();
const MAKERS = new Map<string, ViewMaker>();
for (const name of ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']) {
  // Float16Array exists from Node 24 on
  const ctor = (globalThis as Record<string, unknown>)[name] as (new (buffer: ArrayBuffer) => ArrayBufferView) | undefined;
  if (ctor === undefined) continue;
  BINARY.set(ctor.prototype as object, name);
  MAKERS.set(name, (buffer) => new ctor(buffer));
}
BINARY.set(DataView.prototype, 'DataView');
MAKERS.set('DataView', (buffer) => new DataView(buffer));
BINARY.set(Buffer.prototype, 'Buffer');
MAKERS.set('Buffer', (buffer, length) => Buffer.from(buffer, 0, length));
BINARY.set(ArrayBuffer.prototype, 'ArrayBuffer');
MAKERS.set('ArrayBuffer', (buffer) => buffer);
if (typeof SharedArrayBuffer !== 'undefined') {
  BINARY.set(SharedArrayBuffer.prototype, 'SharedArrayBuffer');
  MAKERS.set('SharedArrayBuffer', (buffer, length) => {
    const shared = new SharedArrayBuffer(length);
    new Uint8Array(shared).set(new Uint8Array(buffer));
    return shared as unknown as ArrayBuffer;
  });
}

/** Boxed primitives (`new Number(1)`, `Object(1n)`), by prototype; a boxed Symbol cannot be stored. */
const BOXED_TYPES = new Map<object, string>([
  [Number.prototype, 'Number'],
  [String.prototype, 'String'],
  [Boolean.prototype, 'Boolean'],
  [BigInt.prototype, 'BigInt'],
]);
const BOX: Record<string, (value: unknown) => object> = {
  Number: (value) => new Number(value),
  String: (value) => new String(value),
  Boolean: (value) => new Boolean(value),
  BigInt: (value) => Object(value as bigint) as object,
};

const isWellFormed = (value: string): boolean => (value as unknown as { isWellFormed(): boolean }).isWellFormed();
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

export interface Split {
  /** The body, with parts replaced by references. */
  body: Buffer;
  /** The bytes of each part, as views on the caller's arrays (not copies). */
  parts: Uint8Array[];
}

function bytesOf(value: ArrayBufferView | ArrayBuffer): Uint8Array {
  return ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value);
}

function describe(value: unknown): string {
  if (typeof value === 'function') return `the function ${value.name || '(anonymous)'}`;
  if (typeof value === 'symbol') return `the symbol ${String(value)}`;
  const proto = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null;
  const name = proto?.constructor?.name;
  return name ? `an instance of ${name}` : Object.prototype.toString.call(value);
}

/** Turns a result into the tree cbor-x encodes, collecting parts. */
class Splitter {
  readonly parts: Uint8Array[] = [];
  /** True once a tagged node was written: the reader must then walk the tree. */
  walk = false;
  private readonly seen = new Map<object, number>();
  private readonly path: (string | number)[] = [];

  constructor(private readonly minPart: number) {}

  fail(what: string, cause?: unknown): never {
    const where = `result${this.path.map((step) => (typeof step === 'number' ? `[${step}]` : step)).join('')}`;
    const shown = where.length <= 300 ? where : `${where.slice(0, 150)}…${where.slice(-120)}`;
    throw new UnstorableError(`Cannot store ${what} at ${shown}: return plain data (objects, arrays, Map, Set, TypedArrays...)`, where, cause === undefined ? undefined : { cause });
  }

  private node(kind: Kind, data: unknown): Node {
    this.walk = true;
    return new Node(kind, data);
  }

  private child(value: unknown, step: string | number): unknown {
    this.path.push(step);
    const converted = this.convert(value);
    this.path.pop();
    return converted;
  }

  private key(key: string): string | Node {
    return isWellFormed(key) ? key : this.node(Kind.Utf16, Buffer.from(key, 'utf16le'));
  }

  convert(value: unknown): unknown {
    switch (typeof value) {
      case 'number':
        return Object.is(value, -0) ? this.node(Kind.MinusZero, null) : value;
      case 'string':
        return isWellFormed(value) ? value : this.node(Kind.Utf16, Buffer.from(value, 'utf16le'));
      case 'bigint':
      case 'boolean':
      case 'undefined':
        return value;
      case 'object':
        if (value === null) return null;
        return this.object(value);
      default:
        return this.fail(describe(value));
    }
  }

  private object(value: object): unknown {
    const seen = this.seen.get(value);
    if (seen !== undefined) return this.node(Kind.Ref, seen);
    this.seen.set(value, this.seen.size);
    if (this.path.length >= MAX_RESULT_DEPTH) this.fail(`a value nested more than ${MAX_RESULT_DEPTH} levels deep`);
    const proto = Object.getPrototypeOf(value) as object | null;
    if (proto === Object.prototype || proto === null) return this.fields(value, proto === null);
    if (proto === Array.prototype) return this.array(value as unknown[]);
    const binary = BINARY.get(proto);
    if (binary !== undefined) {
      const bytes = bytesOf(value as ArrayBufferView | ArrayBuffer);
      if (bytes.byteLength >= this.minPart) {
        this.parts.push(bytes);
        return this.node(Kind.Part, [this.parts.length - 1, binary]);
      }
      return this.node(Kind.View, [binary, bytes]);
    }
    if (proto === Map.prototype) {
      const data: unknown[] = [];
      let index = 0;
      for (const [key, entry] of value as Map<unknown, unknown>) {
        data.push(this.child(key, `<key ${index}>`), this.child(entry, `<entry ${index}>`));
        index++;
      }
      return this.node(Kind.Map, data);
    }
    if (proto === Set.prototype) {
      const data: unknown[] = [];
      let index = 0;
      for (const entry of value as Set<unknown>) data.push(this.child(entry, `<entry ${index++}>`));
      return this.node(Kind.Set, data);
    }
    if (proto === Date.prototype) return this.node(Kind.Date, (value as Date).getTime());
    if (proto === RegExp.prototype) {
      const regexp = value as RegExp;
      return this.node(Kind.RegExp, [regexp.source, regexp.flags, regexp.lastIndex]);
    }
    if (proto === URL.prototype) return this.node(Kind.Url, (value as URL).href);
    const boxed = BOXED_TYPES.get(proto);
    if (boxed !== undefined) return this.node(Kind.Boxed, [boxed, this.convert((value as { valueOf(): unknown }).valueOf())]);
    return this.fail(describe(value));
  }

  /** Elements only: named properties of an array are not stored (listing keys would cost more than encoding). */
  private array(value: unknown[]): unknown {
    let dense = true;
    for (let index = 0; index < value.length && dense; index++) dense = index in value;
    if (dense) {
      const copy = new Array<unknown>(value.length);
      for (let index = 0; index < value.length; index++) copy[index] = this.child(value[index], index);
      return copy;
    }
    const data: unknown[] = [value.length];
    for (const key of Object.keys(value)) {
      const index = Number(key);
      if (Number.isInteger(index) && String(index) === key) data.push(index, this.child(value[index], index));
    }
    return this.node(Kind.SparseArray, data);
  }

  private fields(value: object, nullProto: boolean): unknown {
    const keys = Object.keys(value);
    const symbols = Object.getOwnPropertySymbols(value).filter((key) => Object.prototype.propertyIsEnumerable.call(value, key));
    if (symbols.length > 0) this.fail(`a symbol-keyed property ${String(symbols[0])}`);
    const plain = !nullProto && keys.every((key) => key !== '__proto__' && isWellFormed(key));
    if (plain) {
      const copy: Record<string, unknown> = {};
      for (const key of keys) copy[key] = this.child(this.read(value, key), IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
      return copy;
    }
    const data: unknown[] = [nullProto];
    for (const key of keys) data.push(this.key(key), this.child(this.read(value, key), `[${JSON.stringify(key)}]`));
    return this.node(Kind.Object, data);
  }

  private read(value: object, key: string): unknown {
    try {
      return (value as Record<string, unknown>)[key];
    } catch (error) {
      this.path.push(IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
      return this.fail('a value whose reading threw', error);
    }
  }
}

/** Splits a result into a body and its parts; binary values of at least `minPart` bytes become parts. */
export function splitValue(value: unknown, minPart: number): Split {
  const splitter = new Splitter(minPart);
  let tree: unknown;
  try {
    tree = splitter.convert(value);
  } catch (error) {
    if (error instanceof UnstorableError) throw error;
    // a getter, a Proxy trap, a revoked Proxy: the path still names where the walk was
    splitter.fail('a value whose reading threw', error);
  }
  let body: Buffer;
  try {
    body = encoder.encode(new Node(Kind.Body, [BODY_FORMAT, splitter.walk, tree]));
  } catch (error) {
    throw new UnstorableError(`Cannot store the result: ${(error as Error).message}`, 'result', { cause: error });
  }
  return { body, parts: splitter.parts };
}

/** A buffer holding exactly `bytes` (views on it are aligned and show nothing else). */
function ownBuffer(bytes: Uint8Array, reuse: boolean): ArrayBuffer {
  if (reuse && bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  const copy = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(copy).set(bytes);
  return copy;
}

function damaged(message: string): never {
  throw new InvalidValueError(`The stored result is damaged: ${message}`);
}

/** Rebuilds the values of a tree, in the order the Splitter met them (so references resolve). */
class Joiner {
  private readonly table: unknown[] = [];

  constructor(private readonly parts: readonly Buffer[]) {}

  private binary(kind: unknown, bytes: unknown, reuse: boolean): unknown {
    const make = MAKERS.get(kind as string);
    if (make === undefined) damaged(`a binary value of unknown type ${String(kind)} (this Node may not have it)`);
    if (!(bytes instanceof Uint8Array)) damaged('a binary value without bytes');
    const buffer = ownBuffer(bytes, reuse);
    const made = make(buffer, bytes.byteLength);
    if (ArrayBuffer.isView(made) && made.byteLength !== bytes.byteLength) damaged(`a ${String(kind)} of ${bytes.byteLength} bytes`);
    return made;
  }

  private add<T>(value: T): T {
    this.table.push(value);
    return value;
  }

  revive(item: unknown): unknown {
    if (typeof item !== 'object' || item === null) return item;
    if (item instanceof Node) return this.node(item);
    if (Array.isArray(item)) {
      this.add(item);
      for (let index = 0; index < item.length; index++) item[index] = this.revive(item[index]);
      return item;
    }
    if (item instanceof Uint8Array) damaged('bytes outside a binary value');
    this.add(item);
    const record = item as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = this.revive(record[key]);
    return item;
  }

  private list(data: unknown): unknown[] {
    if (!Array.isArray(data)) damaged('a node without its data');
    return data;
  }

  private node(node: Node): unknown {
    switch (node.kind) {
      case Kind.MinusZero:
        return -0;
      case Kind.Utf16:
        if (!(node.data instanceof Uint8Array)) damaged('a string without its code units');
        return Buffer.from(node.data.buffer, node.data.byteOffset, node.data.byteLength).toString('utf16le');
      case Kind.Ref: {
        const index = node.data as number;
        if (!(index < this.table.length)) damaged(`a reference to the value ${index}, not met yet`);
        return this.table[index];
      }
      case Kind.Object: {
        const [nullProto, ...pairs] = this.list(node.data);
        const target = this.add((nullProto === true ? Object.create(null) : {}) as Record<string, unknown>);
        for (let index = 0; index < pairs.length; index += 2) {
          const key = this.revive(pairs[index]);
          if (typeof key !== 'string') damaged('an object key that is not a string');
          Object.defineProperty(target, key, { value: this.revive(pairs[index + 1]), enumerable: true, writable: true, configurable: true });
        }
        return target;
      }
      case Kind.SparseArray: {
        const [length, ...pairs] = this.list(node.data);
        const target = this.add(new Array<unknown>(length as number));
        for (let index = 0; index < pairs.length; index += 2) target[pairs[index] as number] = this.revive(pairs[index + 1]);
        return target;
      }
      case Kind.Map: {
        const data = this.list(node.data);
        const target = this.add(new Map<unknown, unknown>());
        for (let index = 0; index < data.length; index += 2) {
          const key = this.revive(data[index]);
          target.set(key, this.revive(data[index + 1]));
        }
        return target;
      }
      case Kind.Set: {
        const target = this.add(new Set<unknown>());
        for (const entry of this.list(node.data)) target.add(this.revive(entry));
        return target;
      }
      case Kind.Date:
        return this.add(new Date(node.data as number));
      case Kind.RegExp: {
        const [source, flags, lastIndex] = this.list(node.data) as [string, string, number];
        const regexp = this.add(new RegExp(source, flags));
        regexp.lastIndex = lastIndex;
        return regexp;
      }
      case Kind.Url:
        return this.add(new URL(node.data as string));
      case Kind.Boxed: {
        const [type, primitive] = this.list(node.data) as [string, unknown];
        const box = BOX[type];
        if (box === undefined) damaged(`a boxed value of unknown type ${type}`);
        return this.add(box(this.revive(primitive)));
      }
      case Kind.View: {
        const [kind, bytes] = this.list(node.data);
        return this.add(this.binary(kind, bytes, false));
      }
      case Kind.Part: {
        const [index, kind] = this.list(node.data) as [number, string];
        const bytes = this.parts[index];
        if (bytes === undefined) throw new InvalidValueError(`The stored result refers to a missing part ${index}`);
        return this.add(this.binary(kind, bytes, true));
      }
      default:
        return damaged(`a node of unknown kind ${String(node.kind)}`);
    }
  }
}

/** Rebuilds a value from its body and the bytes of its parts. A damaged body is an InvalidValueError. */
export function joinValue(body: Uint8Array, parts: readonly Buffer[]): unknown {
  try {
    const decoded = encoder.decode(body) as unknown;
    if (!(decoded instanceof Node && decoded.kind === Kind.Body)) {
      // an earlier version's body: plain cbor-x, readable as it was read then unless it has parts
      if (parts.length === 0) return decoded;
      throw new InvalidValueError('The stored result has the format of an earlier version: it will be recomputed');
    }
    const [format, walk, tree] = decoded.data as [unknown, unknown, unknown];
    if (format !== BODY_FORMAT) throw new InvalidValueError(`The stored result has format ${String(format)}, this version reads ${BODY_FORMAT}`);
    return walk === true ? new Joiner(parts).revive(tree) : tree;
  } catch (error) {
    if (error instanceof InvalidValueError) throw error;
    throw new InvalidValueError(`The stored result cannot be decoded: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Results as tarn stores them: a small body (cbor-x) that refers to parts, and the parts (the
 * bytes of TypedArrays, Buffers and DataViews) stored one by one in a HashKeyStorage, so equal
 * parts are stored once and large arrays are never copied into the body.
 */
import { addExtension, Encoder } from 'cbor-x';
import { InvalidValueError } from '../errors.js';

/** A placeholder for the `index`-th part in a body. */
class PartRef {
  constructor(
    readonly index: number,
    readonly kind: string,
  ) {}
}

// a private tag number; the extension only applies to PartRef, a class nobody else has
addExtension({
  Class: PartRef,
  tag: 51739,
  encode(instance: PartRef, encode: (value: unknown) => Uint8Array) {
    return encode([instance.index, instance.kind]);
  },
  decode(data: [number, string]) {
    return new PartRef(data[0], data[1]);
  },
});

const encoder = new Encoder({ useRecords: false });

const VIEWS: Record<string, (buffer: ArrayBuffer, offset: number, length: number) => ArrayBufferView> = {
  Int8Array: (b, o, l) => new Int8Array(b, o, l),
  Uint8Array: (b, o, l) => new Uint8Array(b, o, l),
  Uint8ClampedArray: (b, o, l) => new Uint8ClampedArray(b, o, l),
  Int16Array: (b, o, l) => new Int16Array(b, o, l / 2),
  Uint16Array: (b, o, l) => new Uint16Array(b, o, l / 2),
  Int32Array: (b, o, l) => new Int32Array(b, o, l / 4),
  Uint32Array: (b, o, l) => new Uint32Array(b, o, l / 4),
  Float32Array: (b, o, l) => new Float32Array(b, o, l / 4),
  Float64Array: (b, o, l) => new Float64Array(b, o, l / 8),
  BigInt64Array: (b, o, l) => new BigInt64Array(b, o, l / 8),
  BigUint64Array: (b, o, l) => new BigUint64Array(b, o, l / 8),
  DataView: (b, o, l) => new DataView(b, o, l),
  Buffer: (b, o, l) => Buffer.from(b, o, l),
};

const ALIGN: Record<string, number> = { Int16Array: 2, Uint16Array: 2, Int32Array: 4, Uint32Array: 4, Float32Array: 4, Float64Array: 8, BigInt64Array: 8, BigUint64Array: 8 };

export interface Split {
  /** The body, with parts replaced by references. */
  body: Buffer;
  /** The bytes of each part, as views on the caller's arrays (not copies). */
  parts: Uint8Array[];
}

function viewKind(view: ArrayBufferView): string | null {
  if (Buffer.isBuffer(view)) return 'Buffer';
  const name = (Object.getPrototypeOf(view) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name !== undefined && name in VIEWS ? name : null;
}

/** Splits a result into a body and its parts; arrays of at least `minPart` bytes become parts. */
export function splitValue(value: unknown, minPart: number): Split {
  const parts: Uint8Array[] = [];
  const open = new Set<object>();
  const strip = (item: unknown): unknown => {
    if (typeof item !== 'object' || item === null) return item;
    if (ArrayBuffer.isView(item)) {
      const kind = viewKind(item);
      if (kind === null || item.byteLength < minPart) return item;
      parts.push(new Uint8Array(item.buffer, item.byteOffset, item.byteLength));
      return new PartRef(parts.length - 1, kind);
    }
    if (open.has(item)) throw new InvalidValueError('A cyclic result cannot be stored');
    const proto = Object.getPrototypeOf(item) as object | null;
    const plain = Array.isArray(item) || proto === Object.prototype || proto === null || item instanceof Map || item instanceof Set;
    if (!plain) return item;
    open.add(item);
    try {
      if (Array.isArray(item)) return item.map(strip);
      if (item instanceof Map) return new Map([...item].map(([k, v]) => [strip(k), strip(v)]));
      if (item instanceof Set) return new Set([...item].map(strip));
      const copy: Record<string, unknown> = proto === null ? Object.create(null) : {};
      for (const key of Object.keys(item)) copy[key] = strip((item as Record<string, unknown>)[key]);
      return copy;
    } finally {
      open.delete(item);
    }
  };
  const stripped = strip(value);
  return { body: encoder.encode(stripped), parts };
}

/** Rebuilds a value from its body and the bytes of its parts. */
export function joinValue(body: Uint8Array, parts: readonly Buffer[]): unknown {
  const decoded = encoder.decode(body) as unknown;
  if (parts.length === 0) return decoded;
  const fill = (item: unknown): unknown => {
    if (item instanceof PartRef) {
      const bytes = parts[item.index];
      if (bytes === undefined) throw new InvalidValueError(`The stored result refers to a missing part ${item.index}`);
      const make = VIEWS[item.kind];
      if (make === undefined) throw new InvalidValueError(`The stored result has a part of unknown kind ${item.kind}`);
      if (bytes.byteOffset % (ALIGN[item.kind] ?? 1) === 0) return make(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
      const copy = new ArrayBuffer(bytes.byteLength);
      new Uint8Array(copy).set(bytes);
      return make(copy, 0, bytes.byteLength);
    }
    if (typeof item !== 'object' || item === null || ArrayBuffer.isView(item)) return item;
    if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) item[i] = fill(item[i]);
      return item;
    }
    if (item instanceof Map) return new Map([...item].map(([k, v]) => [fill(k), fill(v)]));
    if (item instanceof Set) return new Set([...item].map(fill));
    const proto = Object.getPrototypeOf(item) as object | null;
    if (proto !== Object.prototype && proto !== null) return item;
    for (const key of Object.keys(item)) (item as Record<string, unknown>)[key] = fill((item as Record<string, unknown>)[key]);
    return item;
  };
  return fill(decoded);
}

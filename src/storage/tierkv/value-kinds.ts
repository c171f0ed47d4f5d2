import { InvalidValueError } from '../../errors.js';

/**
 * The type a value was given as, stored with its entry so that `get` gives the same type back.
 * The numbers are stored in SQLite files: never renumber them.
 */
export enum ValueKind {
  /** A Buffer, a Uint8Array or a string: given back as a Buffer. */
  Bytes = 0,
  ArrayBuffer = 1,
  DataView = 2,
  Int8Array = 3,
  Uint8ClampedArray = 4,
  Int16Array = 5,
  Uint16Array = 6,
  Int32Array = 7,
  Uint32Array = 8,
  Float32Array = 9,
  Float64Array = 10,
  BigInt64Array = 11,
  BigUint64Array = 12,
  Float16Array = 13,
}

/** What `set` takes: every TypedArray, DataView or ArrayBuffer, and strings (stored as their UTF-8 bytes). */
export type TierValue = ArrayBufferView | ArrayBuffer | string;

/**
 * What `get` gives back: the type the value was set as (a TypedArray, DataView or ArrayBuffer),
 * and a Buffer for a Buffer, a plain Uint8Array or a string.
 */
export type StoredValue = Buffer | ArrayBufferView | ArrayBuffer;

type ViewConstructor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView;

/** The TypedArray constructors by kind (Float16Array where this Node has it: 24 and later). */
const VIEWS: (ViewConstructor | undefined)[] = [];
const typed: [ValueKind, string][] = [
  [ValueKind.Int8Array, 'Int8Array'],
  [ValueKind.Uint8ClampedArray, 'Uint8ClampedArray'],
  [ValueKind.Int16Array, 'Int16Array'],
  [ValueKind.Uint16Array, 'Uint16Array'],
  [ValueKind.Int32Array, 'Int32Array'],
  [ValueKind.Uint32Array, 'Uint32Array'],
  [ValueKind.Float32Array, 'Float32Array'],
  [ValueKind.Float64Array, 'Float64Array'],
  [ValueKind.BigInt64Array, 'BigInt64Array'],
  [ValueKind.BigUint64Array, 'BigUint64Array'],
  [ValueKind.Float16Array, 'Float16Array'],
];
const KIND_OF = new Map<unknown, ValueKind>();
for (const [kind, name] of typed) {
  const constructor = (globalThis as Record<string, unknown>)[name] as ViewConstructor | undefined;
  VIEWS[kind] = constructor;
  if (constructor) KIND_OF.set(constructor, kind);
}

/** Bytes per element of a kind (the alignment its view needs). */
function elementSize(kind: ValueKind): number {
  const constructor = VIEWS[kind] as { BYTES_PER_ELEMENT?: number } | undefined;
  return constructor?.BYTES_PER_ELEMENT ?? 1;
}

/** The stored bytes of a value (a view of the caller's memory, not a copy) and its kind. */
export function toStored(value: TierValue): { bytes: Buffer; kind: ValueKind } {
  if (Buffer.isBuffer(value)) return { bytes: value, kind: ValueKind.Bytes };
  if (typeof value === 'string') return { bytes: Buffer.from(value, 'utf8'), kind: ValueKind.Bytes };
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (value instanceof Uint8Array && value.constructor === Uint8Array) return { bytes, kind: ValueKind.Bytes };
    if (value instanceof DataView) return { bytes, kind: ValueKind.DataView };
    const kind = KIND_OF.get(value.constructor);
    if (kind !== undefined) return { bytes, kind };
    // a subclass of a TypedArray: stored as its base type
    for (const [constructor, base] of KIND_OF) if (value instanceof (constructor as ViewConstructor)) return { bytes, kind: base };
    if (value instanceof Uint8Array) return { bytes, kind: ValueKind.Bytes };
  }
  if (value instanceof ArrayBuffer) return { bytes: Buffer.from(value), kind: ValueKind.ArrayBuffer };
  throw new InvalidValueError(
    `A TierKV value must be a TypedArray, a DataView, an ArrayBuffer or a string, not ${Object.prototype.toString.call(value)}`,
  );
}

/** Offset at which a value of this kind may start in a shared block: views need their element alignment. */
export const ALIGN = 8;

/**
 * The value as its kind, over `bytes` (no copy when `bytes` may be handed out as they are and are
 * aligned for the kind; a copy otherwise). `own`: `bytes` is the caller's alone (its ArrayBuffer
 * may be given out whole when it is exactly the value).
 */
export function fromStored(bytes: Buffer, kind: ValueKind): StoredValue {
  if (kind === ValueKind.Bytes) return bytes;
  if (kind === ValueKind.ArrayBuffer) {
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
    return whole ? (bytes.buffer as ArrayBuffer) : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
  if (kind === ValueKind.DataView) return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const constructor = VIEWS[kind];
  if (!constructor) throw new InvalidValueError(`This value was stored as a ${kindName(kind)}, which this Node does not have`);
  const size = elementSize(kind);
  if (bytes.byteOffset % size === 0) return new constructor(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new constructor(copy.buffer, 0, bytes.byteLength / size);
}

function kindName(kind: ValueKind): string {
  return typed.find(([k]) => k === kind)?.[1] ?? `kind ${kind}`;
}

/**
 * The identity of a class, for keying its instances: two classes with one name but different
 * code, or from different modules, are different classes, and a cached function can tell their
 * instances apart (their methods differ). An identity is the class's name, the digest of its
 * normalised code (the class body, the methods on its prototype, and the identity of its base
 * class) and the module it comes from.
 *
 * Identities are computed once per class object (a WeakMap): a method patched onto a prototype
 * after the class's first use as an argument does not change its identity.
 */
import { createHash } from 'node:crypto';
import * as acorn from 'acorn';
import { moduleOf } from './function-digest.js';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type AnyFunction = Function;

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;
const identities = new WeakMap<AnyFunction, string>();

/** The module a class was defined in, so that two modules holding one class source do not share keys. */
export function moduleOfClass(ctor: AnyFunction): string {
  return moduleOf(ctor);
}

type Node = acorn.Node & Record<string, unknown>;

/** Parses the source of a class, a function or a method (which does not parse alone). */
function parseCode(source: string): Node | null {
  for (const text of [`(${source})`, `({${source}})`, `(class{${source}})`]) {
    try {
      const program = acorn.parse(text, { ecmaVersion: 'latest', sourceType: 'script' }) as unknown as Node;
      if ((program.body as Node[]).length === 1) return program;
    } catch {
      // try the next wrapper
    }
  }
  return null;
}

/**
 * The code as its AST without positions or raw literal text, so comments and formatting do not
 * count; a source that does not parse is taken as written (extra misses, never a wrong hit).
 */
function normalisedCode(source: string): string {
  const program = parseCode(source);
  if (program === null) return `raw:${source}`;
  return JSON.stringify(program, function (this: Record<string, unknown>, key, value: unknown) {
    if (key === 'start' || key === 'end') return undefined;
    if (key === 'raw' && this.type === 'Literal') return undefined;
    if (typeof value === 'bigint') return `${value}n`;
    return value;
  });
}

/** The code of every function on the prototype (methods, getters, setters), by key, sorted. */
function prototypeCode(prototype: object): string[] {
  const lines: string[] = [];
  for (const key of Reflect.ownKeys(prototype)) {
    if (key === 'constructor') continue;
    const descriptor = Object.getOwnPropertyDescriptor(prototype, key)!;
    const label = typeof key === 'symbol' ? `symbol:${key.description ?? ''}` : `string:${key}`;
    for (const [part, fn] of [['value', descriptor.value], ['get', descriptor.get], ['set', descriptor.set]] as const) {
      if (typeof fn === 'function') lines.push(`${label}\u0000${part}\u0000${normalisedCode(Function.prototype.toString.call(fn))}`);
    }
  }
  return lines.sort();
}

/** The class whose instances have `prototype` as their prototype, or null for an ad-hoc prototype. */
export function classOf(prototype: object): AnyFunction | null {
  const ctor = (prototype as { constructor?: unknown }).constructor;
  return typeof ctor === 'function' && ctor.prototype === prototype ? ctor : null;
}

/**
 * `name:sha256` of the class's name, module and normalised code (its body, its prototype's
 * methods and its base class); `native:name` for a built-in class.
 */
export function classIdentity(ctor: AnyFunction): string {
  const known = identities.get(ctor);
  if (known !== undefined) return known;
  const source = Function.prototype.toString.call(ctor);
  let identity: string;
  if (NATIVE.test(source)) {
    identity = `native:${ctor.name}`;
  } else {
    const hash = createHash('sha256');
    hash.update(`cairn.classIdentity/1\u0000${ctor.name}\u0000${moduleOfClass(ctor)}\u0000${normalisedCode(source)}`);
    const prototype = (ctor as { prototype?: unknown }).prototype;
    if (typeof prototype === 'object' && prototype !== null) {
      for (const line of prototypeCode(prototype)) hash.update(`\u0000${line}`);
      // the base through the prototype chain: covers `extends` and older prototype wiring alike
      const baseProto = Object.getPrototypeOf(prototype) as object | null;
      const base = baseProto === null || baseProto === Object.prototype ? null : classOf(baseProto);
      hash.update(`\u0000extends\u0000${base === null ? (baseProto === null ? 'null' : 'Object') : classIdentity(base)}`);
    }
    identity = `${ctor.name}:${hash.digest('hex')}`;
  }
  identities.set(ctor, identity);
  return identity;
}

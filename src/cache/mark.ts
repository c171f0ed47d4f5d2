/**
 * Marks that tell smartCache how to key a dependency, as tarn's `mark_unstable`:
 * - unstable: hashed by its code (and the code of what it reaches), so editing it invalidates;
 * - stable (pinned): hashed by a name only, so editing it never invalidates;
 * - unmarked: not hashed at all (tarn's rule: an unmarked helper is trusted not to change).
 */

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type AnyFunction = Function;

const unstable = new WeakSet<object>();
const stable = new WeakMap<object, string>();

interface DecoratorContextLike {
  kind: string;
  name?: string | symbol;
}

function isDecoratorContext(value: unknown): value is DecoratorContextLike {
  return typeof value === 'object' && value !== null && typeof (value as DecoratorContextLike).kind === 'string';
}

/**
 * Marks a function, a class or a method as unstable: its code takes part in the key of every
 * cached function that reaches it (through closures, module scope or imports).
 *
 * - `markUnstable(fn)` / `markUnstable(SomeClass)` returns its argument;
 * - `markUnstable(SomeClass.prototype, 'method')` marks one method;
 * - `@markUnstable` works as a standard class or method decorator.
 */
export function markUnstable<T extends AnyFunction>(target: T, context?: DecoratorContextLike): T;
export function markUnstable(owner: object, method: string | symbol): void;
export function markUnstable(target: unknown, second?: unknown): unknown {
  if (typeof second === 'string' || typeof second === 'symbol') {
    const method = (target as Record<string | symbol, unknown>)[second];
    if (typeof method !== 'function') throw new TypeError(`markUnstable: ${String(second)} is not a method`);
    unstable.add(method);
    return undefined;
  }
  if (typeof target !== 'function') throw new TypeError('markUnstable expects a function, a class or a method');
  if (second !== undefined && !isDecoratorContext(second)) throw new TypeError('markUnstable: unexpected second argument');
  unstable.add(target);
  return target;
}

/**
 * Pins a function, class or method by name: its code is never hashed, only `name`, so edits to
 * it never invalidate (change the name to invalidate on purpose). Pinning wins over
 * markUnstable. `@markStable('name')` is the decorator form.
 */
export function markStable<T extends AnyFunction>(target: T, name?: string): T;
export function markStable(name: string): <T extends AnyFunction>(target: T, context?: DecoratorContextLike) => T;
export function markStable(target: unknown, name?: string): unknown {
  if (typeof target === 'string') {
    const pinned = target;
    return <T extends AnyFunction>(value: T) => markStable(value, pinned);
  }
  if (typeof target !== 'function') throw new TypeError('markStable expects a function, a class or a method');
  const pinned = name ?? target.name;
  if (!pinned) throw new TypeError('markStable: an anonymous function needs an explicit name');
  stable.set(target, pinned);
  return target;
}

export type Mark = { kind: 'unstable' } | { kind: 'stable'; name: string } | null;

export function markOf(value: unknown): Mark {
  if (typeof value !== 'function') return null;
  const name = stable.get(value);
  if (name !== undefined) return { kind: 'stable', name };
  return unstable.has(value) ? { kind: 'unstable' } : null;
}

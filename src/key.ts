import { InvalidKeyError } from './errors.js';

/** A key: the lowercase hex sha256 digest of a value (64 characters). */
export type Key = string;

const KEY_PATTERN = /^[0-9a-f]{64}$/;

export function isKey(value: unknown): value is Key {
  return typeof value === 'string' && KEY_PATTERN.test(value);
}

/** Throws InvalidKeyError for anything that is not a key, so a key can never become an arbitrary path. */
export function assertKey(value: unknown): asserts value is Key {
  if (!isKey(value)) throw new InvalidKeyError(value);
}

// the key of some bytes is computed in digest.ts, with every other sha256 of cairn
export { digestBytes } from './digest.js';

/**
 * Splits a key into path parts following tarn's `levels`: [1, -1] gives ['ab', 'cdef…'].
 * -1 (only last) takes the rest of the key.
 */
export function keyToParts(key: Key, levels: readonly number[]): string[] {
  const parts: string[] = [];
  let start = 0;
  for (const level of levels) {
    const stop = level === -1 ? key.length : start + level * 2;
    parts.push(key.slice(start, stop));
    start = stop;
  }
  return parts;
}

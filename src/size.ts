import { ConfigError } from './errors.js';

const UNITS: Record<string, number> = {
  b: 1,
  k: 1e3, kb: 1e3, kib: 1024,
  m: 1e6, mb: 1e6, mib: 1024 ** 2,
  g: 1e9, gb: 1e9, gib: 1024 ** 3,
  t: 1e12, tb: 1e12, tib: 1024 ** 4,
  p: 1e15, pb: 1e15, pib: 1024 ** 5,
};

/** A size in bytes, or a string such as '500GB', '2 GiB', '100k' (decimal units as humanfriendly/tarn, *iB binary). */
export type Size = number | string;

export function parseSize(value: Size, what = 'size'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.floor(value);
    throw new ConfigError(`Invalid ${what}: ${value} (expected a non-negative number of bytes)`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(String(value));
  const unit = match ? UNITS[match[2]!.toLowerCase() || 'b'] : undefined;
  if (!match || unit === undefined) {
    throw new ConfigError(`Invalid ${what}: ${JSON.stringify(value)} (expected bytes or a string like '500GB')`);
  }
  return Math.floor(Number(match[1]) * unit);
}

/** A fraction in [0, 1], as the seed's `limit=0.9`. */
export function parseFraction(value: number, what: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new ConfigError(`Invalid ${what}: ${value} (expected a fraction between 0 and 1)`);
  }
  return value;
}

import { InvalidValueError } from '../errors.js';
import { Disk } from './disk/disk.js';
import { Fanout } from './compose/fanout.js';
import type { Location, LocationLike } from './interface.js';

export function isLocation(value: unknown): value is Location {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Location).read === 'function' &&
    typeof (value as Location).write === 'function' &&
    typeof (value as Location).contents === 'function'
  );
}

/** A string is a Disk at that folder; an array is a Fanout of its items. */
export function resolveLocation(value: LocationLike | readonly LocationLike[]): Location {
  if (typeof value === 'string') return new Disk(value);
  if (Array.isArray(value)) return new Fanout(...value);
  if (isLocation(value)) return value;
  throw new InvalidValueError(`Not a location: ${Object.prototype.toString.call(value)} (expected a Location, a folder path or an array of them)`);
}

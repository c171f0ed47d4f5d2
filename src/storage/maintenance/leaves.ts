import { Disk } from '../../locations/disk.js';
import { Fanout } from '../../locations/fanout.js';
import type { Location, LocationLike } from '../../locations/interface.js';
import { Levels } from '../../locations/levels.js';
import { resolveLocation } from '../../locations/resolve.js';
import { Small } from '../../locations/small.js';
import { HashKeyStorage } from '../hash-key-storage.js';

/** A location (a folder is a Disk there), or a HashKeyStorage (its local and remote locations). */
export type Target = LocationLike | HashKeyStorage<boolean>;

/** A folder is a Disk at that folder. */
function rootOf(target: Target): Location | HashKeyStorage<boolean> {
  return typeof target === 'string' ? resolveLocation(target) : target;
}

/** Calls `visit` on every location of a composition, wrappers first, descending into each. */
function walk(target: Target, visit: (location: Location) => void): void {
  const descend = (location: Location): void => {
    visit(location);
    if (location instanceof Levels) location.levels.forEach((level) => descend(level.location));
    else if (location instanceof Fanout) location.locations.forEach(descend);
    else if (location instanceof Small) descend(location.location);
  };
  const root = rootOf(target);
  if (root instanceof HashKeyStorage) {
    descend(root.local);
    if (root.remote) descend(root.remote);
  } else descend(root);
}

const isWrapper = (location: Location): boolean => location instanceof Levels || location instanceof Fanout || location instanceof Small;

/** The locations that hold blobs themselves (not Levels, Fanout or Small), each once, in order. */
export function leaves(target: Target): Location[] {
  const found: Location[] = [];
  walk(target, (location) => {
    if (!isWrapper(location) && !found.includes(location)) found.push(location);
  });
  return found;
}

/** Every Levels in a composition (for their counters). */
export function levelsOf(target: Target): Levels[] {
  const found: Levels[] = [];
  walk(target, (location) => {
    if (location instanceof Levels) found.push(location);
  });
  return found;
}

export function disks(target: Target): Disk[] {
  return leaves(target).filter((location): location is Disk => location instanceof Disk);
}

/** The location a target reads from (a HashKeyStorage: its local locations). */
export function locationOf(target: Target): Location {
  const root = rootOf(target);
  return root instanceof HashKeyStorage ? root.local : root;
}

import { adminOf, type LakeAdmin } from '../../locations/admin.js';
import type { Disk } from '../../locations/disk/disk.js';
import { Fanout } from '../../locations/compose/fanout.js';
import type { Location, LocationLike } from '../../locations/interface.js';
import { Levels } from '../../locations/compose/levels.js';
import { resolveLocation } from '../../locations/resolve.js';
import { Small } from '../../locations/compose/small.js';
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

/** The locations of `target` that can be administered on this machine (Disk, Packed), with their admin view. */
export function administered(target: Target): LakeAdmin[] {
  return leaves(target).flatMap((location) => adminOf(location) ?? []);
}

/** The Disks of `target` (stores with a file per value, in tarn's layout). */
export function disks(target: Target): Disk[] {
  return administered(target).flatMap((admin) => (admin.threadOpen()?.kind === 'disk' ? [admin.location as Disk] : []));
}

/** A leaf of a composition and the locations below it: those a Levels reads after it (a HashKeyStorage's remote too). */
export interface Layer {
  location: Location;
  below: Location[];
}

/** Every leaf of `target` once, with what is below it (see Layer). */
export function layers(target: Target): Layer[] {
  const found: Layer[] = [];
  const descend = (location: Location, below: Location[]): void => {
    if (location instanceof Levels) {
      const levels = location.levels.map((level) => level.location);
      levels.forEach((level, index) => descend(level, [...levels.slice(index + 1), ...below]));
    } else if (location instanceof Fanout) location.locations.forEach((inner) => descend(inner, below));
    else if (location instanceof Small) descend(location.location, below);
    else if (!found.some((layer) => layer.location === location)) found.push({ location, below });
  };
  const root = rootOf(target);
  if (root instanceof HashKeyStorage) {
    descend(root.local, root.remote ? [root.remote] : []);
    if (root.remote) descend(root.remote, []);
  } else descend(root, []);
  return found;
}

/** The location a target reads from (a HashKeyStorage: its local locations). */
export function locationOf(target: Target): Location {
  const root = rootOf(target);
  return root instanceof HashKeyStorage ? root.local : root;
}

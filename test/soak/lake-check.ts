import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Disk } from '../../src/index.js';
import { StorageCorruption } from '../../src/errors.js';
import type { Tally } from './values.js';

/** Acknowledged writes: key -> every label some acknowledged write of it gave. */
export type Acknowledged = Map<string, Set<string>>;

/** Reads `<key> <label,label>` lines (the last, unterminated one is a write not acknowledged). */
export function addAcknowledged(acked: Acknowledged, output: string): void {
  const lines = output.split('\n');
  lines.pop();
  for (const line of lines) {
    const [key, labels] = line.split(' ');
    if (!key || key === 'null') continue;
    const set = acked.get(key) ?? new Set<string>();
    for (const label of labels?.split(',') ?? []) if (label) set.add(label);
    acked.set(key, set);
  }
}

/** Every acknowledged value read back and verified, with its labels; counts go into `tally`. */
export async function checkAcknowledged(root: string, acked: Acknowledged, tally: Tally, problems: string[]): Promise<void> {
  const disk = new Disk(root);
  for (const [key, labels] of acked) {
    tally.acknowledged++;
    let bytes: Buffer | null;
    try {
      bytes = await disk.readBytes(key);
    } catch (error) {
      if (!(error instanceof StorageCorruption)) throw error;
      tally.corrupt++;
      problems.push(`corrupt ${key}`);
      continue;
    }
    if (bytes === null) {
      tally.lost++;
      problems.push(`lost ${key}`);
      continue;
    }
    // labelsOf is synchronous: labels a killed gc held aside are back once the recovery is done
    await disk.recovered();
    const stored = new Set(disk.labelsOf(key) ?? []);
    const missing = [...labels].filter((label) => !stored.has(label));
    if (missing.length > 0) {
      tally.labelsMissing += missing.length;
      problems.push(`labels of ${key}: missing ${missing.join(',')}`);
    }
  }
  await disk.close();
}

/**
 * What a lake holds that is neither a blob nor a blob's mark or labels: temp files, gc runs (one
 * finished, empty run is the newest run's name and stays), trash, label locks, marks and labels
 * whose blob is gone. Each is counted in `tally.leftOver`.
 */
export function countLeftOvers(root: string, tally: Tally, problems: string[]): void {
  const disk = new Disk(root);
  const found: string[] = [];
  for (const name of readdirSync(join(root, '.tmp'))) found.push(`.tmp/${name}`);
  if (existsSync(join(root, '.trash')) && readdirSync(join(root, '.trash')).length > 0) found.push('.trash/*');
  const runs = join(root, 'tools', 'gc');
  if (existsSync(runs)) {
    for (const name of readdirSync(runs)) {
      if (!name.endsWith('.done')) found.push(`tools/gc/${name}`);
      else for (const inner of readdirSync(join(runs, name))) found.push(`tools/gc/${name}/${inner}`);
    }
  }
  // tarn's layout: marks in tools/usage/ab/<rest>, labels in tools/labels/ab/<rest>.json
  const [marks, labels] = [join(root, 'tools', 'usage'), join(root, 'tools', 'labels')];
  for (const [folder, suffix] of [
    [marks, ''],
    [labels, '.json'],
  ] as const) {
    if (!existsSync(folder)) continue;
    for (const prefix of readdirSync(folder)) {
      for (const name of readdirSync(join(folder, prefix))) {
        if (suffix !== '' && !name.endsWith(suffix)) {
          found.push(`${folder}/${prefix}/${name}`);
          continue;
        }
        const key = prefix + name.slice(0, name.length - suffix.length);
        if (statSync(disk.pathOf(key), { throwIfNoEntry: false }) === undefined) found.push(`orphan ${folder}/${prefix}/${name}`);
      }
    }
  }
  tally.leftOver += found.length;
  problems.push(...found.map((item) => `left over: ${item}`));
}

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../../process-alive.js';

/** A file left behind by a writer that was killed: a blob no entry names, or a temp file. */
export interface Orphan {
  path: string;
  size: number;
  temp: boolean;
}

const KEY = /^[0-9a-f]{64}$/;
/** Disk's temp files in `.tmp/`: `<key prefix>.<pid base 36><6 hex>.<counter>`. */
const DISK_TEMP = /^[0-9a-f]+\.([0-9a-z]+)[0-9a-f]{6}\.[0-9a-z]+$/;
/** A filesystem tier's own temp files beside a blob: `<blob file>.<pid>.tmp`. */
const TIER_TEMP = /\.(\d+)\.tmp$/;

/**
 * The orphans in a tier's blob folder (a cairn Disk): blob files whose key is not in `named`, and
 * temp files whose writer no longer runs. Marks, labels and the config (`tools/`, `config.yml`)
 * are not looked at.
 */
export function* orphanFiles(root: string, named: ReadonlySet<string>): Generator<Orphan> {
  const tmp = join(root, '.tmp');
  for (const name of safeList(tmp)) {
    const match = DISK_TEMP.exec(name);
    if (match && !processAlive(parseInt(match[1]!, 36))) yield { path: join(tmp, name), size: sizeOf(join(tmp, name)), temp: true };
  }
  yield* walk(root, '', named);
}

function* walk(dir: string, prefix: string, named: ReadonlySet<string>): Generator<Orphan> {
  for (const entry of safeList(dir, true)) {
    const name = entry.name;
    const path = join(dir, name);
    if (entry.isDirectory()) {
      // blob folders are named by hex digits of the key; anything else (`.tmp`, `tools`) is not a blob's
      if (/^[0-9a-f]+$/.test(name)) yield* walk(path, prefix + name, named);
      continue;
    }
    const temp = TIER_TEMP.exec(name);
    if (temp) {
      if (!processAlive(Number(temp[1]))) yield { path, size: sizeOf(path), temp: true };
      continue;
    }
    const key = prefix + name;
    if (KEY.test(key) && !named.has(key)) yield { path, size: sizeOf(path), temp: false };
  }
}

function safeList(dir: string): string[];
function safeList(dir: string, withTypes: true): import('node:fs').Dirent[];
function safeList(dir: string, withTypes = false): (string | import('node:fs').Dirent)[] {
  try {
    return withTypes ? readdirSync(dir, { withFileTypes: true }) : readdirSync(dir);
  } catch {
    return []; // not created yet, or removed meanwhile
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

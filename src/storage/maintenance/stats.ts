import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { LevelStats } from '../../locations/compose/levels.js';
import type { LakeAdmin } from '../../locations/admin.js';
import { administered, levelsOf, type Target } from './leaves.js';
import { onTermination } from '../on-termination.js';

/** Hits and misses of one cached function (what a smartCache function's `stats` holds). */
export interface FunctionStats {
  hits: number;
  misses: number;
  errors?: number;
}

/** Something with counters: a smartCache function (its `stats`), or a plain counters object. */
export type FunctionLike = { stats: FunctionStats } | FunctionStats;

/** The counters of one process, as saved in a lake's stats folder. */
export interface StatsSnapshot {
  host: string;
  pid: number;
  /** When the counters were saved (ISO time). */
  at: string;
  levels: LevelStats[];
  functions: Record<string, FunctionStats>;
}

export interface KeepStatsOptions {
  /** Cached functions to report, by name. @default none */
  functions?: Record<string, FunctionLike>;
  /** Save every this many ms (and at exit). @default 60000 */
  intervalMs?: number;
}

/** The counters of every Levels in `target` and of the given functions, now. */
export function collectStats(target: Target, functions: Record<string, FunctionLike> = {}): StatsSnapshot {
  return {
    host: hostname(),
    pid: process.pid,
    at: new Date().toISOString(),
    levels: levelsOf(target).flatMap((levels) => levels.stats()),
    functions: Object.fromEntries(
      Object.entries(functions).map(([name, fn]) => {
        const stats = 'stats' in fn ? fn.stats : fn;
        return [name, { hits: stats.hits, misses: stats.misses, errors: stats.errors ?? 0 }];
      }),
    ),
  };
}

/**
 * Where counters are saved: a Disk's `tools/stats/` (tarn's walk skips `tools/`; a folder at the
 * root would be listed by its glob), a Packed store's `stats/`; older versions used `.stats/` at
 * the root, still read.
 */
function statsFolders(admin: LakeAdmin): string[] {
  return [join(admin.sideFolder, 'stats'), join(admin.folder, '.stats')];
}

/**
 * Saves this process's counters into `<host>-<pid>.json` of the stats folder of the first local
 * store of `target` (atomically), where `cairn stats` finds them. Returns the file, or null without one.
 */
export function saveStats(target: Target, functions: Record<string, FunctionLike> = {}): string | null {
  const admin = administered(target)[0];
  if (!admin) return null;
  const snapshot = collectStats(target, functions);
  const dir = statsFolders(admin)[0]!;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${snapshot.host}-${snapshot.pid}.json`);
  const tmp = `${file}.${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, JSON.stringify(snapshot));
  renameSync(tmp, file);
  return file;
}

/**
 * Counters live in a process; this saves them every `intervalMs` and when the process exits or is
 * interrupted (SIGINT, SIGTERM), so
 * that `cairn stats` (another process) can read them. Returns a function that stops it (and saves once more).
 */
export function keepStats(target: Target, options: KeepStatsOptions = {}): () => void {
  const save = () => {
    try {
      saveStats(target, options.functions);
    } catch {
      // a lake we cannot write (read-only mount): the counters stay available from the API
    }
  };
  const timer = setInterval(save, options.intervalMs ?? 60_000);
  timer.unref();
  // at exit, and on Ctrl-C / SIGTERM too: those end a plain node process without an exit event
  const cancel = onTermination(save);
  return () => {
    clearInterval(timer);
    cancel();
    save();
  };
}

/** The snapshots saved in the stats folders of `target`'s local stores, newest first. */
export function readStats(target: Target): StatsSnapshot[] {
  const snapshots: StatsSnapshot[] = [];
  for (const dir of administered(target).flatMap(statsFolders)) {
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((name) => name.endsWith('.json'));
    } catch {
      continue;
    }
    for (const name of names) {
      try {
        snapshots.push(JSON.parse(readFileSync(join(dir, name), 'utf8')) as StatsSnapshot);
      } catch {
        // a file being replaced right now, or not ours
      }
    }
  }
  return snapshots.sort((a, b) => b.at.localeCompare(a.at));
}

/** Sums the snapshots per level name and per function name. */
export function sumStats(snapshots: readonly StatsSnapshot[]): { levels: LevelStats[]; functions: Record<string, FunctionStats> } {
  const levels = new Map<string, LevelStats>();
  const functions: Record<string, FunctionStats> = {};
  for (const snapshot of snapshots) {
    for (const level of snapshot.levels) {
      const sum = levels.get(level.name) ?? { name: level.name, hits: 0, misses: 0, bytes: 0, errors: 0 };
      sum.hits += level.hits;
      sum.misses += level.misses;
      sum.bytes += level.bytes;
      sum.errors += level.errors;
      levels.set(level.name, sum);
    }
    for (const [name, stats] of Object.entries(snapshot.functions)) {
      const sum = (functions[name] ??= { hits: 0, misses: 0, errors: 0 });
      sum.hits += stats.hits;
      sum.misses += stats.misses;
      sum.errors = (sum.errors ?? 0) + (stats.errors ?? 0);
    }
  }
  return { levels: [...levels.values()], functions };
}

/** Removes saved snapshots (`cairn stats --reset`). */
export function clearStats(target: Target): void {
  for (const dir of administered(target).flatMap(statsFolders)) rmSync(dir, { recursive: true, force: true });
}

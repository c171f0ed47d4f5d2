/**
 * Invalidation tests run real code in fresh processes: modules are written to a temp folder,
 * each run is a new `node --import tsx` (so cairn's TypeScript and the test's own `.ts` load),
 * and files are edited between runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'vitest';

export const root = fileURLToPath(new URL('../..', import.meta.url));
/** What the modules of a test import cairn from. */
export const cairnUrl = pathToFileURL(join(root, 'src/cache/index.ts')).href;

export interface Run {
  result: unknown;
  hits: number;
  misses: number;
  explain: { hit: boolean; reasons: string[] };
  [more: string]: unknown;
}

/** Writes files (path relative to `dir` → text); `CAIRN` in a text is replaced by cairn's URL. */
export function writeProject(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    const file = join(dir, name);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text.replaceAll('CAIRN', JSON.stringify(cairnUrl)));
  }
}

/** Runs `entry` in a fresh node with tsx; parses the last line it prints as JSON. */
export function runNode(dir: string, entry: string, args: string[] = [], env: Record<string, string> = {}): Run {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(dir, entry), ...args], {
    cwd: root,
    env: { ...process.env, CACHE: join(dir, 'cache'), NODE_NO_WARNINGS: '1', ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as Run;
}

/** Replaces `from` by `to` in `file`; fails the test when nothing changed. */
export function edit(file: string, from: string | RegExp, to: string): void {
  const before = readFileSync(file, 'utf8');
  const after = before.replace(from, to);
  expect(after, `edit of ${file}`).not.toBe(before);
  writeFileSync(file, after);
}

/** A runner module: imports `compute` from `main`, calls it with the number it is given, prints what happened. */
export const RUNNER = (main: string): string => `
const { compute } = await import(${JSON.stringify(main)});
const arg = Number(process.argv[2]);
const explain = await compute.explain(arg);
const result = await compute(arg);
console.log(JSON.stringify({ result, hits: compute.stats.hits, misses: compute.stats.misses, explain }));
`;

/**
 * Every ```ts block of the guides in docs/ runs as written, in an empty folder, with `cairn`
 * resolving to this checkout (blocks marked ```ts sketch show an API shape and are not run;
 * cli.md and configuration.md have their own tests; the remote-location pages need servers).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from './helpers/tmp.js';

afterAll(cleanup);

const root = join(import.meta.dirname, '..');
const docs = join(root, 'docs');
const tsx = pathToFileURL(join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
const cairn = pathToFileURL(join(root, 'src', 'index.ts')).href;
/** `cairn-lake/<area>` is src/entries/<area>.ts (package.json's exports, before the build). */
const area = (name: string) => pathToFileURL(join(root, 'src', 'entries', `${name}.ts`)).href;

function examples(file: string): string[] {
  const text = readFileSync(join(docs, file), 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
}

function run(code: string): { status: number | null; stdout: string; stderr: string } {
  const dir = tempDir();
  writeFileSync(join(dir, 'example.mts'), code
    .replaceAll("from 'cairn-lake'", `from '${cairn}'`)
    .replaceAll("from 'cairn'", `from '${cairn}'`)
    .replace(/from 'cairn-lake\/([a-z0-9]+)'/g, (_match, name: string) => `from '${area(name)}'`));
  return spawnSync(process.execPath, ['--import', tsx, join(dir, 'example.mts')], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
}

/** What some examples print, where the comment next to the code says so. */
const expected: Record<string, (RegExp | string)[]> = {
  'errors.md#0': [/^ERR_NOT_FOUND 64$/m, "[ 'NotFoundError' ]"],
  'getting-started.md#0': [/^[0-9a-f]{64} 2097152 2097152$/m],
  'getting-started.md#1': [/ of 8388608 bytes$/m, /^AbortError$/m],
  'getting-started.md#2': [/^1 1$/m],
  'smart-cache.md#1': [/^true 1$/m],
  'smart-cache.md#2': [/^stored [0-9a-f]{8} after \d+\.\d ms$/m, '{ hit: 1, miss: 1 }'],
  'locations.md#0': ['[ 1, -1 ]'],
  'locations.md#3': [/^true$/m],
  'locations.md#5': ['written on a'],
  'locations.md#6': [/^true false$/m],
};

const guides = readdirSync(docs).filter((name) => name.endsWith('.md') && examples(name).length > 0);

describe('docs examples', () => {
  it('finds the guides with examples', () => {
    expect(guides).toEqual(expect.arrayContaining(['getting-started.md', 'locations.md', 'smart-cache.md', 'tierkv.md']));
  });

  for (const guide of guides) {
    examples(guide).forEach((code, index) => {
      it(`${guide}, example ${index + 1} runs as written`, () => {
        const result = run(code);
        expect(result.stderr.split('\n').filter((line) => /Error|error/.test(line))).toEqual([]);
        expect(result.status).toBe(0);
        for (const pattern of expected[`${guide}#${index}`] ?? []) {
          if (typeof pattern === 'string') expect(result.stdout).toContain(pattern);
          else expect(result.stdout).toMatch(pattern);
        }
      });
    });
  }
});

/**
 * The same TypeScript, compiled three ways, must be keyed the same way: tsc's CommonJS
 * (`(0, dep_1.helper)(x)`), esbuild's CommonJS as tsx emits it (`(0, import_dep.helper)(x)`), and an
 * esbuild bundle, where names are renamed when they collide (`helper2`). Each build runs in fresh
 * processes, after real edits of the sources and a rebuild.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync, transformSync } from 'esbuild';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { cairnUrl, edit, RUNNER, runNode } from '../helpers/code-edits.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const cairnPath = fileURLToPath(cairnUrl);

const SOURCES = {
  'dep.ts': `import { markUnstable } from 'cairn-under-test';
export const SCALE = 10;
export const CFG = { k: 2 };
export const helper = markUnstable(function helper(x: number) {
  return x * SCALE;
});
`,
  'other.ts': `function helper(x: number) {
  return x - 1;
}
export function other(x: number) {
  return helper(x);
}
`,
  'main.ts': `import { smartCache } from 'cairn-under-test';
import { helper, SCALE, CFG } from './dep';
import { other } from './other';
export const compute = smartCache(process.env.CACHE!)(async function compute(x: number) {
  return helper(x) + SCALE + CFG.k + other(x);
});
`,
};

type Build = (src: string, out: string) => void;

/** Each module on its own, as CommonJS, by `compile` (source text → JavaScript). */
const perModule =
  (compile: (source: string) => string): Build =>
  (src, out) => {
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');
    for (const name of Object.keys(SOURCES)) {
      const js = compile(readFileSync(join(src, name), 'utf8')).replaceAll("'cairn-under-test'", JSON.stringify(cairnPath)).replaceAll('"cairn-under-test"', JSON.stringify(cairnPath));
      writeFileSync(join(out, name.replace(/\.ts$/, '.js')), js);
    }
    writeFileSync(join(out, 'run.mjs'), RUNNER('./main.js'));
  };

const tsc = perModule((source) => ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText);
const esbuildCjs = perModule((source) => transformSync(source, { loader: 'ts', format: 'cjs', target: 'es2022' }).code);

const bundle: Build = (src, out) => {
  mkdirSync(out, { recursive: true });
  buildSync({
    entryPoints: [join(src, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    outfile: join(out, 'main.mjs'),
    alias: { 'cairn-under-test': cairnPath },
    external: [cairnPath],
    logLevel: 'silent',
  });
  writeFileSync(join(out, 'run.mjs'), RUNNER('./main.mjs'));
};

describe.each([
  ['tsc (CommonJS, dep_1.X)', tsc, 'dep_1'],
  ['esbuild as tsx emits CommonJS (import_dep.X)', esbuildCjs, 'import_dep'],
  ['an esbuild bundle', bundle, 'helper2'],
])('%s', (_name, build, marker) => {
  const src = tempDir('cairn-compiled-src-');
  const out = join(src, 'out');
  for (const [name, text] of Object.entries(SOURCES)) writeFileSync(join(src, name), text);
  const run = () => {
    build(src, out);
    return runNode(out, 'run.mjs', ['3'], { CACHE: join(src, 'cache') });
  };

  it('is the compiled form it stands for', () => {
    build(src, out);
    const compiled = readFileSync(join(out, marker === 'helper2' ? 'main.mjs' : 'main.js'), 'utf8');
    expect(compiled).toContain(marker);
  });

  it('hits after a rebuild, and after an unrelated rename', () => {
    expect(run()).toMatchObject({ result: 44, misses: 1 });
    expect(run()).toMatchObject({ result: 44, hits: 1 });
    // other.ts's own helper no longer collides with dep's: a bundler renames dep's helper back
    edit(join(src, 'other.ts'), /helper/g, 'minusOne');
    expect(run()).toMatchObject({ result: 44, hits: 1 });
  });

  it('misses when the marked helper, a constant or an object it reads changes', () => {
    edit(join(src, 'dep.ts'), 'return x * SCALE;', 'return x * SCALE * 2;');
    expect(run()).toMatchObject({ result: 74, misses: 1 });
    edit(join(src, 'dep.ts'), 'SCALE = 10', 'SCALE = 20');
    expect(run()).toMatchObject({ result: 144, misses: 1 });
    edit(join(src, 'dep.ts'), 'k: 2', 'k: 5');
    expect(run()).toMatchObject({ result: 147, misses: 1 });
    expect(run()).toMatchObject({ result: 147, hits: 1 });
  });
});

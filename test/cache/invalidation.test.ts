/**
 * Invalidation with real code edits: modules are written to a temp folder, each run is a fresh
 * `node` process, and the files are edited between runs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cairnUrl as cairn, edit, RUNNER, runNode } from '../helpers/code-edits.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const run = (dir: string, runner: string, arg: number) => runNode(dir, runner, [String(arg)]);

describe('smartCache invalidation across real code edits (ES modules)', () => {
  const dir = tempDir('cairn-sc-edit-');
  const helpers = join(dir, 'helpers.mjs');
  const main = join(dir, 'main.mjs');
  writeFileSync(
    helpers,
    `import { markUnstable } from ${JSON.stringify(cairn)};
export const scale = markUnstable(function scale(x) {
  return x * 2;
});
export function plain(x) {
  return base(x);
}
function base(x) {
  return x;
}
`,
  );
  writeFileSync(
    main,
    `import { smartCache } from ${JSON.stringify(cairn)};
import { scale, plain } from './helpers.mjs';

export const compute = smartCache(process.env.CACHE)(async function compute(x) {
  return scale(plain(x)) + 1;
});
`,
  );
  writeFileSync(join(dir, 'run.mjs'), RUNNER('./main.mjs'));

  it('misses on the first call, hits in a fresh process', () => {
    const first = run(dir, 'run.mjs', 5);
    expect(first).toMatchObject({ result: 11, misses: 1, hits: 0 });
    expect(first.explain.hit).toBe(false);
    const second = run(dir, 'run.mjs', 5);
    expect(second).toMatchObject({ result: 11, misses: 0, hits: 1, explain: { hit: true } });
  });

  it('comments and whitespace do not invalidate', () => {
    edit(main, 'return scale(plain(x)) + 1;', '// the feature\n    return   scale( plain(x) )+1 /* same */ ;\n');
    expect(run(dir, 'run.mjs', 5)).toMatchObject({ result: 11, hits: 1, misses: 0 });
  });

  it('moving the function in its file does not invalidate', () => {
    edit(main, "import { scale, plain } from './helpers.mjs';", "import { scale, plain } from './helpers.mjs';\n\nconst unrelated = 1;\nexport function other() {\n  return unrelated;\n}\n\n\n");
    expect(run(dir, 'run.mjs', 5)).toMatchObject({ result: 11, hits: 1, misses: 0 });
  });

  it('an unmarked top-level helper counts by its module and own code; what it calls is not followed', () => {
    // tarn's rule for importable functions: by reference, here with the helper's own code
    edit(helpers, 'return x;', 'return x + 0;');
    expect(run(dir, 'run.mjs', 5)).toMatchObject({ result: 11, hits: 1, misses: 0 });
    edit(helpers, 'return base(x);', 'return base(x) * 1;');
    const edited = run(dir, 'run.mjs', 5);
    expect(edited).toMatchObject({ result: 11, hits: 0, misses: 1 });
    expect(edited.explain.reasons).toContain('the dependency plain changed');
  });

  it('a marked helper in another file invalidates, and explain names it', () => {
    edit(helpers, 'return x * 2;', 'return x * 3;');
    const changed = run(dir, 'run.mjs', 5);
    expect(changed).toMatchObject({ result: 16, hits: 0, misses: 1 });
    expect(changed.explain.reasons).toContain('the dependency scale changed');
    expect(run(dir, 'run.mjs', 5)).toMatchObject({ result: 16, hits: 1 });
  });

  it('reverting the helper brings the old entries back', () => {
    edit(helpers, 'return x * 3;', 'return x * 2;');
    expect(run(dir, 'run.mjs', 5)).toMatchObject({ result: 11, hits: 1, misses: 0 });
  });

  it('editing the function itself invalidates; new arguments miss with their own reason', () => {
    edit(main, /return\s+scale\( plain\(x\) \)\+1/, 'return scale(plain(x)) + 2');
    const edited = run(dir, 'run.mjs', 5);
    expect(edited).toMatchObject({ result: 12, misses: 1 });
    expect(edited.explain.reasons).toContain('the code of compute changed');
    const other = run(dir, 'run.mjs', 6);
    expect(other).toMatchObject({ result: 14, misses: 1 });
    expect(other.explain.reasons).toEqual(['new arguments: no entry for them with the current code']);
  });

  it('a helper of a helper (transitive, through a closure) invalidates', () => {
    edit(helpers, 'export const scale = markUnstable(function scale(x) {\n  return x * 2;', 'const factor = markUnstable(function factor() {\n  return 2;\n});\nexport const scale = markUnstable(function scale(x) {\n  return x * factor();');
    // scale's own code changed here, so this is a miss; then only factor changes
    expect(run(dir, 'run.mjs', 5)).toMatchObject({ result: 12, misses: 1 });
    edit(helpers, 'return 2;', 'return 4;');
    const deep = run(dir, 'run.mjs', 5);
    expect(deep).toMatchObject({ result: 22, misses: 1 });
    expect(deep.explain.reasons).toContain('the dependency scale > factor changed');
  });
});

describe('smartCache invalidation in compiled TypeScript (CommonJS output)', () => {
  const dir = tempDir('cairn-sc-cjs-');
  const dep = join(dir, 'dep.cjs');
  const main = join(dir, 'main.cjs');
  // what tsc emits for `import { helper } from './dep'` and exported consts
  writeFileSync(
    dep,
    `"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.helper = exports.SCALE = void 0;
const cairn_1 = require(${JSON.stringify(fileURLToPath(cairn))});
exports.SCALE = 10;
exports.helper = (0, cairn_1.markUnstable)(function helper(x) {
    return x * exports.SCALE;
});
`,
  );
  writeFileSync(
    main,
    `"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.compute = void 0;
const cairn_1 = require(${JSON.stringify(fileURLToPath(cairn))});
const dep_1 = require("./dep.cjs");
exports.compute = (0, cairn_1.smartCache)(process.env.CACHE)(async function compute(x) {
    return (0, dep_1.helper)(x) + dep_1.SCALE;
});
`,
  );
  writeFileSync(join(dir, 'run.mjs'), RUNNER('./main.cjs'));

  it('follows (0, dep_1.helper) to the marked helper', () => {
    expect(run(dir, 'run.mjs', 2)).toMatchObject({ result: 30, misses: 1 });
    expect(run(dir, 'run.mjs', 2)).toMatchObject({ result: 30, hits: 1 });
    edit(dep, '    return x * exports.SCALE;', '    // a comment\n    return x *   exports.SCALE;');
    expect(run(dir, 'run.mjs', 2)).toMatchObject({ result: 30, hits: 1 });
    edit(dep, 'return x *   exports.SCALE;', 'return x * exports.SCALE * 2;');
    const changed = run(dir, 'run.mjs', 2);
    expect(changed).toMatchObject({ result: 50, misses: 1 });
    expect(changed.explain.reasons).toContain('the dependency dep_1.helper changed');
  });

  it('a constant read through a compiled import is part of the key', () => {
    edit(dep, 'exports.SCALE = 10;', 'exports.SCALE = 100;');
    const changed = run(dir, 'run.mjs', 2);
    expect(changed).toMatchObject({ result: 500, misses: 1 });
    expect(changed.explain.reasons).toContain('the dependency dep_1.SCALE changed');
  });
});

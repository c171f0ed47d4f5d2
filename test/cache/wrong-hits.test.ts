/**
 * Each case here once gave a wrong hit: a result computed by other code or for other inputs.
 * Every one runs real modules in fresh processes, with real edits of the files between runs,
 * and checks the result a user would get.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { edit, RUNNER, runNode, writeProject } from '../helpers/code-edits.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

/** A project with `main.<ext>` exporting `compute`, and the runner; returns its folder. */
function project(files: Record<string, string>, main = './main.mjs'): string {
  const dir = tempDir('cairn-wrong-hit-');
  writeProject(dir, { 'run.mjs': RUNNER(main), ...files });
  return dir;
}

const run = (dir: string, arg: number) => runNode(dir, 'run.mjs', [String(arg)]);

describe('functions that differ only in what they capture', () => {
  it('closures of one source over different functions or objects get their own entries', () => {
    const dir = project({
      'main.mjs': `import { smartCache } from CAIRN;
const cache = smartCache(process.env.CACHE);
function square(x) { return x * x; }
function cube(x) { return x * x * x; }
function makeFeature(fn) { return cache(async function feature(x) { return fn(x); }); }
class Model { constructor(k) { this.k = k; } predict(x) { return x * this.k; } }
const models = [new Model(2), new Model(3)];
export const compute = Object.assign(
  async (x) => [await makeFeature(square)(x), await makeFeature(cube)(x), ...(await Promise.all(models.map((m) => cache((y) => m.predict(y))(x))))],
  { explain: async () => ({ hit: false, reasons: [] }), stats: { hits: 0, misses: 0 } },
);
`,
    });
    expect(run(dir, 3).result).toEqual([9, 27, 6, 9]);
    expect(run(dir, 3).result).toEqual([9, 27, 6, 9]);
  });

  it('two modules with one source that import different helpers', () => {
    const dir = project({
      'ha.mjs': 'const K = 1;\nexport function h(x) { return x + K; }\n',
      'hb.mjs': 'const K = 2;\nexport function h(x) { return x + K; }\n',
      'a.mjs': `import { smartCache } from CAIRN;\nimport { h } from './ha.mjs';\nexport const compute = smartCache(process.env.CACHE)(async function compute(x) { return h(x); });\n`,
      'b.mjs': `import { smartCache } from CAIRN;\nimport { h } from './hb.mjs';\nexport const compute = smartCache(process.env.CACHE)(async function compute(x) { return h(x); });\n`,
      'main.mjs': `import { compute as a } from './a.mjs';\nimport { compute as b } from './b.mjs';
export const compute = Object.assign(async (x) => [await a(x), await b(x)], { explain: async () => ({}), stats: {} });\n`,
    });
    expect(run(dir, 10).result).toEqual([11, 12]);
    expect(run(dir, 10).result).toEqual([11, 12]);
  });
});

describe('module-level and imported data', () => {
  it('objects, arrays, frozen objects and Maps of the module are part of the key', () => {
    const dir = project({
      'main.mjs': `import { smartCache } from CAIRN;
const CFG = { sigma: 2 };
const LIST = [1, 2];
const FROZEN = Object.freeze({ k: 1 });
const MAP = new Map([['a', 1]]);
export const compute = smartCache(process.env.CACHE)(async function compute(x) {
  return x * CFG.sigma + LIST[1] * 10 + FROZEN.k * 100 + MAP.get('a') * 1000;
});
`,
    });
    const main = join(dir, 'main.mjs');
    expect(run(dir, 1)).toMatchObject({ result: 1122, misses: 1 });
    expect(run(dir, 1)).toMatchObject({ result: 1122, hits: 1 });
    edit(main, 'sigma: 2', 'sigma: 3');
    expect(run(dir, 1)).toMatchObject({ result: 1123, misses: 1 });
    edit(main, '[1, 2]', '[1, 5]');
    expect(run(dir, 1)).toMatchObject({ result: 1153, misses: 1 });
    edit(main, '{ k: 1 }', '{ k: 4 }');
    expect(run(dir, 1)).toMatchObject({ result: 1453, misses: 1 });
    edit(main, "['a', 1]", "['a', 7]");
    const changed = run(dir, 1);
    expect(changed).toMatchObject({ result: 7453, misses: 1 });
    expect(changed.explain.reasons).toContain('the dependency MAP changed');
  });

  it('imported objects, JSON modules, namespaces, destructured and aliased values, import()', () => {
    const dir = project({
      'config.mjs': 'export const config = { depth: 3 };\n',
      'params.json': '{ "lr": 2 }\n',
      'utils.mjs': `import { markUnstable } from CAIRN;\nexport const SIGMA = 5;\nexport const blur = markUnstable(function blur(x) { return x + 1; });\n`,
      'dep.mjs': 'export const K = 7;\n',
      'main.mjs': `import { smartCache } from CAIRN;
import { config } from './config.mjs';
import params from './params.json' with { type: 'json' };
import * as utils from './utils.mjs';
const { blur } = utils;
const u = utils;
export const compute = smartCache(process.env.CACHE)(async function compute(x) {
  const dep = await import('./dep.mjs');
  return [config.depth * x, params.lr * x, blur(x), u.SIGMA, dep.K];
});
`,
    });
    expect(run(dir, 2)).toMatchObject({ result: [6, 4, 3, 5, 7], misses: 1 });
    expect(run(dir, 2)).toMatchObject({ result: [6, 4, 3, 5, 7], hits: 1 });
    edit(join(dir, 'config.mjs'), 'depth: 3', 'depth: 4');
    expect(run(dir, 2)).toMatchObject({ result: [8, 4, 3, 5, 7], misses: 1 });
    edit(join(dir, 'params.json'), '"lr": 2', '"lr": 3');
    expect(run(dir, 2)).toMatchObject({ result: [8, 6, 3, 5, 7], misses: 1 });
    edit(join(dir, 'utils.mjs'), 'return x + 1;', 'return x + 2;');
    expect(run(dir, 2)).toMatchObject({ result: [8, 6, 4, 5, 7], misses: 1 });
    edit(join(dir, 'utils.mjs'), 'SIGMA = 5', 'SIGMA = 6');
    expect(run(dir, 2)).toMatchObject({ result: [8, 6, 4, 6, 7], misses: 1 });
    edit(join(dir, 'dep.mjs'), 'K = 7', 'K = 8');
    expect(run(dir, 2)).toMatchObject({ result: [8, 6, 4, 6, 8], misses: 1 });
    expect(run(dir, 2)).toMatchObject({ result: [8, 6, 4, 6, 8], hits: 1 });
  });

  it('a TypeScript enum from another file and a class static field', () => {
    const dir = project(
      {
        'color.ts': 'export enum Color { Red = 1, Green = 2 }\n',
        'main.ts': `import { smartCache } from CAIRN;
import { Color } from './color.ts';
class Scale { static FACTOR = 10; }
export const compute = smartCache(process.env.CACHE!)(async function compute(x: number) {
  return x * Color.Green + Scale.FACTOR;
});
`,
      },
      './main.ts',
    );
    expect(run(dir, 3)).toMatchObject({ result: 16, misses: 1 });
    expect(run(dir, 3)).toMatchObject({ result: 16, hits: 1 });
    edit(join(dir, 'color.ts'), 'Green = 2', 'Green = 5');
    expect(run(dir, 3)).toMatchObject({ result: 25, misses: 1 });
    edit(join(dir, 'main.ts'), 'FACTOR = 10', 'FACTOR = 20');
    expect(run(dir, 3)).toMatchObject({ result: 35, misses: 1 });
  });

  it('a lazily initialised module variable neither misses twice nor is an input', () => {
    const dir = project({
      'main.mjs': `import { smartCache } from CAIRN;
let model;
function load() { return { k: 3 }; }
const cached = smartCache(process.env.CACHE)(async function compute(x) {
  model ??= load();
  return x * model.k;
});
export const compute = Object.assign(async (x) => [await cached(x), await cached(x)], { explain: cached.explain, stats: cached.stats });
`,
    });
    expect(run(dir, 2)).toMatchObject({ result: [6, 6], misses: 1, hits: 1 });
    expect(run(dir, 2)).toMatchObject({ result: [6, 6], misses: 0, hits: 2 });
    edit(join(dir, 'main.mjs'), 'k: 3', 'k: 4');
    // load() is the source of the state, and its code is part of the key
    expect(run(dir, 2)).toMatchObject({ result: [8, 8], misses: 1, hits: 1 });
  });
});

describe('classes', () => {
  it('a marked class that extends a marked base, with super calls, reached through an instance', () => {
    const dir = project({
      'main.mjs': `import { smartCache, markUnstable } from CAIRN;
class Base { scale(x) { return x * 2; } }
markUnstable(Base);
class Model extends Base { predict(x) { return super.scale(x) + 1; } }
markUnstable(Model);
const model = new Model();
export const compute = smartCache(process.env.CACHE)(async function compute(x) { return model.predict(x); });
`,
    });
    const main = join(dir, 'main.mjs');
    expect(run(dir, 5)).toMatchObject({ result: 11, misses: 1 });
    expect(run(dir, 5)).toMatchObject({ result: 11, hits: 1 });
    edit(main, 'return x * 2;', 'return x * 3;');
    expect(run(dir, 5)).toMatchObject({ result: 16, misses: 1 });
    edit(main, 'super.scale(x) + 1', 'super.scale(x) + 2');
    expect(run(dir, 5)).toMatchObject({ result: 17, misses: 1 });
  });

  it('a decorated method follows the class of the actual `this` (subclass overrides)', () => {
    const dir = project(
      {
        'main.ts': `import { smartCache } from CAIRN;
class Pipeline {
  @smartCache(process.env.CACHE!, { hashThis: false })
  async run(x: number) { return this.step(x); }
  step(x: number) { return x + 1; }
}
class Fast extends Pipeline {
  step(x: number) { return x + 100; }
}
export const compute = Object.assign(async (x: number) => [await new Pipeline().run(x), await new Fast().run(x), await new Pipeline().run(x)], { explain: async () => ({}), stats: {} });
`,
      },
      './main.ts',
    );
    expect(run(dir, 1).result).toEqual([2, 101, 2]);
    expect(run(dir, 1).result).toEqual([2, 101, 2]);
    edit(join(dir, 'main.ts'), 'return x + 100;', 'return x + 200;');
    expect(run(dir, 1).result).toEqual([2, 201, 2]);
  });

  it('an argument that is an instance of a class with marked methods', () => {
    const dir = project({
      'model.mjs': `import { markUnstable } from CAIRN;
export class Model { predict(x) { return x * 2; } }
markUnstable(Model.prototype, 'predict');
`,
      'main.mjs': `import { smartCache } from CAIRN;
import { Model } from './model.mjs';
const cached = smartCache(process.env.CACHE)(async function apply(model, x) { return model.predict(x); });
export const compute = Object.assign((x) => cached(new Model(), x), { explain: (x) => cached.explain(new Model(), x), stats: cached.stats });
`,
    });
    expect(run(dir, 4)).toMatchObject({ result: 8, misses: 1 });
    expect(run(dir, 4)).toMatchObject({ result: 8, hits: 1 });
    edit(join(dir, 'model.mjs'), 'x * 2', 'x * 3');
    expect(run(dir, 4)).toMatchObject({ result: 12, misses: 1 });
  });
});

describe('inputs as they were when the function ran', () => {
  it('an argument mutated while the call runs leaves no entry under the old key', () => {
    const dir = project({
      'main.mjs': `import { smartCache } from CAIRN;
const cached = smartCache(process.env.CACHE)(async function compute(xs) {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return xs[0] * 2;
});
export const compute = Object.assign(
  async (x) => {
    if (process.env.MUTATE) {
      const xs = [x];
      const pending = cached(xs);
      xs[0] = 100;
      return pending;
    }
    return cached([x]);
  },
  { explain: (x) => cached.explain([x]), stats: cached.stats },
);
`,
    });
    const mutated = runNode(dir, 'run.mjs', ['1'], { MUTATE: '1' });
    expect(mutated.result).toBe(200);
    expect(run(dir, 1)).toMatchObject({ result: 2, misses: 1 });
    expect(run(dir, 1)).toMatchObject({ result: 2, hits: 1 });
  });
});

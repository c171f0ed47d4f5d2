/**
 * Several processes call the same cached function on the same key at once.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cairn = pathToFileURL(join(root, 'src/cache/index.ts')).href;

afterAll(cleanup);

function worker(dir: string, lock: boolean): string {
  const file = join(dir, `worker-${lock}.mjs`);
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
import { smartCache } from ${JSON.stringify(cairn)};
const [cache, runs] = process.argv.slice(2);
const slow = smartCache(cache, { lock: ${lock} })(async function slow(n) {
  appendFileSync(runs, process.pid + '\\n');
  await new Promise((resolve) => setTimeout(resolve, 700));
  return new Float32Array(4096).fill(n);
});
const result = await slow(3);
console.log(JSON.stringify({ sum: result.reduce((a, b) => a + b, 0), hits: slow.stats.hits, misses: slow.stats.misses }));
`,
  );
  return file;
}

function runAll(file: string, cache: string, runs: string, count: number): Promise<{ sum: number; hits: number; misses: number }[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<{ sum: number; hits: number; misses: number }>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', file, cache, runs], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
          child.on('error', reject);
          child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`worker exited with ${code}`))));
        }),
    ),
  );
}

describe('smartCache across processes', () => {
  it('with the lock, four processes on one key run the function once and all get the result', async () => {
    const dir = tempDir('cairn-sc-proc-');
    const runs = join(dir, 'runs.txt');
    writeFileSync(runs, '');
    const results = await runAll(worker(dir, true), join(dir, 'cache'), runs, 4);
    expect(readFileSync(runs, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(results.map((result) => result.sum)).toEqual([12288, 12288, 12288, 12288]);
    expect(results.filter((result) => result.misses === 1)).toHaveLength(1);
    expect(results.filter((result) => result.hits === 1)).toHaveLength(3);
  });

  it('without the lock, every process may compute, and all still agree and leave a readable entry', async () => {
    const dir = tempDir('cairn-sc-proc-');
    const runs = join(dir, 'runs.txt');
    writeFileSync(runs, '');
    const file = worker(dir, false);
    const results = await runAll(file, join(dir, 'cache'), runs, 3);
    expect(results.map((result) => result.sum)).toEqual([12288, 12288, 12288]);
    const computed = readFileSync(runs, 'utf8').trim().split('\n').length;
    const [after] = await runAll(file, join(dir, 'cache'), runs, 1);
    expect(after).toMatchObject({ sum: 12288, hits: 1, misses: 0 });
    expect(readFileSync(runs, 'utf8').trim().split('\n')).toHaveLength(computed);
  });
});

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

it('runs the three use cases of the seed notebook', () => {
  const output = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'examples', 'tierkv-notebook.ts')], { cwd: root, encoding: 'utf8' });
  expect(output).toContain('1: x ["data1"] y ["data2"] z []');
  expect(output).toContain('1: l is ["data1","data2"]');
  const blues = '["BLUE 1","BLUE 2","BLUE 3","BLUE 4","BLUE 5","BLUE 6","BLUE 7"]';
  for (const step of ['2', '3']) {
    expect(output).toContain(`${step}: blues ${blues}`);
    expect(output).toContain(`${step}: sample 30000 gave 7 values`);
    expect(output).toContain(`${step}: blues 3 3 distinct: true`);
    expect(output).toContain(`${step}: reds ["RED 1"]`);
  }
  expect(output).toContain('3: reopened with 8 entries; blues 7');
  expect(output).toContain('3: embedding true [ 0.25, -1.5, 3 ]');
  expect(output).toContain('3: tiers memory: 1, filesystem: 9, filesystem: 0');
});

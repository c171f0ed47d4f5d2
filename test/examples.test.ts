import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from './helpers/tmp.js';

afterAll(cleanup);
const run = promisify(execFile);
const root = join(import.meta.dirname, '..');

describe('examples', () => {
  it('npm run demo: tarn’s README recipes on local folders, each step doing what it says', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'examples', 'demo.ts'), tempDir()], { cwd: root });
    expect(stdout).toMatch(/readBytes\(\w+…\) = "my-bytes"/);
    expect(stdout).toMatch(/labels \["notes"\]/);
    expect(stdout.match(/went to hdd1/g)).toHaveLength(2);
    expect(stdout.match(/went to hdd2/g)).toHaveLength(1);
    expect(stdout).toContain('the new disk has it: true');
    expect(stdout).toContain('after the write: memory=false ssd=false nfs=true');
    expect(stdout).toContain('after one read:  memory=true ssd=true nfs=true');
    expect(stdout).toContain('10 KiB value in memory: true; 1 MiB value in memory: false');
  });
});

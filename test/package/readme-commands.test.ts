/**
 * The README's two commands, as a new user runs them: the first (install, then the demo on local
 * folders) in a clean clone of this repository, which must leave `git status` clean; the second
 * (the whole suite) is what CI runs, word for word (running it here would run this test again).
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);
// long commands run without blocking the worker (vitest's own messages must get through)
const run = promisify(execFile);

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
/** The shell commands of the README's first two `sh` blocks. */
const [demoCommand, testCommand] = [...readme.matchAll(/```sh\n([^\n]+)\n```/g)].slice(0, 2).map((match) => match[1]!);

describe("the README's two commands", () => {
  const clone = join(tempDir('cairn-readme-'), 'cairn');
  let demo = '';
  beforeAll(async () => {
    // the committed tree, as a fresh clone has it (work in progress in this checkout does not count)
    await run('git', ['clone', '--quiet', '--no-hardlinks', root, clone]);
    demo = (await run('bash', ['-c', demoCommand!], { cwd: clone, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error' }, maxBuffer: 64 * 1024 * 1024 })).stdout;
  }, 600_000);

  it('are the install-and-demo command and the test command', () => {
    expect(demoCommand).toBe('npm ci && npm run demo');
    expect(testCommand).toBe('bash scripts/test-deps.sh && npm ci && npm test');
  });

  it('the first runs tarn’s recipes in a clean clone and leaves git status clean', () => {
    expect(demo).toMatch(/readBytes\(\w+…\) = "my-bytes"/);
    expect(demo).toContain('the new disk has it: true');
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: clone, encoding: 'utf8' })).toBe('');
  });

  it('the second is what CI runs, word for word', () => {
    expect(readFileSync(join(root, '.ci', 'run'), 'utf8').split('\n')).toContain(testCommand);
  });
});

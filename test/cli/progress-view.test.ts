import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clearBars, ProgressView } from '../../src/cli/progress.js';
import type { Progress } from '../../src/storage/maintenance/progress.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { cairn } from './run.js';
import { onTerminal } from './terminal.js';

afterAll(cleanup);

function recorder(isTTY: boolean) {
  const written: string[] = [];
  return { written, output: { isTTY, columns: 200, write: (text: string) => written.push(text) } };
}

const state = (files: number, bytes: number): Progress => ({ operation: 'write', files, totalFiles: 100, bytes, totalBytes: 100_000 });

describe('the progress view', () => {
  it('does not guess the time left from the first moments of a batch, and says 0s at the end', () => {
    const { written, output } = recorder(false);
    const view = new ProgressView('write', output);
    view.update(state(1, 1000));
    expect(written[0]).toMatch(/^write: 1%, 1\/100 files, 1\.00 kB \/ 100 kB, [\d.]+ \w+\/s\n$/);
    view.update(state(100, 100_000));
    view.finish();
    expect(written).toHaveLength(2);
    expect(written[1]).toMatch(/100\/100 files, .*, 0s left\n$/);
  });

  it('without a terminal, the final line is printed once even when the last update printed it', () => {
    const { written, output } = recorder(false);
    process.env.CAIRN_PROGRESS_INTERVAL = '0';
    const view = new ProgressView('verify', output);
    delete process.env.CAIRN_PROGRESS_INTERVAL;
    view.update(state(50, 50_000));
    view.update(state(100, 100_000));
    view.finish();
    expect(written).toHaveLength(2);
    expect(written[1]).toMatch(/^verify: 100%, 100\/100 files, 100 kB \/ 100 kB, .*, 0s left\n$/);
  });

  it('on a terminal, clearBars() erases a drawn bar and the next update draws it again', () => {
    const { written, output } = recorder(true);
    const view = new ProgressView('gc', output);
    view.update(state(1, 1000));
    clearBars();
    expect(written[0]!.startsWith('\r\x1b[Kgc [')).toBe(true);
    expect(written.slice(1)).toEqual(['\r\x1b[K']);
    clearBars(); // nothing drawn: nothing written
    expect(written).toHaveLength(2);
    view.update(state(2, 2000));
    expect(written[2]!.startsWith('\r\x1b[Kgc [')).toBe(true);
    expect(written[2]).toContain('2/100 files');
    view.finish();
    expect(written.at(-1)).toBe('\n');
  });
});

describe('progress of cairn write', () => {
  it('on a terminal, every key printed is on a line of its own, never glued to the bar', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'big.bin'), randomBytes(24 * 1024 * 1024));
    writeFileSync(join(dir, 'small.bin'), randomBytes(1000));
    writeFileSync(join(dir, 'big2.bin'), randomBytes(12 * 1024 * 1024));
    expect(onTerminal(['init', 'lake', '-q'], { cwd: dir }).code).toBe(0);
    const run = onTerminal(['write', 'big.bin', 'small.bin', 'big2.bin', '-l', 'lake'], { cwd: dir });
    expect(run.code).toBe(0);
    const keys = [...run.shown.matchAll(/[0-9a-f]{64}/g)];
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      const before = run.shown.slice(0, key.index);
      // what precedes a key on its line is nothing: a new line, or a bar erased (\r, clear to the end of line)
      expect(before.endsWith('\n') || before.endsWith('\r\x1b[K')).toBe(true);
      expect(run.shown.slice(key.index! + 64, key.index! + 66)).toBe('\r\n');
    }
    expect(run.shown).toMatch(/write \[#{24}\] 100% 37\.7 MB \/ 37\.7 MB {2}3\/3 files .* 0s left\r\n$/);
  });

  it('from stdin: no total shown (it is not known), the final line printed once', async () => {
    const dir = tempDir();
    expect((await cairn(['init', 'lake', '-q'], { cwd: dir })).code).toBe(0);
    const run = await cairn(['write', '-', '--lake', 'lake'], { cwd: dir, input: 'from stdin', env: { CAIRN_PROGRESS_INTERVAL: '0' } });
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain(' / ');
    const lines = run.stderr.trim().split('\n');
    expect(lines.filter((line) => line.includes('1/1 files'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^write: 100%, 1\/1 files, 10 B, [\d.]+ \w+\/s, 0s left$/);
  });
});

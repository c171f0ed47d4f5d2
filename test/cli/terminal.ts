import { spawnSync } from 'node:child_process';
import { CAIRN } from './run.js';

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `cairn` on a pseudo-terminal, as a user at a terminal does: script(1) gives the command a
 * terminal for stdin, stdout and stderr and copies what the terminal shows to our stdout (stdout
 * and stderr interleaved as they were written).
 */
export function onTerminal(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { code: number | null; shown: string } {
  const command = [process.execPath, CAIRN, ...args].map(shellQuote).join(' ');
  const run = spawnSync('script', ['-qfec', command, '/dev/null'], {
    cwd: options.cwd,
    encoding: 'utf8',
    env: { ...process.env, COLUMNS: '120', ...options.env },
  });
  return { code: run.status, shown: run.stdout };
}

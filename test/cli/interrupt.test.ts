import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { CAIRN, cairn } from './run.js';

afterAll(cleanup);

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/** Resolves once `check()` is true, polling (the other process works at its own pace). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('Ctrl-C', () => {
  it('during cairn write on a terminal: the process ends by the signal and leaves no temp file in .tmp/', async () => {
    const dir = tempDir();
    expect((await cairn(['init', 'lake', '-q'], { cwd: dir })).code).toBe(0);
    const fifo = join(dir, 'input');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const command = `${[process.execPath, CAIRN, 'write', '-', '--lake', 'lake'].map(shellQuote).join(' ')} < ${shellQuote(fifo)}`;
    // script(1) gives the command a terminal; a 0x03 byte typed into it is Ctrl-C, as at a keyboard
    const terminal = spawn('script', ['-qfec', command, '/dev/null'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let shown = '';
    terminal.stdout.on('data', (chunk: Buffer) => (shown += chunk.toString()));
    const closed = once(terminal, 'close');
    const input = createWriteStream(fifo);
    input.on('error', () => undefined); // EPIPE once the interrupted reader is gone: expected
    input.write(Buffer.alloc(8 * 1024 * 1024, 7));
    const tmp = join(dir, 'lake', '.tmp');
    // the value is being staged: its temp file is there and growing
    await until(() => readdirSync(tmp).length > 0);
    terminal.stdin.write('\x03');
    const [code] = (await closed) as [number | null];
    input.destroy();
    expect(code).not.toBe(0);
    expect(shown).not.toMatch(/[0-9a-f]{64}/); // no key: the write did not complete
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('SIGTERM during cairn read -o: no partial file is left beside the output', async () => {
    const dir = tempDir();
    expect((await cairn(['init', 'lake', '-q'], { cwd: dir })).code).toBe(0);
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(200 * 1024 * 1024, 3));
    const key = (await cairn(['write', 'big.bin', '-q', '--lake', 'lake'], { cwd: dir })).stdout.trim();
    const child = spawn(process.execPath, [CAIRN, 'read', key, '-o', 'out.bin', '--lake', 'lake'], { cwd: dir, stdio: 'ignore' });
    const closed = once(child, 'close');
    await until(() => readdirSync(dir).some((name) => name.startsWith('out.bin.cairn-partial-')));
    child.kill('SIGTERM');
    const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null];
    // either it was interrupted (the signal, no output) or it finished first (the whole output)
    if (signal === 'SIGTERM') expect(existsSync(join(dir, 'out.bin'))).toBe(false);
    else expect(code).toBe(0);
    expect(readdirSync(dir).filter((name) => name.includes('cairn-partial'))).toEqual([]);
  });
});

describe('keepStats under plain node', () => {
  it('saves the counters when the process is ended by SIGINT or SIGTERM, then ends by that signal', async () => {
    const stats = fileURLToPath(new URL('../../src/storage/maintenance/stats.ts', import.meta.url));
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const lake = tempDir();
      const program = `
        import { Disk } from ${JSON.stringify(fileURLToPath(new URL('../../src/locations/disk/disk.ts', import.meta.url)))};
        import { keepStats } from ${JSON.stringify(stats)};
        const counted = { stats: { hits: 5, misses: 2, errors: 0 } };
        keepStats(new Disk(${JSON.stringify(lake)}), { functions: { counted } });
        console.log('ready');
        setInterval(() => {}, 1000);
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
      const closed = once(child, 'close');
      await once(child.stdout, 'data');
      child.kill(signal);
      const [, ended] = (await closed) as [number | null, NodeJS.Signals | null];
      expect(ended).toBe(signal);
      const saved = readdirSync(join(lake, 'tools', 'stats'));
      expect(saved).toEqual([expect.stringMatching(new RegExp(`-${child.pid}\\.json$`))]);
      const snapshot = JSON.parse(readFileSync(join(lake, 'tools', 'stats', saved[0]!), 'utf8')) as { functions: Record<string, { hits: number; misses: number }> };
      expect(snapshot.functions.counted).toMatchObject({ hits: 5, misses: 2 });
    }
  });
});

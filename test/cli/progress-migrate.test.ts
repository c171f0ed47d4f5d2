import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { CAIRN, cairn } from './run.js';

afterAll(cleanup);

const shellQuote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

describe('progress output', () => {
  it('on a terminal: one bar redrawn in place, with bytes, files, rate and time left', () => {
    const dir = tempDir();
    const file = join(dir, 'big.bin');
    writeFileSync(file, randomBytes(40 * 1024 * 1024));
    new Disk(join(dir, 'lake')); // only init makes a lake: this one is made beforehand
    const command = [process.execPath, CAIRN, 'write', file, '--lake', join(dir, 'lake')].map(shellQuote).join(' ');
    // script(1) runs the command on a pseudo-terminal and copies what it shows to our stdout
    const run = spawnSync('script', ['-qfec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '120' } });
    expect(run.status).toBe(0);
    const shown = run.stdout;
    expect(shown).toContain('\r\x1b[K'); // redrawn in place
    expect(shown).toMatch(/write \[#+\.*\] \d+% [\d.]+ (MB|kB) \/ 41\.9 MB {2}\d\/1 files {2}[\d.]+ (MB|kB|GB)\/s/);
    expect(shown).toMatch(/\[#{24}\] 100% 41\.9 MB \/ 41\.9 MB {2}1\/1 files .* 0s left/);
    expect(shown).toMatch(/[0-9a-f]{64}/);
  });

  it('without a terminal: plain lines, no control characters; --json prints none', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.bin'), randomBytes(3_000_000));
    new Disk(join(dir, 'lake'));
    const run = await cairn(['write', 'a.bin', '--lake', 'lake'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(run.stderr).not.toContain('\r');
    expect(run.stderr).not.toContain('\u001b');
    expect(run.stderr.trim().split('\n').pop()).toMatch(/^write: 100%, 1\/1 files, 3\.00 MB \/ 3\.00 MB, [\d.]+ (kB|MB|GB)\/s, 0s left$/);
    const quiet = await cairn(['verify', '--json', '--lake', 'lake'], { cwd: dir });
    expect(quiet.stderr).toBe('');
    expect(JSON.parse(quiet.stdout)).toMatchObject({ checked: 1, bad: [] });
    // read -o reports the read's own progress (the API's onProgress) and writes the whole file
    const back = await cairn(['read', run.stdout.trim(), '-o', 'b.bin', '--lake', 'lake'], { cwd: dir });
    expect(back.code).toBe(0);
    expect(back.stderr.trim().split('\n').pop()).toMatch(/^read: 100%, 1\/1 files, 3\.00 MB \/ 3\.00 MB, [\d.]+ (kB|MB|GB)\/s, 0s left$/);
    expect(readFileSync(join(dir, 'b.bin')).equals(readFileSync(join(dir, 'a.bin')))).toBe(true);
  });
});

describe('cairn migrate', () => {
  it('killed halfway (SIGKILL) and run again: every key copied once, verified, the rest skipped', async () => {
    const dir = tempDir();
    const from = join(dir, 'old');
    const to = join(dir, 'new');
    const source = new HashKeyStorage(new Disk(from, { fsync: false }));
    // enough keys that a fast disk cannot finish them all between the 40th and the kill
    const COUNT = 2000;
    const values = new Map<string, Buffer>();
    for (let i = 0; i < COUNT; i++) {
      const bytes = randomBytes(2000 + i);
      values.set((await source.write(bytes, { labels: [`batch-${i % 3}`] }))!, bytes);
    }

    // one copy at a time in one thread, each fsynced: slow enough to be killed in the middle
    const child = spawn(process.execPath, [CAIRN, 'migrate', '--from', from, '--to', to, '--jobs', '1', '--threads', '1', '--fsync'], {
      env: { ...process.env, CAIRN_PROGRESS_INTERVAL: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let seen = 0;
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        const done = [...chunk.toString().matchAll(/(\d+)(?:\/\d+)? files/g)].map((match) => Number(match[1]));
        seen = Math.max(seen, ...done);
        if (seen >= 40) child.kill('SIGKILL');
      });
      child.on('close', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`migrate ended (${code}) before it was killed`))));
    });
    const partial = [];
    for await (const key of new Disk(to).keys()) partial.push(key);
    expect(partial.length).toBeGreaterThanOrEqual(40);
    expect(partial.length).toBeLessThan(COUNT);

    // resumed with two worker threads
    const resumed = await cairn(['migrate', '--from', from, '--to', to, '--jobs', '4', '--threads', '2', '--json']);
    expect(resumed.code).toBe(0);
    const report = JSON.parse(resumed.stdout) as { copied: number; skipped: number; failed: unknown[] };
    expect(report.failed).toEqual([]);
    expect(report.skipped).toBeGreaterThanOrEqual(partial.length);
    expect(report.copied + report.skipped).toBe(COUNT);

    const verified = await cairn(['verify', '--json', '--lake', to]);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ checked: COUNT, bad: [], errors: [] });
    const target = new HashKeyStorage(to);
    for (const [key, bytes] of values) expect((await target.readBytes(key))!.equals(bytes)).toBe(true);
    const labelled = [];
    for await (const entry of target.contents()) if (entry.meta.labels?.includes('batch-1')) labelled.push(entry.key);
    expect(labelled.length).toBe(Math.floor((COUNT + 1) / 3));
  });

  it('a corrupted source blob is refused by the target, reported, and the exit code is 1', async () => {
    const dir = tempDir();
    const from = join(dir, 'old');
    const source = new HashKeyStorage(from);
    const good = (await source.write(Buffer.from('fine')))!;
    const bad = (await source.write(randomBytes(100_000)))!;
    const file = new Disk(from).pathOf(bad);
    const { chmodSync } = await import('node:fs');
    chmodSync(file, 0o644);
    const bytes = readFileSync(file);
    bytes[5] ^= 1;
    writeFileSync(file, bytes);
    const run = await cairn(['migrate', '--from', from, '--to', join(dir, 'new')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`FAILED ${bad}`);
    expect(run.stdout).toMatch(/copied 1 .* failed 1/);
    const target = new HashKeyStorage(join(dir, 'new'));
    expect(await target.has(good)).toBe(true);
    expect(await target.has(bad)).toBe(false);
    expect(createHash('sha256').update((await target.readBytes(good))!).digest('hex')).toBe(good);
  });
});

import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);
const run = promisify(execFile);
const fixture = (name: string) => join(import.meta.dirname, '..', 'fixtures', name);

function node(script: string, args: string[], options: { uid?: number; gid?: number } = {}) {
  return run(process.execPath, ['--import', 'tsx', fixture(script), ...args], { ...options, maxBuffer: 1 << 20 });
}

describe('several processes on one lake', () => {
  it('writing the same keys at once: every write succeeds, one intact file per key, no temp files', async () => {
    const root = tempDir();
    new Disk(root); // create the lake first so every process agrees on it
    const results = await Promise.all(Array.from({ length: 4 }, () => node('write-same-keys.ts', [root, 'shared', '24'])));
    const keySets = results.map((result) => JSON.parse(result.stdout) as string[]);
    for (const keys of keySets) expect(keys).toEqual(keySets[0]);
    expect(new Set(keySets[0]).size).toBe(24);
    const disk = new Disk(root);
    for (const key of keySets[0]!) {
      const bytes = readFileSync(disk.pathOf(key));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(key);
    }
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });

  it('creating the same new lake at once: all agree on one config', async () => {
    const root = join(tempDir(), 'new-lake');
    const results = await Promise.all(Array.from({ length: 3 }, () => node('write-same-keys.ts', [root, 'x', '2'])));
    expect(results.every((result) => JSON.parse(result.stdout).length === 2)).toBe(true);
    expect(readFileSync(join(root, 'config.yml'), 'utf8')).toMatch(/levels/);
    expect(readdirSync(root).filter((name) => name.startsWith('.config'))).toEqual([]);
  });
});

describe('permissions', () => {
  it('a blob the process may not read gives a permission error, never a miss', async () => {
    const parent = tempDir();
    const root = join(parent, 'lake');
    const key = (await new HashKeyStorage(root).write(randomBytes(100)))!;
    chmodSync(new Disk(root).pathOf(key), 0o000);
    // root reads anything, so as root the reader runs as the unprivileged user "nobody"
    const asNobody = process.getuid?.() === 0;
    if (asNobody) chmodSync(parent, 0o755);
    const { stdout } = await node('read-one.ts', [root, key], asNobody ? { uid: 65534, gid: 65534 } : {});
    const outcome = JSON.parse(stdout) as { result?: unknown; error?: { name: string; code: string; cause: string } };
    expect(outcome.result).toBeUndefined();
    expect(outcome.error).toEqual({ name: 'LocationError', code: 'ERR_PERMISSION', cause: 'EACCES' });
  });
});

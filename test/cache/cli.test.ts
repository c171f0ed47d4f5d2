/**
 * `cairn du` and `cairn gc` on a smartCache folder, run as a user runs them.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { smartCache } from '../../src/cache/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { cairn } from '../cli/run.js';

afterAll(cleanup);

interface Du {
  entries: number;
  bytes: number;
  functions: { fn: string; entries: number; bytes: number }[];
  storage: { count: number }[];
}

async function du(args: string[]): Promise<Du> {
  const run = await cairn(['du', ...args, '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as Du;
}

describe('cairn du and gc on a cache folder', () => {
  it('report entries and bytes by function, evict by count, and create nothing at the folder\'s top', async () => {
    const cache = join(tempDir(), 'cache');
    const embed = smartCache(cache, { name: 'embed' })(async (x: number) => new Float32Array(2048).fill(x));
    const label = smartCache(cache, { name: 'label' })(async (x: number) => `label ${x}`);
    for (let x = 0; x < 3; x++) {
      await embed(x);
      await sleep(5);
    }
    await label(1);

    const usage = await du(['--lake', cache]);
    expect(usage.entries).toBe(4);
    expect(usage.functions.map((f) => [f.fn, f.entries])).toEqual([
      ['embed', 3],
      ['label', 1],
    ]);
    expect(usage.functions[0]!.bytes).toBeGreaterThan(3 * 8192);
    expect(usage.storage[0]!.count).toBe(3);
    const text = await cairn(['du', '--cache', cache]);
    expect(text.stdout).toMatch(/embed\s+3\s/);
    expect(existsSync(join(cache, 'config.yml'))).toBe(false);
    expect(existsSync(join(cache, '.tmp'))).toBe(false);

    const dry = await cairn(['gc', '--cache', cache, '--max-count', '2', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Would remove 2 entries');
    expect(dry.stdout).toContain(embed.key(0));
    expect((await du(['--cache', cache])).entries).toBe(4);

    const gc = await cairn(['gc', '--lake', cache, '--max-count', '2']);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toContain('Removed 2 entries');
    const after = await du(['--lake', cache]);
    expect(after.entries).toBe(2);
    expect(after.storage[0]!.count).toBe(1);
    expect(existsSync(join(cache, 'config.yml'))).toBe(false);
    expect(existsSync(join(cache, '.tmp'))).toBe(false);

    // this process sees the eviction: the evicted call runs again, the kept one is a hit
    expect((await embed(2))[0]).toBe(2);
    expect(embed.stats).toMatchObject({ misses: 3, hits: 1 });
    expect((await embed(0))[0]).toBe(0);
    expect(embed.stats.misses).toBe(4);
  });

  it('--cache on a folder that is not a cache is a usage error', async () => {
    const run = await cairn(['du', '--cache', tempDir()]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('is not a smartCache folder');
  });
});

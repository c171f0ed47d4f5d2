import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage, Level, Levels, Memory } from '../../src/index.js';
import type { LevelStatEvent, PromoteEvent } from '../../src/locations/compose/levels.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { cairn } from './run.js';

afterAll(cleanup);

const index = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const cacheEntry = fileURLToPath(new URL('../../src/entries/cache.ts', import.meta.url));

/** Runs a short program using cairn in its own process, with this environment; returns its stderr. */
function program(code: string, env: NodeJS.ProcessEnv): string {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import * as cairn from ${JSON.stringify(index)};\nimport * as cache from ${JSON.stringify(cacheEntry)};\n${code}`], {
    encoding: 'utf8',
    env: { ...process.env, DEBUG: '', CAIRN_LOG: '', ...env },
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stderr;
}

describe('Levels events', () => {
  it('stat:miss and stat:hit per level asked, promote when a value is copied up', async () => {
    const disk = new Disk(tempDir());
    const levels = new Levels(new Level(new Memory(), { name: 'memory' }), new Level(disk, { name: 'disk' }));
    const key = (await new HashKeyStorage(disk).write(Buffer.from('below')))!;
    const events: [string, LevelStatEvent | PromoteEvent][] = [];
    for (const name of ['stat:hit', 'stat:miss', 'promote']) levels.on(name, (event: LevelStatEvent | PromoteEvent) => events.push([name, event]));
    const storage = new HashKeyStorage(levels);
    expect((await storage.readBytes(key))!.toString()).toBe('below');
    expect((await storage.readBytes(key))!.toString()).toBe('below');
    expect(events).toEqual([
      ['stat:miss', { level: 'memory', key }],
      ['stat:hit', { level: 'disk', key, bytes: 5 }],
      ['promote', { key, from: 'disk', to: 'memory' }],
      ['stat:hit', { level: 'memory', key, bytes: 5 }],
    ]);
  });
});

describe('debug logging', () => {
  const levelsProgram = (root: string) => `
    const disk = new cairn.Disk(${JSON.stringify(root)});
    const levels = new cairn.Levels(new cairn.Level(new cairn.Memory(), { name: 'memory' }), new cairn.Level(disk, { name: 'disk' }));
    const key = await new cairn.HashKeyStorage(disk).write(Buffer.from('logged'));
    await new cairn.HashKeyStorage(levels).readBytes(key);
    console.log(key);
  `;

  it('DEBUG=cairn:* and CAIRN_LOG=levels log the reads of Levels; nothing without them', () => {
    for (const env of [{ DEBUG: 'cairn:*' }, { CAIRN_LOG: 'levels' }, { DEBUG: 'other,cairn:levels' }]) {
      const stderr = program(levelsProgram(tempDir()), env);
      expect(stderr, JSON.stringify(env)).toMatch(/^cairn:levels miss memory [0-9a-f]{64}\ncairn:levels hit disk [0-9a-f]{64} \(6 bytes\)\ncairn:levels promote [0-9a-f]{64} from disk to memory\n/);
    }
    expect(program(levelsProgram(tempDir()), {})).toBe('');
    expect(program(levelsProgram(tempDir()), { DEBUG: 'cairn:*,-cairn:levels' })).toBe('');
    expect(program(levelsProgram(tempDir()), { CAIRN_LOG: 'cache' })).toBe('');
  });

  it('CAIRN_LOG=cache logs the miss of a smartCache function, then its hit', () => {
    const root = tempDir();
    const stderr = program(
      `
      const storage = new cairn.HashKeyStorage(new cairn.Disk(${JSON.stringify(root)}));
      const double = cache.smartCache(storage)(async function double(x) { return x * 2; });
      if ((await double(21)) !== 42 || (await double(21)) !== 42) throw new Error('wrong result');
      await storage.close();
    `,
      { CAIRN_LOG: 'cache' },
    );
    const lines = stderr.split('\n').filter((line) => line.startsWith('cairn:cache'));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^cairn:cache miss double [0-9a-f]{64}$/);
    expect(lines[1]).toBe(lines[0]!.replace('miss', 'hit'));
  });

  it('cairn with DEBUG=cairn:cli says which lake it opened and why', async () => {
    const dir = tempDir();
    expect((await cairn(['init', 'lake', '-q'], { cwd: dir })).code).toBe(0);
    const run = await cairn(['ls', '--lake', 'lake'], { cwd: dir, env: { DEBUG: 'cairn:cli' } });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('cairn:cli lake from --lake: lake\n');
  });
});

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from './helpers/tmp.js';

afterAll(cleanup);

const run = promisify(execFile);
const script = join(import.meta.dirname, 'fixtures', 'loaded-packages.ts');
const heavy = ['ioredis', '@aws-sdk/client-s3', '@aws-sdk/lib-storage', 'ssh2', 'undici', 'better-sqlite3'];

/** The packages a fresh process holds after importing cairn and then `extra` (see the fixture). */
async function loaded(...extra: string[]): Promise<string[]> {
  const out = join(tempDir(), 'loaded.json');
  await run(process.execPath, ['--import', 'tsx', script, ...extra], { env: { ...process.env, LOADED_OUT: out } });
  return JSON.parse(readFileSync(out, 'utf8')) as string[];
}

describe('importing cairn', () => {
  it('loads no heavy client until a location of that kind is used', async () => {
    const packages = await loaded();
    for (const name of heavy) expect(packages).not.toContain(name);
  });

  it('no area entry loads a heavy client on import, the remote ones included', async () => {
    const packages = await loaded(...['errors', 'cache', 'tierkv', 'maintenance', 'config', 'redis', 's3', 'ssh', 'nginx'].map((area) => `entry:${area}`));
    for (const name of heavy) expect(packages).not.toContain(name);
  });

  it('the cairn command on a config of local locations (levels, small, memory, fanout of disks) loads no remote client', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'cairn.config.yaml'), 'storage:\n  levels:\n    - small: { memory: {} }\n      maxSize: 1KiB\n    - fanout: [a, b]\n');
    const config = join(dir, 'cairn.config.yaml');
    for (const command of [['ls', '--config', config], ['du', '--config', config]]) {
      const packages = await loaded('cli', ...command);
      for (const name of heavy) expect(packages, command.join(' ')).not.toContain(name);
    }
  });

  it('would see a heavy client that was loaded (the check itself works)', async () => {
    expect(await loaded('ioredis', 'ssh2')).toEqual(expect.arrayContaining(['ioredis', 'ssh2']));
  });
});

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = join(import.meta.dirname, 'fixtures', 'loaded-packages.ts');
const heavy = ['ioredis', '@aws-sdk/client-s3', '@aws-sdk/lib-storage', 'ssh2', 'undici', 'better-sqlite3'];

async function loaded(...extra: string[]): Promise<string[]> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, ...extra]);
  return JSON.parse(stdout) as string[];
}

describe('importing cairn', () => {
  it('loads no heavy client until a location of that kind is used', async () => {
    const packages = await loaded();
    for (const name of heavy) expect(packages).not.toContain(name);
  });

  it('would see a heavy client that was loaded (the check itself works)', async () => {
    expect(await loaded('ioredis', 'ssh2')).toEqual(expect.arrayContaining(['ioredis', 'ssh2']));
  });
});

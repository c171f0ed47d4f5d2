/**
 * The package as a user gets it: `npm pack` (which builds), installed into an empty project from
 * the tarball, with none of the optional clients. The README's tour runs there as ES modules and
 * through `require`, the command answers `--help`, and a location whose client is not installed
 * says which package to install.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);
// long commands run without blocking the worker (vitest's own messages must get through)
const run = promisify(execFile);

const root = join(import.meta.dirname, '..', '..');
const project = tempDir('cairn-packed-');
const lake = tempDir('cairn-packed-lake-');

const node = (file: string) => execFileSync(process.execPath, [join(project, file)], { cwd: project, encoding: 'utf8', env: { ...process.env, LAKE: lake } });

function sizeOf(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? sizeOf(path) : statSync(path).size;
  }
  return total;
}

const TOUR = (load: string) => `${load}
const { HashKeyStorage, Disk, Memory, Fanout, Levels, Level, Small, RedisLocation } = cairn;
(async () => {
  const storage = new HashKeyStorage(process.env.LAKE);
  const key = await storage.write(Buffer.from('my-bytes'), { labels: ['notes'] });
  const bytes = await storage.readBytes(key);
  const keys = [];
  for await (const { key: listed, meta } of storage.contents()) keys.push([listed, meta.labels]);
  const levels = new HashKeyStorage(new Levels(new Level(new Memory(), { write: false }), new Disk(process.env.LAKE)));
  const fromLevels = (await levels.readBytes(key)).toString();
  const small = new Small(new Memory(), { maxSize: 4 });
  let missing = null;
  try {
    await new HashKeyStorage(new RedisLocation('redis://127.0.0.1:1')).write(Buffer.from('x'));
  } catch (error) {
    missing = [error.name, error.code, error.package];
  }
  console.log(JSON.stringify({ key, bytes: bytes.toString(), keys, fromLevels, fanout: typeof Fanout, small: small.name !== undefined, missing }));
})();
`;

describe('the packed package in an empty project', () => {
  let installSeconds = 0;
  beforeAll(async () => {
    const packed = tempDir('cairn-pack-');
    const tarball = (await run('npm', ['pack', '--silent', '--pack-destination', packed], { cwd: root, encoding: 'utf8' })).stdout.trim().split('\n').pop()!;
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
    const start = performance.now();
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(packed, tarball)], { cwd: project, encoding: 'utf8' });
    installSeconds = (performance.now() - start) / 1000;
  }, 300_000);

  it('installs without any optional client (light install)', () => {
    for (const heavy of ['ioredis', '@aws-sdk/client-s3', 'ssh2', 'undici', 'better-sqlite3', 'lz4-napi']) {
      expect(() => statSync(join(project, 'node_modules', heavy)), heavy).toThrow();
    }
    const megabytes = sizeOf(join(project, 'node_modules')) / 1e6;
    console.log(`packed install: ${installSeconds.toFixed(1)} s, ${megabytes.toFixed(1)} MB in node_modules`);
    expect(megabytes).toBeLessThan(30);
  });

  it.each([
    ['ES modules', 'tour.mjs', "import * as cairn from 'cairn-lake';"],
    ['CommonJS (require)', 'tour.cjs', "const cairn = require('cairn-lake');"],
  ])('runs the README tour as %s', (_kind, file, load) => {
    writeFileSync(join(project, file), TOUR(load));
    const out = JSON.parse(node(file).trim()) as { key: string; bytes: string; keys: [string, string[]][]; fromLevels: string; missing: string[] };
    expect(out.key).toMatch(/^[0-9a-f]{64}$/);
    expect(out.bytes).toBe('my-bytes');
    expect(out.keys).toEqual([[out.key, ['notes']]]);
    expect(out.fromLevels).toBe('my-bytes');
    expect(out.missing).toEqual(['MissingDependencyError', 'ERR_MISSING_DEPENDENCY', 'ioredis']);
  });

  it('the command works after installing: npx cairn --help and --version', () => {
    const help = execFileSync('npx', ['--no-install', 'cairn', '--help'], { cwd: project, encoding: 'utf8' });
    expect(help).toMatch(/cairn/);
    expect(help).toMatch(/init/);
  });
});

/**
 * The package as a user gets it: `npm pack` (which builds), installed into an empty project from
 * the tarball, with none of the optional clients. The README's tour runs there as ES modules and
 * through `require`, every subpath loads both ways, the command answers `--help`, and a location
 * whose client is not installed says which package to install. A TypeScript project that checks
 * library declarations (`skipLibCheck: false`) compiles against the core entry and the areas that
 * need no optional package with none installed; the others name the package they need.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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
const { HashKeyStorage, Disk, Memory, Fanout, Levels, Level, Small } = cairn;
const { RedisLocation } = redis;
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

const manifest = () => JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };

/** Each area entry, and some of the names it must export. */
const AREAS: Record<string, string[]> = {
  'cairn-lake/errors': ['CairnError', 'ERROR_CODES', 'NotFoundError', 'LocationError', 'ConfigFileError'],
  'cairn-lake/redis': ['RedisLocation'],
  'cairn-lake/s3': ['S3'],
  'cairn-lake/ssh': ['SFTP', 'SCP'],
  'cairn-lake/nginx': ['Nginx'],
  'cairn-lake/cache': ['smartCache', 'markStable', 'markUnstable', 'cacheUsage', 'clearCache', 'reduceCache'],
  'cairn-lake/tierkv': ['TierKV', 'ResourceMemory', 'ResourceFilesystem'],
  'cairn-lake/maintenance': ['verify', 'gc', 'migrate', 'du', 'keepStats'],
  'cairn-lake/config': ['loadConfig', 'findConfig', 'registerLocationKind', 'ConfigNode'],
};

/** The optional packages whose types an area's declarations name. */
const PEERS: Record<string, string[]> = {
  'cairn-lake/redis': ['ioredis'],
  'cairn-lake/s3': ['@aws-sdk/client-s3'],
  'cairn-lake/ssh': ['ssh2'],
  'cairn-lake/nginx': ['undici'],
};

/** A TypeScript user of the core entry: the README's names, typed. */
const CORE_USE = `import { Disk, Fanout, HashKeyStorage, Level, Levels, Memory, Packed, Small, NotFoundError, loadConfig, type ErrorCode, type Key, type Location } from 'cairn-lake';
const storage = new HashKeyStorage(new Levels(new Level(new Memory({ maxSize: '2GB' }), { write: false }), new Disk('lake')));
const written: Promise<Key | null> = storage.write(Buffer.from('my-bytes'), { labels: ['notes'] });
await storage.write(Buffer.from('x'));
const locations: Location[] = [new Small(new Memory(), { maxSize: 4 }), new Fanout('a', 'b'), new Packed('p')];
const code: ErrorCode = new NotFoundError('0'.repeat(64)).code;
export const used = [written, locations, code, loadConfig];
`;

/** Every area entry whose declarations name no optional package. */
const LIGHT_AREAS = `import * as errors from 'cairn-lake/errors';
import { TierKV, ResourceMemory } from 'cairn-lake/tierkv';
import { verify, gc } from 'cairn-lake/maintenance';
import { smartCache, markUnstable } from 'cairn-lake/cache';
import { registerLocationKind, type BuildContext, type ConfigNode } from 'cairn-lake/config';
registerLocationKind('mine', async (node: ConfigNode, context: BuildContext) => context.build(node));
export const used = [errors.ERROR_CODES.ERR_NOT_FOUND.classes, TierKV, ResourceMemory, verify, gc, smartCache, markUnstable];
`;

describe('the packed package in an empty project', () => {
  let installSeconds = 0;
  beforeAll(async () => {
    const packed = tempDir('cairn-pack-');
    // what an older build left in dist/ (a module since moved or removed) must not be shipped
    mkdirSync(join(root, 'dist', 'moved-away'), { recursive: true });
    writeFileSync(join(root, 'dist', 'moved-away', 'old-module.js'), 'export const stale = true;\n');
    const tarball = (await run('npm', ['pack', '--silent', '--pack-destination', packed], { cwd: root, encoding: 'utf8' })).stdout.trim().split('\n').pop()!;
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
    const start = performance.now();
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(packed, tarball)], { cwd: project, encoding: 'utf8' });
    installSeconds = (performance.now() - start) / 1000;
  }, 300_000);

  it('ships only what its own build made (prepack clears dist/ first)', () => {
    const shipped = join(project, 'node_modules', 'cairn-lake', 'dist');
    expect(statSync(join(shipped, 'index.js')).isFile()).toBe(true);
    expect(() => statSync(join(shipped, 'moved-away'))).toThrow();
  });

  it('installs without any optional client (light install)', () => {
    for (const heavy of ['ioredis', '@aws-sdk/client-s3', 'ssh2', 'undici', 'better-sqlite3', 'lz4-napi']) {
      expect(() => statSync(join(project, 'node_modules', heavy)), heavy).toThrow();
    }
    const megabytes = sizeOf(join(project, 'node_modules')) / 1e6;
    console.log(`packed install: ${installSeconds.toFixed(1)} s, ${megabytes.toFixed(1)} MB in node_modules`);
    expect(megabytes).toBeLessThan(30);
  });

  it.each([
    ['ES modules', 'tour.mjs', "import * as cairn from 'cairn-lake';\nimport * as redis from 'cairn-lake/redis';"],
    ['CommonJS (require)', 'tour.cjs', "const cairn = require('cairn-lake');\nconst redis = require('cairn-lake/redis');"],
  ])('runs the README tour as %s', (_kind, file, load) => {
    writeFileSync(join(project, file), TOUR(load));
    const out = JSON.parse(node(file).trim()) as { key: string; bytes: string; keys: [string, string[]][]; fromLevels: string; missing: string[] };
    expect(out.key).toMatch(/^[0-9a-f]{64}$/);
    expect(out.bytes).toBe('my-bytes');
    expect(out.keys).toEqual([[out.key, ['notes']]]);
    expect(out.fromLevels).toBe('my-bytes');
    expect(out.missing).toEqual(['MissingDependencyError', 'ERR_MISSING_DEPENDENCY', 'ioredis']);
  });

  it('every subpath of package.json loads as an ES module and through require, with the same names, none needing an optional client', () => {
    const subpaths = Object.keys(manifest().exports).filter((path) => path !== './package.json').map((path) => path.replace(/^\./, 'cairn-lake'));
    expect(subpaths).toEqual(expect.arrayContaining(['cairn-lake', ...Object.keys(AREAS)]));
    const list = JSON.stringify(subpaths);
    writeFileSync(join(project, 'areas.mjs'), `const out = {}; for (const path of ${list}) out[path] = Object.keys(await import(path)).sort(); console.log(JSON.stringify(out));`);
    writeFileSync(join(project, 'areas.cjs'), `const out = {}; for (const path of ${list}) out[path] = Object.keys(require(path)).filter((name) => name !== 'module.exports').sort(); console.log(JSON.stringify(out));`);
    const esm = JSON.parse(node('areas.mjs')) as Record<string, string[]>;
    const cjs = JSON.parse(node('areas.cjs')) as Record<string, string[]>;
    expect(cjs).toEqual(esm);
    for (const [area, names] of Object.entries(AREAS)) expect(esm[area], area).toEqual(expect.arrayContaining(names));
    // the core entry holds what the README's tour uses, and no remote location
    expect(esm['cairn-lake']).toEqual(expect.arrayContaining(['HashKeyStorage', 'Disk', 'Memory', 'Fanout', 'Levels', 'Level', 'Small', 'Packed', 'loadConfig', 'CairnError', 'ERROR_CODES']));
    expect(esm['cairn-lake']).not.toEqual(expect.arrayContaining(['RedisLocation']));
  });

  describe('declarations, checked by a TypeScript project with skipLibCheck: false', () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    /** Compiles `files` with the given module settings; the compiler's messages, '' when none. */
    async function compile(name: string, files: Record<string, string>, options: Record<string, string> = { module: 'NodeNext', moduleResolution: 'NodeNext' }) {
      const dir = join(project, name);
      mkdirSync(dir, { recursive: true });
      for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
      const compilerOptions = { target: 'ES2022', strict: true, skipLibCheck: false, noEmit: true, types: ['node'], ...options };
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: Object.keys(files) }));
      return run(process.execPath, [tsc, '-p', dir], { cwd: dir, encoding: 'utf8' }).then(({ stdout }) => stdout, (error: { stdout: string }) => error.stdout);
    }

    beforeAll(() => {
      // a TypeScript user has Node's types; nothing else is installed
      mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
      symlinkSync(join(root, 'node_modules', '@types', 'node'), join(project, 'node_modules', '@types', 'node'));
    });

    it('the core entry and the areas that need no optional package compile with none installed (ESM, CommonJS, node10 resolution)', async () => {
      expect(await compile('types-esm', { 'core.ts': CORE_USE, 'areas.ts': LIGHT_AREAS })).toBe('');
      expect(await compile('types-cjs', { 'core.cts': CORE_USE.replace('await storage.write', 'void storage.write'), 'areas.cts': LIGHT_AREAS })).toBe('');
      // an older project (moduleResolution node10) finds the subpaths through typesVersions
      expect(await compile('types-node10', { 'core.ts': CORE_USE.replace('await storage.write', 'void storage.write'), 'areas.ts': LIGHT_AREAS }, { module: 'commonjs', moduleResolution: 'node10' })).toBe('');
    }, 120_000);

    it('an area that needs an optional package names it when it is missing, and compiles once it is there', async () => {
      const files = Object.fromEntries(Object.keys(PEERS).map((area) => [`${area.split('/')[1]}.ts`, `import * as area from '${area}';\nconsole.log(Object.keys(area));\n`]));
      const missing = await compile('types-peers-missing', files);
      const named = new Set([...missing.matchAll(/error TS(?:2307|7016): [^\n]*module '([^']+)'/g)].map((match) => match[1]));
      expect([...named].sort()).toEqual([...new Set(Object.values(PEERS).flat())].sort());
      expect(missing.split('\n').filter((line) => /error TS/.test(line) && !/TS2307|TS7016/.test(line))).toEqual([]);
      const linked = ['ioredis', '@aws-sdk/client-s3', '@types/ssh2', 'undici'].map((name) => join(project, 'node_modules', name));
      try {
        mkdirSync(join(project, 'node_modules', '@aws-sdk'), { recursive: true });
        for (const path of linked) symlinkSync(join(root, 'node_modules', path.slice(join(project, 'node_modules').length + 1)), path);
        expect(await compile('types-peers-installed', files)).toBe('');
      } finally {
        for (const path of linked) rmSync(path, { force: true });
      }
    }, 120_000);
  });

  it('the command works after installing: npx cairn --help and --version', () => {
    const help = execFileSync('npx', ['--no-install', 'cairn', '--help'], { cwd: project, encoding: 'utf8' });
    expect(help).toMatch(/cairn/);
    expect(help).toMatch(/init/);
  });
});

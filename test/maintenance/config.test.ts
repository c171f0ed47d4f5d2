import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, Disk, Fanout, HashKeyStorage, Level, Levels, Memory, Small } from '../../src/index.js';
import { findConfig, loadConfig } from '../../src/config/load.js';
import { ConfigFileError } from '../../src/config/node.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

function write(dir: string, name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

async function configError(text: string, env: NodeJS.ProcessEnv = {}, name = 'cairn.config.yaml'): Promise<ConfigFileError> {
  const file = write(tempDir(), name, text);
  const error = await loadConfig(file, { env }).then(() => null, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(ConfigFileError);
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigFileError).file).toBe(file);
  return error as ConfigFileError;
}

/** What a composition is made of: classes, names and level flags, recursively. */
function shape(location: unknown): unknown {
  if (location instanceof Levels) return { levels: location.levels.map((l) => ({ write: l.write, replicate: l.replicate, touch: l.touch, name: l.name, of: shape(l.location) })) };
  if (location instanceof Fanout) return { fanout: location.locations.map(shape) };
  if (location instanceof Small) return { small: shape(location.location), maxSize: location.maxSize };
  if (location instanceof Disk) return { disk: location.root, levels: location.levels };
  return { name: (location as { name: string }).name, type: (location as object).constructor.name };
}

describe('config files', () => {
  it('fromConfig builds the same composition as the API', async () => {
    const dir = tempDir();
    const file = write(dir, 'cairn.config.yaml', `
# a memory cache, an SSD that only caches, then two disks used one after the other
storage:
  levels:
    - small: { memory: { maxSize: 64MB } }
      maxSize: 100KiB
      write: false
    - disk: { path: ssd, maxSize: 1GB, fsync: false }
      write: false
      touch: true
      name: ssd
    - fanout: [hdd1, { disk: { path: hdd2, levels: [2, -1] } }]
  skipFailing: true
labels: [from-config]
`);
    const storage = await HashKeyStorage.fromConfig(file);
    const api = new Levels(
      new Level(new Small(new Memory({ maxSize: '64MB' }), { maxSize: '100KiB' }), { write: false }),
      new Level(new Disk(join(dir, 'ssd'), { maxSize: '1GB', fsync: false }), { write: false, touch: true, name: 'ssd' }),
      new Fanout(join(dir, 'hdd1'), new Disk(join(dir, 'hdd2'), { levels: [2, -1] })),
      { skipFailing: true },
    );
    expect(shape(storage.local)).toEqual(shape(api));
    expect(storage.local.name).toBe(api.name);
    // it works as a storage: labels from the file, written to the first writable level
    const key = (await storage.write(Buffer.from('through the config')))!;
    expect(await new Disk(join(dir, 'hdd1')).read(key)).not.toBeNull();
    for await (const entry of storage.contents()) expect(entry.meta.labels).toEqual(['from-config']);
  });

  it('JSON works too, and the nearest file is found by walking up from the working folder', async () => {
    const dir = tempDir();
    write(dir, 'cairn.config.json', JSON.stringify({ storage: 'lake', remote: { disk: '/nonexistent-is-fine-later' }, fetch: false }));
    const deep = join(dir, 'x', 'y');
    mkdirSync(deep, { recursive: true });
    expect(findConfig(deep)).toBe(join(dir, 'cairn.config.json'));
    const config = await loadConfig(undefined, { cwd: deep });
    expect(config.local).toBeInstanceOf(Disk);
    expect((config.local as Disk).root).toBe(join(dir, 'lake'));
    expect(config.options.fetch).toBe(false);
  });

  it('a bad file names the file, the line and the field', async () => {
    const size = await configError('storage:\n  levels:\n    - memory: {}\n    - disk:\n        path: lake\n        maxSize: lots\n');
    expect(size.line).toBe(6);
    expect(size.field).toBe('storage.levels[1].disk.maxSize');
    expect(size.message).toMatch(/cairn\.config\.yaml:6: storage\.levels\[1\]\.disk\.maxSize: Invalid maxSize|Invalid size/);

    const unknown = await configError('storage:\n  disk:\n    path: lake\n    maxSise: 1GB\n');
    expect([unknown.line, unknown.field]).toEqual([4, 'storage.disk.maxSise']);
    expect(unknown.message).toContain('unknown option "maxSise"');

    const kind = await configError('storage:\n  levels:\n    - memroy: {}\n');
    expect([kind.line, kind.field]).toEqual([3, 'storage.levels[0]']);

    const type = await configError('storage:\n  levels:\n    - disk: a\n      write: no-thanks\n');
    expect([type.line, type.field]).toEqual([4, 'storage.levels[0].write']);

    const yaml = await configError('storage:\n  disk: [unclosed\n');
    expect(yaml.message).toContain('not valid YAML');

    const json = await configError('{\n  "storage": {\n    "memory": { "maxSize": "big" }\n  }\n}\n', {}, 'cairn.config.json');
    expect([json.line, json.field]).toEqual([3, 'storage.memory.maxSize']);

    const missing = await configError('remote: lake\n');
    expect(missing.message).toContain('missing `storage:`');
  });

  it('secrets only from the environment: a literal secret is an error, ${env:NAME} is read', async () => {
    const literal = await configError('storage:\n  sftp:\n    host: files.lab\n    root: /lake\n    password: hunter2\n');
    expect([literal.line, literal.field]).toEqual([5, 'storage.sftp.password']);
    expect(literal.message).toContain('must not be written in the file');

    const inUrl = await configError('storage:\n  redis: redis://:hunter2@cache.lab:6379\n');
    expect(inUrl.message).toContain('password in a URL');

    const unset = await configError('storage:\n  sftp:\n    host: files.lab\n    root: /lake\n    password: ${env:CAIRN_TEST_UNSET}\n');
    expect(unset.message).toContain('CAIRN_TEST_UNSET is not set');

    const dir = tempDir();
    const file = write(dir, 'cairn.config.yaml', 'storage:\n  s3:\n    endpoint: http://127.0.0.1:9\n    bucket: lake\n    credentials:\n      accessKeyId: ${env:KEY_ID}\n      secretAccessKey: ${env:SECRET}\n');
    const config = await loadConfig(file, { env: { KEY_ID: 'id', SECRET: 's3cr3t' } });
    expect(config.local.name).toBe('S3(http://127.0.0.1:9/lake)');
    const leaked = await configError('storage:\n  s3:\n    bucket: lake\n    credentials:\n      accessKeyId: id\n      secretAccessKey: s3cr3t\n');
    expect([leaked.line, leaked.field]).toEqual([6, 'storage.s3.credentials.secretAccessKey']);
  });

  it('a typo at any level is an error: beside a level, beside a kind, inside retry and credentials', async () => {
    // `writes: false` ignored would make this cache level the write target
    const level = await configError('storage:\n  levels:\n    - memory: {}\n      writes: false\n    - disk: lake\n');
    expect([level.line, level.field]).toEqual([4, 'storage.levels[0].writes']);
    expect(level.message).toContain('unknown field "writes"');
    expect(level.message).toContain('write');

    const beside = await configError('storage:\n  disk: lake\n  write: false\n');
    expect([beside.line, beside.field]).toEqual([3, 'storage.write']);

    const small = await configError('storage:\n  small: { memory: {} }\n  maxSize: 1KiB\n  maxSise: 2KiB\n');
    expect([small.line, small.field]).toEqual([4, 'storage.maxSise']);

    const top = await configError('storage:\n  levels:\n    - memory: {}\n  skipFailng: true\n');
    expect([top.line, top.field]).toEqual([4, 'storage.skipFailng']);

    const retry = await configError('storage:\n  nginx:\n    url: http://127.0.0.1:9/lake/\n    retry: { attemps: 5 }\n');
    expect([retry.line, retry.field]).toEqual([4, 'storage.nginx.retry.attemps']);

    const credentials = await configError('storage:\n  s3:\n    bucket: lake\n    credentials:\n      accesKeyId: ${env:ID}\n', { ID: 'x' });
    expect([credentials.line, credentials.field]).toEqual([5, 'storage.s3.credentials.accesKeyId']);

    // the same options, spelled right, build
    const dir = tempDir();
    const good = write(dir, 'cairn.config.yaml', 'storage:\n  levels:\n    - memory: {}\n      write: false\n    - disk: lake\n  skipFailing: true\n');
    const config = await loadConfig(good, { env: {} });
    expect((config.local as Levels).levels.map((l) => l.write)).toEqual([false, true]);
  });

  it('the three typos docs/configuration.md promises to catch are errors wherever they sit', async () => {
    // 1. a mistyped `write: false` beside a level (a cache level would take the writes), nested too
    for (const [text, line, field] of [
      ['storage:\n  levels:\n    - memory: {}\n      wirte: false\n    - disk: lake\n', 4, 'storage.levels[0].wirte'],
      ['storage:\n  levels:\n    - levels:\n        - memory: {}\n          writes: false\n        - disk: a\n    - disk: b\n', 5, 'storage.levels[0].levels[0].writes'],
      ['remote:\n  levels:\n    - small: { memory: {} }\n      maxSize: 1KiB\n      Write: false\n    - disk: b\nstorage: a\n', 5, 'remote.levels[0].Write'],
    ] as const) {
      const error = await configError(text);
      expect([error.line, error.field], text).toEqual([line, field]);
      expect(error.message).toMatch(/unknown field ".*" beside `(memory|small)` \(known here: .*write/);
    }
    // 2. `skipFaling` beside levels: at the top, as a level of other levels, under remote
    for (const [text, line, field] of [
      ['storage:\n  levels: [lake]\n  skipFaling: true\n', 3, 'storage.skipFaling'],
      ['storage:\n  levels:\n    - levels: [a, b]\n      skipFaling: true\n    - disk: c\n', 4, 'storage.levels[0].skipFaling'],
      ['storage: a\nremote:\n  levels: [b]\n  skipFaling: true\n', 4, 'remote.skipFaling'],
    ] as const) {
      const error = await configError(text);
      expect([error.line, error.field], text).toEqual([line, field]);
      expect(error.message).toContain('skipFailing');
    }
    // 3. any unknown key beside a location: a level's field where there is no level, a stray key
    for (const [text, line, field] of [
      ['storage:\n  fanout:\n    - disk: a\n      write: false\n', 4, 'storage.fanout[0].write'],
      ['storage:\n  small: { memory: {}, maxSize: 1KiB }\n  maxSize: 1KiB\n', 2, 'storage.small.maxSize'],
      ['storage:\n  memory: {}\n  maxSize: 1GB\n', 3, 'storage.maxSize'],
      ['storage:\n  redis: redis://127.0.0.1:9\n  prefix: "x:"\n', 3, 'storage.prefix'],
      ['storage: lake\nlabel: [x]\n', 2, 'label'],
    ] as const) {
      const error = await configError(text);
      expect([error.line, error.field], text).toEqual([line, field]);
      expect(error.message).toContain('unknown field');
    }
  });

  it('literal secret headers and URL tokens are refused; the same from ${env:NAME} are read', async () => {
    for (const header of ['x-api-key', 'Cookie', 'authorization', 'X-Auth-Token', 'proxy-authorization']) {
      const error = await configError(`storage:\n  nginx:\n    url: http://127.0.0.1:9/lake/\n    headers:\n      ${header}: abc123\n`);
      expect([error.line, error.field]).toEqual([5, `storage.nginx.headers.${header}`]);
      expect(error.message).toContain('must not be written in the file');
      expect(error.message).not.toContain('abc123');
    }
    for (const url of ['http://127.0.0.1:9/lake/?token=abc123', 'https://h/lake/?X-Amz-Signature=abc123&a=1', 'http://h/l/?access_token=abc123']) {
      const error = await configError(`storage:\n  nginx: "${url}"\n`);
      expect(error.message).toMatch(/URL parameter .* is a secret/);
      expect(error.message).not.toContain('abc123');
    }
    const slash = await configError('storage:\n  redis: redis://:pa/ss@cache.lab:6379\n');
    expect(slash.message).toContain('password in a URL');
    expect(slash.message).not.toContain('pa/ss');

    // an @ in the path and a port are no password
    const dir = tempDir();
    const atInPath = write(dir, 'at.yaml', 'storage:\n  nginx: http://mirror.lab:8080/lake@v2/\n');
    expect((await loadConfig(atInPath, { env: {} })).local.name).toBe('Nginx(http://mirror.lab:8080/lake@v2/)');
    const file = write(dir, 'cairn.config.yaml', 'storage:\n  nginx:\n    url: http://127.0.0.1:9/lake/?token=${env:TOKEN}\n    headers:\n      x-api-key: ${env:KEY}\n');
    const config = await loadConfig(file, { env: { TOKEN: 'tok-value', KEY: 'key-value' } });
    expect(config.local.name).toBe('Nginx(http://127.0.0.1:9/lake/?<redacted>)');
  });

  it('remote kinds build from a config; a local-only config never loads their client libraries', () => {
    const dir = tempDir();
    const local = write(dir, 'local.yaml', 'storage:\n  levels: [{ memory: {} }, lake]\n');
    const remote = write(dir, 'remote.yaml', [
      'storage:',
      '  levels:',
      '    - small: { redis: { url: "redis://127.0.0.1:9", prefix: "c:" } }',
      '      maxSize: 64KiB',
      '    - fanout:',
      '      - sftp: { host: 127.0.0.1, root: /srv/lake, port: 9, acceptUnknownHostKey: true }',
      '      - scp: { host: 127.0.0.1, root: /srv/lake, port: 9, acceptUnknownHostKey: true }',
      '    - nginx: http://127.0.0.1:9/lake/',
      '',
    ].join('\n'));
    const fixture = fileURLToPath(new URL('../fixtures/config-loads.ts', import.meta.url));
    const run = (file: string) => {
      const result = spawnSync(process.execPath, ['--import', 'tsx', fixture, file], { encoding: 'utf8' });
      expect(result.stderr).toBe('');
      return JSON.parse(result.stdout) as { name: string; ioredis: boolean; aws: boolean; ssh2: boolean };
    };
    const onlyLocal = run(local);
    expect(onlyLocal).toMatchObject({ ioredis: false, aws: false, ssh2: false });
    expect(onlyLocal.name).toBe(`Levels(Memory, Disk(${join(dir, 'lake')}))`);
    const withRemote = run(remote);
    expect(withRemote.name).toMatch(/^Levels\(Small\(Redis.*SFTP.*SCP.*Nginx/);
  });
});

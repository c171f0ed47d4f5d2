import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, Levels } from '../../src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { CAIRN } from './run.js';

afterAll(cleanup);

const docs = fileURLToPath(new URL('../../docs/', import.meta.url));

/** The fenced blocks of a language in a markdown file, in order. */
function blocks(file: string, language: string): string[] {
  const text = readFileSync(join(docs, file), 'utf8');
  return [...text.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((match) => match[1]!);
}

describe('docs/cli.md', () => {
  it('the tour runs as written, in an empty folder', () => {
    const dir = tempDir();
    const bin = tempDir();
    writeFileSync(join(bin, 'cairn'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CAIRN)} "$@"\n`);
    chmodSync(join(bin, 'cairn'), 0o755);
    const tour = blocks('cli.md', 'sh').find((block) => block.startsWith('cairn init lake'))!;
    const run = spawnSync('bash', ['-e', '-c', tour], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    expect(run.stderr.split('\n').filter((line) => !/^(\w[\w ()]*: |$)/.test(line))).toEqual([]);
    expect(run.status).toBe(0);
    expect(readFileSync(join(dir, 'copy.txt'), 'utf8')).toBe('from a pipe');
    const listing = JSON.parse(readFileSync(join(dir, 'listing.json'), 'utf8')) as { labels: string[] }[];
    expect(listing).toHaveLength(3);
    expect(run.stdout).toContain('3 blobs checked');
    expect(run.stdout).toContain('copied 3');
    expect(readdirSync(join(dir, 'new-lake')).filter((name) => /^[0-9a-f]{2}$/.test(name)).length).toBeGreaterThan(0);
  });
});

describe('docs/configuration.md', () => {
  it('every YAML example loads and builds its composition (folders moved under a temp folder)', async () => {
    const examples = blocks('configuration.md', 'yaml');
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const example of examples) {
      const dir = tempDir();
      // the lab's group is `users` on this test machine
      const text = example.replace(/\/mnt\//g, `${dir}/mnt/`).replace('group: lab', 'group: users');
      const env = Object.fromEntries([...text.matchAll(/\$\{env:(\w+)\}/g)].map((match) => [match[1]!, 'from-the-environment']));
      writeFileSync(join(dir, 'cairn.config.yaml'), text);
      const config = await loadConfig(join(dir, 'cairn.config.yaml'), { env });
      expect(config.local.name).toMatch(/Disk|Levels/);
      if (config.local instanceof Levels) expect(config.local.levels.length).toBe(4);
      if (config.local instanceof Disk) expect(config.local.root.startsWith(dir)).toBe(true);
    }
  });
});

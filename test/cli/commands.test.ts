import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage, Level, Levels, Memory } from '../../src/index.js';
import { saveStats } from '../../src/storage/maintenance/stats.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { cairn } from './run.js';

afterAll(cleanup);

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('cairn init, write, read, ls, du', () => {
  it('stores files and stdin, prints one key per file, and reads them back', async () => {
    const dir = tempDir();
    const lake = join(dir, 'lake');
    const init = await cairn(['init', lake]);
    expect(init.code).toBe(0);
    expect(existsSync(join(lake, 'config.yml'))).toBe(true);

    const a = randomBytes(70_000);
    const b = Buffer.from('second file\n');
    writeFileSync(join(dir, 'a.bin'), a);
    writeFileSync(join(dir, 'b.txt'), b);
    const written = await cairn(['write', 'a.bin', 'b.txt', '--labels', 'raw,scan', '--lake', lake], { cwd: dir });
    expect(written.code).toBe(0);
    expect(written.stdout.trim().split('\n')).toEqual([sha(a), sha(b)]);

    const piped = await cairn(['write', '-', '--lake', lake], { input: 'from stdin' });
    expect(piped.stdout.trim()).toBe(sha('from stdin'));

    const toStdout = await cairn(['read', sha(b), '--lake', lake]);
    expect(toStdout.code).toBe(0);
    expect(toStdout.stdout).toBe('second file\n');
    const out = join(dir, 'out.bin');
    expect((await cairn(['read', sha(a), '-o', out, '--lake', lake])).code).toBe(0);
    expect(readFileSync(out).equals(a)).toBe(true);

    const listed = JSON.parse((await cairn(['ls', '--labels', 'raw', '--json', '--lake', lake])).stdout) as { key: string; size: number; labels: string[]; lastUsed: string }[];
    expect(listed.map((entry) => entry.key).sort()).toEqual([sha(a), sha(b)].sort());
    expect(listed.find((entry) => entry.key === sha(a))).toMatchObject({ size: 70_000, labels: ['raw', 'scan'] });
    expect(Date.parse(listed[0]!.lastUsed)).toBeGreaterThan(Date.now() - 60_000);
    const table = (await cairn(['ls', '--lake', lake])).stdout;
    expect(table).toContain(sha('from stdin'));
    expect(table.split('\n')[0]).toMatch(/^KEY\s+SIZE\s+LAST USED\s+LABELS/);

    const du = JSON.parse((await cairn(['du', '--json', '--lake', lake])).stdout) as { count: number; bytes: number }[];
    expect(du).toMatchObject([{ count: 3, bytes: 70_000 + b.length + 'from stdin'.length }]);
  });

  it('finds the lake through a cairn.config.yaml in a folder above', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'cairn.config.yaml'), 'storage:\n  disk: ./lake\n');
    const sub = join(dir, 'a', 'b');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub, { recursive: true });
    const written = await cairn(['write', '-'], { cwd: sub, input: 'found by walking up' });
    expect(written.code).toBe(0);
    expect(existsSync(join(dir, 'lake', written.stdout.slice(0, 2), written.stdout.trim().slice(2)))).toBe(true);
  });

  it('exit codes: 2 for usage, 1 for failures, with a message on stderr', async () => {
    const lake = tempDir();
    expect((await cairn(['init', lake, '--quiet'])).code).toBe(0);
    const missing = await cairn(['read', 'a'.repeat(64), '--lake', lake]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/not found.*ERR_NOT_FOUND/);
    const badKey = await cairn(['read', 'nope', '--lake', lake]);
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('Invalid key');
    expect((await cairn(['frobnicate'])).code).toBe(2);
    const badOption = await cairn(['ls', '--colour', '--lake', lake]);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toContain('--colour');
    const badSize = await cairn(['gc', '--max-size', 'huge', '--lake', lake]);
    expect(badSize.code).toBe(2);
    const noLake = await cairn(['ls'], { cwd: tempDir(), env: { CAIRN_LAKE: '' } });
    expect(noLake.code).toBe(2);
    expect(noLake.stderr).toContain('No lake');
  });

  it('only init makes a lake: a mistyped --lake, $CAIRN_LAKE or --from is exit code 2 and creates nothing', async () => {
    const dir = tempDir();
    expect((await cairn(['init', 'lake', '--quiet'], { cwd: dir })).code).toBe(0);
    for (const command of [['ls'], ['du'], ['verify'], ['gc', '--max-count', '1'], ['stats'], ['write', '-'], ['read', 'a'.repeat(64)]]) {
      const run = await cairn([...command, '--lake', 'lak'], { cwd: dir, input: 'x' });
      expect(run.code, command[0]).toBe(2);
      expect(run.stderr).toContain('--lake lak does not exist; make one with `cairn init lak`');
      expect(run.stdout).toBe('');
    }
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'plain'));
    const plain = await cairn(['ls', '--lake', 'plain'], { cwd: dir });
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('--lake plain is not a lake (it has no config.yml, nor a packed.db)');
    const fromEnv = await cairn(['du'], { cwd: dir, env: { CAIRN_LAKE: join(dir, 'lakee') } });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toContain('$CAIRN_LAKE');
    const from = await cairn(['migrate', '--from', 'lak', '--to', 'copy'], { cwd: dir });
    expect(from.code).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(['lake', 'plain']);
    expect(readdirSync(join(dir, 'plain'))).toEqual([]);
    expect((await cairn(['ls', '--lake', 'lake'], { cwd: dir })).code).toBe(0);
  });
});

describe('cairn verify, gc, stats', () => {
  it('verify moves a corrupted blob into tools/quarantine, lists it and exits 1', async () => {
    const lake = tempDir();
    const storage = new HashKeyStorage(lake);
    const good = await storage.write(Buffer.from('good value'));
    const bad = (await storage.write(randomBytes(5000)))!;
    const file = new Disk(lake).pathOf(bad);
    chmodSync(file, 0o644);
    const bytes = readFileSync(file);
    bytes[10] ^= 0xff;
    writeFileSync(file, bytes);

    const run = await cairn(['verify', '--lake', lake]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`CORRUPTED ${bad}`);
    expect(run.stdout).toContain('2 blobs checked');
    expect(existsSync(file)).toBe(false);
    const quarantined = readdirSync(join(lake, 'tools', 'quarantine'));
    expect(quarantined).toHaveLength(1);
    expect(readFileSync(join(lake, 'tools', 'quarantine', quarantined[0]!)).equals(bytes)).toBe(true);
    expect(await storage.readBytes(good!)).toEqual(Buffer.from('good value'));

    const again = JSON.parse((await cairn(['verify', '--json', '--lake', lake])).stdout) as { checked: number; bad: unknown[] };
    expect(again).toMatchObject({ checked: 1, bad: [] });
  });

  it('gc --dry-run lists what it would evict and removes nothing; gc evicts least recently used first', async () => {
    const lake = tempDir();
    const storage = new HashKeyStorage(lake);
    const keys: string[] = [];
    for (let i = 0; i < 5; i++) keys.push((await storage.write(Buffer.alloc(1000, i)))!);
    // last used: key 0 ten days ago, key 1 nine days ago, …
    const { utimesSync } = await import('node:fs');
    keys.forEach((key, i) => {
      const when = new Date(Date.now() - (10 - i) * 86_400_000);
      utimesSync(join(lake, 'tools', 'usage', key.slice(0, 2), key.slice(2)), when, when);
    });
    const dry = await cairn(['gc', '--max-count', '3', '--dry-run', '--lake', lake]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would remove ${keys[0]}`);
    expect(dry.stdout).toContain(`would remove ${keys[1]}`);
    expect(dry.stdout).not.toContain(keys[2]);
    expect(await storage.has(keys[0]!)).toBe(true);

    const run = JSON.parse((await cairn(['gc', '--older-than', '7d', '--json', '--lake', lake])).stdout) as { removed: { key: string }[]; keptCount: number };
    expect(run.removed.map((entry) => entry.key).sort()).toEqual(keys.slice(0, 4).sort());
    expect(run.keptCount).toBe(1);
    expect(await storage.has(keys[3]!)).toBe(false);
    expect(await storage.has(keys[4]!)).toBe(true);
  });

  it('stats prints the counters programs saved in the lake', async () => {
    const root = tempDir();
    const levels = new Levels(new Level(new Memory(), { name: 'memory' }), new Level(new Disk(root), { name: 'disk' }));
    const storage = new HashKeyStorage(levels);
    const key = (await storage.write(Buffer.from('counted')))!;
    await new Disk(root).write(sha('only on disk'), { size: 12, path: null, stream: () => { throw new Error('unused'); }, bytes: async () => Buffer.from('only on disk'), verified: false });
    await storage.readBytes(key); // memory hit
    await storage.readBytes(sha('only on disk')); // memory miss, disk hit
    await storage.readBytes('0'.repeat(64), { error: false }); // two misses
    saveStats(storage, { embed: { hits: 7, misses: 3 } });

    const run = await cairn(['stats', '--json', '--lake', root]);
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout) as { levels: { name: string; hits: number; misses: number; bytes: number }[]; functions: Record<string, { hits: number; misses: number }> };
    expect(stats.levels).toEqual([
      { name: 'memory', hits: 1, misses: 2, bytes: 7, errors: 0 },
      { name: 'disk', hits: 1, misses: 1, bytes: 12, errors: 0 },
    ]);
    expect(stats.functions.embed).toMatchObject({ hits: 7, misses: 3 });
    const text = (await cairn(['stats', '--lake', root])).stdout;
    expect(text).toMatch(/memory\s+1\s+2\s+33\.3%/);
    expect(text).toMatch(/embed\s+7\s+3\s+70\.0%/);
  });
});

import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';
import { ProcessJournal } from '../../src/storage/embedded/journal.js';
import { type JournalRecord, tierRecordMeta } from '../../src/storage/tierkv/journal.js';
import { openSqlite } from '../../src/sqlite.js';
import { valueFor } from './values.js';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-durable-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Runs a child script; resolves with its exit code and every line it printed (read to the end). */
function run(script: string, args: string[], onLine?: (line: string) => void): { kill: () => void; done: Promise<{ code: number | null; lines: string[] }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      onLine?.(line);
    }
  });
  let code: number | null = null;
  child.on('exit', (exit) => (code = exit));
  const done = new Promise<{ code: number | null; lines: string[] }>((resolve) => child.on('close', () => resolve({ code, lines })));
  return { kill: () => child.kill('SIGKILL'), done };
}

/** Every file under a tier's folder, relative to it. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name).slice(dir.length + 1));
}

/** Blob files of a tier, and the blobs its SQLite rows name. */
function blobsOf(tierDir: string): { files: string[]; named: string[] } {
  const files = filesUnder(join(tierDir, 'blobs'))
    .filter((name) => !name.startsWith('tools') && !name.startsWith('.') && name !== 'config.yml')
    .map((name) => name.replaceAll('/', ''));
  const db = openSqlite(join(tierDir, 'tierkv.db'));
  try {
    const named = db.prepare('SELECT DISTINCT blob FROM entries WHERE blob IS NOT NULL').pluck().all() as string[];
    return { files: files.sort(), named: named.sort() };
  } finally {
    db.close();
  }
}

const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

describe('kill -9 at random moments', () => {
  for (const durability of ['process', 'power'] as const) {
    it(`keeps every acknowledged set and leaves no orphan blob, temp file or journal (durability '${durability}')`, async () => {
      const dir = folder();
      const latest = new Map<number, number>(); // entry j -> last acknowledged write i
      for (let attempt = 0; attempt < 3; attempt++) {
        const prefix = `K${attempt}`;
        let acks = 0;
        const stopAfter = 20 + Math.floor(Math.random() * 200);
        let killed = false;
        const child = run('child-killed.ts', [dir, prefix, '100000', durability], (line) => {
          const match = /^(\d+) (\d+)$/.exec(line);
          if (match) {
            latest.set(Number(match[1]) + attempt * 1_000_000, Number(match[2]));
            if (++acks >= stopAfter && !killed) {
              killed = true;
              child.kill();
            }
          }
        });
        const { code } = await child.done;
        expect(code).toBe(null); // killed, not finished
        const store = await TierKV.open({ name: 'killed', resources: [new ResourceMemory(), new ResourceFilesystem({ path: dir, durability })] });
        try {
          for (const [tagged, i] of latest) {
            if (Math.floor(tagged / 1_000_000) !== attempt) continue;
            const j = tagged % 1_000_000;
            const [value] = await store.getByKey(JSON.stringify([prefix, String(j)].sort()));
            expect(value, `entry ${j}`).toBeDefined();
            // the acknowledged value, or a later one for the same entry whose set was under way
            const candidates = [i, i + 1, i + 2, i + 3].filter((later) => (later % 3 === 2 ? later - 2 : later) === j);
            expect(candidates.some((later) => valueFor(prefix, later).equals(value!)), `entry ${j} holds write ${i} or later`).toBe(true);
          }
        } finally {
          await store.close();
        }
        const tierDir = join(dir, 'killed');
        const { files, named } = blobsOf(tierDir);
        expect(files).toEqual(named);
        expect(filesUnder(tierDir).filter((name) => name.endsWith('.tmp') || name.startsWith('journal') || name.startsWith('blobs/.tmp/'))).toEqual([]);
      }
    }, 120_000);
  }
});

it('reclaims orphans on open and in gc: unnamed blobs, and temp files of processes that no longer run', async () => {
  const dir = folder();
  const resources = () => [new ResourceFilesystem({ path: dir })];
  const big = randomBytes(100_000);
  const store = await TierKV.open({ name: 'o', resources: resources() });
  await store.set('kept', big);
  const tier = store.tiers[0]!;
  const plant = () => {
    const orphan = tier.disk.pathOf(randomBytes(32).toString('hex'));
    mkdirSync(join(orphan, '..'), { recursive: true });
    writeFileSync(orphan, 'never committed');
    const pid = deadPid();
    const tierTemp = `${tier.disk.pathOf(randomBytes(32).toString('hex'))}.${pid}.tmp`;
    mkdirSync(join(tierTemp, '..'), { recursive: true });
    writeFileSync(tierTemp, 'half');
    const diskTemp = join(tier.disk.root, '.tmp', `0123456789abcdef.${pid.toString(36)}a1b2c3.0`);
    writeFileSync(diskTemp, 'half');
    // a temp file of this (running) process may be a write in progress: left alone
    const ours = join(tier.disk.root, '.tmp', `0123456789abcdef.${process.pid.toString(36)}a1b2c3.1`);
    writeFileSync(ours, 'in progress');
    return [orphan, tierTemp, diskTemp, ours];
  };
  const [orphan, tierTemp, diskTemp, ours] = plant();
  expect(store.gc()).toEqual({ blobs: 1, tempFiles: 2, bytes: 'never committed'.length + 8 });
  for (const path of [orphan, tierTemp, diskTemp]) expect(existsSync(path!)).toBe(false);
  expect(existsSync(ours!)).toBe(true);
  rmSync(ours!);
  const again = plant();
  await store.close();
  await TierKV.with({ name: 'o', resources: resources() }, async (reopened) => {
    expect((await reopened.get('kept'))[0]!.equals(big)).toBe(true);
  });
  for (const path of again.slice(0, 3)) expect(existsSync(path!)).toBe(false);
  const { files, named } = blobsOf(join(dir, 'o'));
  expect(files).toEqual(named);
  expect(named).toHaveLength(1);
});

it('lets 4 processes replace and read values above the inline limit with no failed read', async () => {
  const dir = folder();
  const children = Array.from({ length: 4 }, (_, who) => run('child-replacer.ts', [dir, String(who), '60', '3']));
  const results = await Promise.all(children.map((child) => child.done));
  for (const { code, lines } of results) {
    expect(lines.join('\n')).toMatch(/^ok \d+$/m);
    expect(code).toBe(0);
  }
  await TierKV.with({ name: 'race', resources: [new ResourceFilesystem({ path: dir })] }, async (store) => {
    expect(await store.get('R')).toHaveLength(3);
  });
  const { files, named } = blobsOf(join(dir, 'race'));
  expect(files).toEqual(named); // replaced values' blobs were removed, and only those
}, 120_000);

describe('durability options', () => {
  it("refuses an fsync that contradicts durability, and keeps no journal with durability 'power'", async () => {
    expect(() => new ResourceFilesystem({ path: folder(), fsync: false, durability: 'power' })).toThrow(ConfigError);
    expect(() => new ResourceFilesystem({ path: folder(), durability: 'disk' as 'power' })).toThrow(ConfigError);
    expect(new ResourceFilesystem({ path: folder() }).fsync).toBe(false);
    expect(new ResourceFilesystem({ path: folder(), durability: 'power' }).fsync).toBe(true);
    const dir = folder();
    await TierKV.with({ name: 'p', resources: [new ResourceFilesystem({ path: dir, fsync: true })] }, async (store) => {
      await store.set('a', 'x');
      expect(existsSync(join(dir, 'p', 'journal'))).toBe(false);
    });
  });
});

it("replays a killed process's journal on open: its sets, never over a newer commit, never a cut-short record", async () => {
  const dir = folder();
  const options = () => ({ name: 'j', resources: [new ResourceFilesystem({ path: dir })] });
  await TierKV.with(options(), async (store) => {
    await store.set('X', 'newer, committed');
  });
  const journalDir = join(dir, 'j', 'journal');
  const processJournal = new ProcessJournal(journalDir);
    const journal = { append: (record: JournalRecord) => processJournal.append(tierRecordMeta(record), record.encoded), abandon: () => processJournal.abandon() };
  const record = (id: string, text: string, ver: number) => {
    const bytes = Buffer.from(text);
    return { id, key: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, codec: 'none', kind: 0, ver, encoded: bytes };
  };
  journal.append(record('["X"]', 'older, journaled', 1)); // acknowledged long before X's commit
  journal.append(record('["Y"]', 'journaled only', Date.now() * 1000));
  journal.abandon();
  const [name] = readdirSync(journalDir);
  const dead = join(journalDir, `${deadPid().toString(36)}.0a0b.log`);
  renameSync(join(journalDir, name!), dead);
  appendFileSync(dead, Buffer.from([40, 0, 0, 0, 5, 0, 0, 0, 91])); // a record cut short by the kill
  await TierKV.with(options(), async (store) => {
    expect(String((await store.get('X'))[0])).toBe('newer, committed');
    expect(String((await store.get('Y'))[0])).toBe('journaled only');
    expect(store.size).toBe(2);
  });
  expect(readdirSync(journalDir)).toEqual([]);
});

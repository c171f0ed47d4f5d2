import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
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
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-fold-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Rows of a tier's SQLite file: id, codec, stored bytes, plain size. */
function rowsOf(tierDir: string): { id: string; codec: string; stored: number; size: number }[] {
  const db = openSqlite(join(tierDir, 'tierkv.db'));
  try {
    return db.prepare('SELECT id, codec, stored, size FROM entries ORDER BY id').all() as { id: string; codec: string; stored: number; size: number }[];
  } finally {
    db.close();
  }
}

/** A compressible value: a repeated line. */
const compressible = (i: number) => Buffer.from(`value ${i} `.repeat(100));

describe("durability 'process': the journal is the store of record", () => {
  it('answers from sets acknowledged but not folded into SQLite yet, by tag and by content key, and folds them encoded', async () => {
    const dir = folder();
    const store = await TierKV.open({ name: 'f', resources: [new ResourceFilesystem({ path: dir, compression: 'gzip' })] });
    const tier = store.tiers[0]!;
    // no turn of the event loop between these: nothing is folded yet
    for (let i = 0; i < 50; i++) await store.set(['F', String(i)], compressible(i));
    await store.set(['F', '0'], compressible(1000)); // a replace while both are pending
    expect(rowsOf(join(dir, 'f'))).toEqual([]);
    expect((await store.get('F')).length).toBe(50);
    expect(String((await store.getByKey('["0","F"]'))[0])).toBe(String(compressible(1000)));
    const key = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
    expect(String(await tier.readBytes(key(compressible(7))))).toBe(String(compressible(7)));
    expect(await tier.readBytes(key(compressible(0)))).toBe(null); // replaced before it was folded
    expect(await tier.touch(key(compressible(1000)))).toBe(true);
    // two entries holding the same bytes, one of them replaced: the bytes are still found by key
    await store.set('twin-a', compressible(2000));
    await store.set('twin-b', compressible(2000));
    expect(String(await tier.readBytes(key(compressible(2000))))).toBe(String(compressible(2000)));
    await store.set('twin-b', compressible(2001)); // the later of the two: the one a by-key look-up found
    expect(String(await tier.readBytes(key(compressible(2000))))).toBe(String(compressible(2000)));
    await store.deleteTagged(['twin-a', 'twin-b']);
    await new Promise((resolve) => setImmediate(resolve)); // idle: folded
    const rows = rowsOf(join(dir, 'f'));
    expect(rows).toHaveLength(50);
    for (const row of rows) {
      expect(row.codec).toBe('gzip'); // encoded at the fold, not on the set's path
      expect(row.stored).toBeLessThan(row.size);
    }
    await store.close();
    await TierKV.with({ name: 'f', resources: [new ResourceFilesystem({ path: dir, compression: 'gzip' })] }, async (again) => {
      expect(String((await again.getByKey('["0","F"]'))[0])).toBe(String(compressible(1000)));
      expect(String((await again.getByKey('["49","F"]'))[0])).toBe(String(compressible(49)));
    });
  });

  it('replays journaled plain bytes into a compressing tier encoded, and verified', async () => {
    const dir = folder();
    const options = () => ({ name: 'r', resources: [new ResourceFilesystem({ path: dir, compression: true })] });
    await TierKV.with(options(), async () => {});
    const journalDir = join(dir, 'r', 'journal');
    const processJournal = new ProcessJournal(journalDir);
    const journal = { append: (record: JournalRecord) => processJournal.append(tierRecordMeta(record), record.encoded), abandon: () => processJournal.abandon() };
    const plain = compressible(5);
    const key = createHash('sha256').update(plain).digest('hex');
    journal.append({ id: '["P"]', key, size: plain.length, codec: 'none', kind: 0, ver: Date.now() * 1000, encoded: plain });
    journal.append({ id: '["Q"]', key, size: plain.length, codec: 'none', kind: 0, ver: Date.now() * 1000 + 1, encoded: Buffer.from('not the bytes of the key') });
    journal.abandon();
    const [name] = readdirSync(journalDir);
    renameSync(join(journalDir, name!), join(journalDir, `${spawnSync(process.execPath, ['-e', '0']).pid!.toString(36)}.0c0d.log`));
    await TierKV.with(options(), async (store) => {
      expect(String((await store.get('P'))[0])).toBe(String(plain));
      expect(await store.get('Q')).toEqual([]); // damaged in the journal: never returned
    });
    const rows = rowsOf(join(dir, 'r'));
    expect(rows.map((row) => [row.id, row.codec])).toEqual([['["P"]', 'lz4']]);
  });
});

/** Runs child-exit.ts; resolves with its exit code, signal and output. */
function runChild(dir: string, count: number, ending: 'exit' | 'throw' | 'signal', signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'child-exit.ts'), dir, String(count), ending], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (signal && out.includes(`acked ${count}\n`)) child.kill(signal);
  });
  child.stderr!.resume();
  return new Promise((resolve) => child.on('close', (code, sig) => resolve({ code, signal: sig, out })));
}

describe("durability 'exit' (the seed's semantics)", () => {
  it('is an option, and takes no journal', async () => {
    expect(new ResourceFilesystem({ path: folder(), durability: 'exit' }).durability).toBe('exit');
    expect(() => new ResourceFilesystem({ path: folder(), durability: 'exit', fsync: true })).toThrow(ConfigError);
    const dir = folder();
    await TierKV.with({ name: 'x', resources: [new ResourceFilesystem({ path: dir, durability: 'exit' })] }, async (store) => {
      await store.set('a', 'x');
      expect(readdirSync(join(dir, 'x'))).not.toContain('journal');
    });
    await TierKV.with({ name: 'x', resources: [new ResourceFilesystem({ path: dir, durability: 'exit' })] }, async (store) => {
      expect(String((await store.get('a'))[0])).toBe('x');
    });
  });

  const endings = [
    ['process.exit() with the store open', 'exit', undefined, 3, null],
    ['an uncaught error', 'throw', undefined, 1, null],
    ['SIGTERM', 'signal', 'SIGTERM', null, 'SIGTERM'],
    ['SIGINT', 'signal', 'SIGINT', null, 'SIGINT'],
  ] as const;
  for (const [what, ending, signal, code, endSignal] of endings) {
    it(`saves every set when the process ends by ${what}`, async () => {
      const dir = folder();
      const count = 300;
      const result = await runChild(dir, count, ending, signal);
      expect(result.out).toContain(`acked ${count}`);
      expect([result.code, result.signal]).toEqual([code, endSignal]); // the process ended as it would have without the store
      await TierKV.with({ name: 'exit', resources: [new ResourceMemory(), new ResourceFilesystem({ path: dir, durability: 'exit', compression: true })] }, async (store) => {
        expect(store.size).toBe(count);
        for (const i of [0, 7, 150, count - 1]) expect((await store.getByKey(JSON.stringify([String(i), 'E'].sort())))[0]!.equals(valueFor('E', i))).toBe(true);
      });
    }, 60_000);
  }
});

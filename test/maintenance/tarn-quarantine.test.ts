/**
 * What `cairn verify` sets aside stays out of Python tarn's walk: its `contents()` globs the
 * layout's depth from the root and parses every path as hex, skipping only `tools/` and `.tmp/`.
 * Run against real tarn (see python-tarn.ts for where it is found).
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { gc } from '../../src/storage/maintenance/gc.js';
import { saveStats } from '../../src/storage/maintenance/stats.js';
import { verify } from '../../src/storage/maintenance/verify.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { tarnContents } from './python-tarn.js';

afterAll(cleanup);

const sha = (bytes: string) => createHash('sha256').update(bytes).digest('hex');

describe('a lake verified by cairn, listed by Python tarn', () => {
  it('tarn lists the good blobs and never sees the quarantined one, nor saved counters', async () => {
    const root = tempDir();
    const disk = new Disk(root);
    const storage = new HashKeyStorage(disk);
    const keys = [];
    for (const text of ['one', 'two', 'three']) keys.push((await storage.write(Buffer.from(text)))!);
    // damage "two" in place
    const file = disk.pathOf(keys[1]!);
    chmodSync(file, 0o644);
    writeFileSync(file, 'TWO?');
    const report = await verify(storage);
    expect(report.bad.map((bad) => bad.key)).toEqual([keys[1]]);
    expect(report.bad[0]!.movedTo!.startsWith(join(root, 'tools', 'quarantine'))).toBe(true);
    saveStats(storage);
    await storage.close();
    expect((await tarnContents(root)).sort()).toEqual([keys[0], keys[2]].sort());
  });

  it('gc moves what an older cairn left in .quarantine/ (where tarn fails) into tools/quarantine/', async () => {
    const root = tempDir();
    const storage = new HashKeyStorage(root);
    const key = (await storage.write(Buffer.from('kept')))!;
    mkdirSync(join(root, '.quarantine'));
    writeFileSync(join(root, '.quarantine', `${sha('x')}.1700000000000.abcdef`), 'bad bytes');
    await expect(tarnContents(root)).rejects.toThrow(/fromhex/);
    await gc(storage, {});
    await storage.close();
    expect(existsSync(join(root, '.quarantine'))).toBe(false);
    expect(readdirSync(join(root, 'tools', 'quarantine'))).toEqual([`${sha('x')}.1700000000000.abcdef`]);
    expect(await tarnContents(root)).toEqual([key]);
  });
});

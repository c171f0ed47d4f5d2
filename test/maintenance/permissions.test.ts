import { chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { cairn } from '../cli/run.js';

afterAll(cleanup);

// the `users` group (gid 100 on Debian) and the `nobody` user stand for a lab's group and a colleague
const GROUP = 'users';
const GID = 100;
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

describe.runIf(asRoot)('group-shared lakes', () => {
  it('`cairn init --group` makes a setgid, group-writable lake; every write keeps the group', async () => {
    const lake = join(tempDir(), 'shared');
    const init = await cairn(['init', lake, '--group', GROUP]);
    expect(init.code).toBe(0);
    const root = statSync(lake);
    expect(root.gid).toBe(GID);
    expect(root.mode & 0o7777).toBe(0o2775);

    // a later process opens it without options: the group settings come from the root folder
    const storage = new HashKeyStorage(lake);
    const key = (await storage.write(Buffer.from('shared value'), { labels: ['lab'] }))!;
    const blob = statSync(new Disk(lake).pathOf(key));
    expect(blob.gid).toBe(GID);
    expect(blob.mode & 0o777).toBe(0o444); // blobs stay read-only
    const folder = statSync(join(lake, key.slice(0, 2)));
    expect([folder.gid, folder.mode & 0o7777]).toEqual([GID, 0o2775]);
    const mark = statSync(join(lake, 'tools', 'usage', key.slice(0, 2), key.slice(2)));
    // marks and labels have tarn's mode, 0777: tarn touches a mark on every read, as any user
    expect([mark.gid, mark.mode & 0o777]).toEqual([GID, 0o777]);
    const labels = statSync(join(lake, 'tools', 'labels', key.slice(0, 2), key.slice(2) + '.json'));
    expect([labels.gid, labels.mode & 0o777]).toEqual([GID, 0o777]);
    for (const dir of ['tools', 'tools/usage', 'tools/labels', '.tmp']) {
      expect(statSync(join(lake, dir)).mode & 0o7777, dir).toBe(0o2775);
    }
  });

  it('a large value written through a stream gets the group too (CLI --group on write)', async () => {
    const lake = join(tempDir(), 'lake');
    expect((await cairn(['init', lake, '--quiet'])).code).toBe(0); // only init makes a lake
    const written = await cairn(['write', '-', '--lake', lake, '--group', GROUP], { input: Buffer.alloc(3_000_000, 7) });
    expect(written.code).toBe(0);
    const key = written.stdout.trim();
    expect(statSync(new Disk(lake).pathOf(key)).gid).toBe(GID);
  });

  it("never changes a folder another user owns", async () => {
    const lake = tempDir();
    mkdirSync(join(lake, 'tools'), { mode: 0o755 });
    chownSync(join(lake, 'tools'), NOBODY, NOBODY);
    chownSync(lake, NOBODY, NOBODY);
    const storage = new HashKeyStorage(new Disk(lake, { group: GROUP, groupWritable: true }));
    const key = (await storage.write(Buffer.from('mine')))!;
    // the colleague's folders keep their owner, group and mode
    const theirs = statSync(join(lake, 'tools'));
    expect([theirs.uid, theirs.gid, theirs.mode & 0o7777]).toEqual([NOBODY, NOBODY, 0o755]);
    const root = statSync(lake);
    expect([root.uid, root.gid]).toEqual([NOBODY, NOBODY]);
    // what this process created is shared
    expect(statSync(join(lake, 'tools', 'usage')).mode & 0o7777).toBe(0o2770); // the root's 0700, plus group rwx and setgid
    expect(statSync(new Disk(lake).pathOf(key)).gid).toBe(GID);
  });
});

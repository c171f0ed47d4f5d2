/**
 * The local-filesystem transport (src/locations/disk/local-files.ts) under the lake core: the
 * conformance suite and tarn's old folder blobs, through LakeLocation as SFTP and SCP are tested.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalFiles } from '../../src/locations/disk/local-files.js';
import { Owner } from '../../src/locations/disk/disk-owner.js';
import { LakeLocation } from '../../src/locations/lake/lake-location.js';
import { bytesSource, expectStored, locationConformance, sha256, streamSource } from '../conformance.js';
import { expectFolderBlobHandled } from '../helpers/lake-transport.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const roots = new WeakMap<object, string>();

function overLocalFiles(root: string, syncSmallIo = true): LakeLocation {
  const owner = new Owner({ gid: null, shared: false, dirMode: 0o755 });
  const lake = new LakeLocation(`Local(${root})`, new LocalFiles(root, `Local(${root})`, { owner, fileMode: 0o444, fsync: true, syncSmallIo }));
  roots.set(lake, root);
  return lake;
}

for (const syncSmallIo of [true, false]) {
  locationConformance({
    name: `LakeLocation over LocalFiles (syncSmallIo: ${syncSmallIo})`,
    create: () => overLocalFiles(tempDir(), syncSmallIo),
    corrupt: async (location, key) => {
      const file = join(roots.get(location)!, key.slice(0, 2), key.slice(2));
      chmodSync(file, 0o644);
      writeFileSync(file, 'not the bytes of the key');
    },
  });
}

/** A lake whose owner declines values over `limit` bytes and counts what is stored and deleted, as a Disk's limits do. */
class Counted extends LakeLocation {
  readonly told: string[] = [];
  constructor(root: string, limit: number) {
    const owner = new Owner({ gid: null, shared: false, dirMode: 0o755 });
    super(`Counted(${root})`, new LocalFiles(root, `Counted(${root})`, { owner, fileMode: 0o444, fsync: false, syncSmallIo: true }));
    this.hooks = {
      admit: async (size) => size !== null && size <= limit,
      stored: async (size, replaced) => void this.told.push(`stored ${size} for ${replaced}`),
      removed: async (size) => void this.told.push(`removed ${size}`),
    };
  }
}

describe('LocalFiles under LakeLocation', () => {
  it("asks the owner's hooks before a new blob and tells them what was stored and deleted", async () => {
    const root = tempDir();
    const lake = new Counted(root, 5000);
    const small = randomBytes(3000);
    const large = randomBytes(6000);
    await expectStored(lake.write(sha256(small), bytesSource(small)), sha256(small), small);
    expect(await lake.write(sha256(large), bytesSource(large))).toBeNull();
    expect(await lake.has(sha256(large))).toBe(false);
    // a value already stored is not new: neither asked nor counted again
    await expectStored(lake.write(sha256(small), bytesSource(small)), sha256(small), small);
    // a corrupted blob is replaced, and counted as a replacement
    const file = join(root, sha256(small).slice(0, 2), sha256(small).slice(2));
    chmodSync(file, 0o644);
    writeFileSync(file, 'corrupted');
    await expectStored(lake.write(sha256(small), bytesSource(small)), sha256(small), small);
    expect(await lake.delete(sha256(small))).toBe(true);
    expect(await lake.delete(sha256(small))).toBe(false);
    expect(lake.told).toEqual(['stored 3000 for 0', 'stored 3000 for 9', 'removed 3000']);
  });


  it('reads, keeps and deletes a folder blob of an old tarn lake', async () => {
    const root = tempDir();
    await expectFolderBlobHandled(overLocalFiles(root), root);
  });

  it('publishes read-only blobs through .tmp/ and leaves no temp file, small or streamed', async () => {
    const root = tempDir();
    const lake = overLocalFiles(root);
    const small = randomBytes(4096);
    const large = randomBytes(300_000);
    await expectStored(lake.write(sha256(small), bytesSource(small)), sha256(small), small);
    await expectStored(lake.write(sha256(large), streamSource(large)), sha256(large), large);
    for (const bytes of [small, large]) {
      const key = sha256(bytes);
      expect(statSync(join(root, key.slice(0, 2), key.slice(2))).mode & 0o777).toBe(0o444);
    }
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });
});

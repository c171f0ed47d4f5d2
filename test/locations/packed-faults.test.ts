import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocationError, Packed } from '../../src/index.js';
import { bytesSource, sha256 } from '../conformance.js';

/** A tmpfs of `size` mounted on a new folder (the tests run as root, as disk-errors.test.ts does). */
async function tmpfs(size: string): Promise<{ dir: string; resize(size: string): Promise<void>; unmount(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-packed-full-'));
  const sh = (args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn('mount', args, { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`mount ${args.join(' ')} exited ${code}`))));
    });
  await sh(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  return {
    dir,
    resize: (bigger) => sh(['-o', `remount,size=${bigger}`, dir]),
    unmount: async () => {
      await new Promise<void>((resolve, reject) => spawn('umount', [dir], { stdio: 'ignore' }).on('close', (code) => (code === 0 ? resolve() : reject(new Error(`umount exited ${code}`)))));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('Packed on a full disk', () => {
  for (const fsync of [true, false]) {
    it(`fails a write with ERR_NO_SPACE and keeps every write acknowledged before (fsync: ${fsync})`, async () => {
      const mount = await tmpfs('2m');
      const opened: Packed[] = [];
      try {
        const dir = join(mount.dir, 'small');
        const packed = new Packed(dir, { fsync });
        opened.push(packed);
        const stored: Buffer[] = [];
        let failure: unknown = null;
        for (let i = 0; i < 2000 && failure === null; i++) {
          const bytes = randomBytes(4096);
          await packed.write(sha256(bytes), bytesSource(bytes)).then(
            () => stored.push(bytes),
            (error: unknown) => (failure = error),
          );
        }
        expect(failure).toBeInstanceOf(LocationError);
        expect((failure as LocationError).code).toBe('ERR_NO_SPACE');
        expect(stored.length).toBeGreaterThan(20); // (each commit appends its 16 KiB pages to the WAL)
        for (const bytes of stored) expect((await packed.readBytes(sha256(bytes)))!.equals(bytes)).toBe(true);
        // a commit that failed keeps its journal (and says so at close); with room again, the next open has everything
        await packed.close().catch(() => {});
        await mount.resize('32m');
        const reopened = new Packed(dir, { fsync });
        opened.push(reopened);
        for (const bytes of stored) expect((await reopened.readBytes(sha256(bytes)))!.equals(bytes)).toBe(true);
        await reopened.close();
      } finally {
        for (const packed of opened) await packed.close().catch(() => {}); // the files must be closed to unmount
        await mount.unmount();
      }
    });
  }
});

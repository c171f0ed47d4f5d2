/**
 * Disk failures a user meets on shared machines, each a typed error (never a raw EACCES, ENOENT
 * or ENOSPC): another user's lake, a read-only mount, a full disk, a value deleted while read.
 * Read-only access is enough to read. Runs as root (tmpfs mounts, the `nobody` user).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { CairnError, Disk, HashKeyStorage, LocationError } from '../../src/index.js';
import { ResourceFilesystem, TierKV } from '../../src/storage/tierkv/index.js';
import { bytesSource, sha256 } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { CAIRN } from '../cli/run.js';

afterAll(cleanup);

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

interface Run {
  code: number | null;
  stdout: string;
  bytes: Buffer;
  stderr: string;
}

/** Runs `cairn` as another user (`nobody`). */
function cairnAs(uid: number, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CAIRN, ...args], { uid, gid: uid, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString(), bytes: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
  });
}

/** A folder others can enter (mkdtemp makes 0700 ones). */
function openFolder(): string {
  const dir = tempDir();
  chmodSync(dir, 0o755);
  return dir;
}

/** A small tmpfs, unmounted (and removed) by `unmount`. */
async function tmpfs(size: string): Promise<{ dir: string; remount(options: string): Promise<void>; unmount(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-tmpfs-'));
  const sh = (command: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(command, args, { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}`))));
    });
  await sh('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  return {
    dir,
    remount: (options) => sh('mount', ['-o', `remount,${options}`, dir]),
    unmount: async () => {
      await sh('umount', [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Last used ten days ago: `gc --older-than 7d` removes it. */
function makeOld(lake: string, key: string): void {
  const when = new Date(Date.now() - 10 * 86_400_000);
  utimesSync(join(lake, 'tools', 'usage', key.slice(0, 2), key.slice(2)), when, when);
}

describe('Disk: a value deleted between read() and its bytes', () => {
  it('bytes() and stream() fail with a typed LocationError', async () => {
    const disk = new Disk(tempDir());
    const bytes = randomBytes(3000);
    const key = sha256(bytes);
    await disk.write(key, bytesSource(bytes));
    const value = (await disk.read(key))!;
    expect(await disk.delete(key)).toBe(true);
    const fromBytes = await value.bytes().then(() => null, (e: unknown) => e);
    expect(fromBytes).toBeInstanceOf(LocationError);
    expect((fromBytes as LocationError).code).toBe('ERR_VANISHED');
    const fromStream = await (async () => {
      for await (const _ of value.stream()) void _;
    })().then(() => null, (e: unknown) => e);
    expect(fromStream).toBeInstanceOf(LocationError);
    expect((fromStream as LocationError).code).toBe('ERR_VANISHED');
  });
});

describe.runIf(asRoot)('Disk: another user, a read-only mount, a full disk', () => {
  it("another user reads a lake without .tmp/ (a tarn or copied lake); what needs writing is ERR_PERMISSION", async () => {
    const lake = join(openFolder(), 'lake');
    const storage = new HashKeyStorage(lake);
    const bytes = randomBytes(5000);
    const key = (await storage.write(bytes))!;
    await storage.close();
    rmSync(join(lake, '.tmp'), { recursive: true });
    makeOld(lake, key);

    const read = await cairnAs(NOBODY, ['read', key, '--lake', lake]);
    expect(read.stderr).toBe('');
    expect(read.code).toBe(0);
    expect(read.bytes.equals(bytes)).toBe(true);
    const listed = await cairnAs(NOBODY, ['ls', '--lake', lake]);
    expect(listed.stdout).toContain(key);
    const verify = await cairnAs(NOBODY, ['verify', '--lake', lake]);
    expect(verify.stderr).not.toMatch(/Error: E[A-Z]+/);
    expect(verify.stdout + verify.stderr).toMatch(/1 blob|ERR_PERMISSION/);
    const gc = await cairnAs(NOBODY, ['gc', '--older-than', '7d', '--lake', lake]);
    expect(gc.code).toBe(1);
    expect(gc.stderr).toContain('ERR_PERMISSION');
    expect(gc.stderr).not.toMatch(/^Error: E[A-Z]+/m);
    const write = await cairnAs(NOBODY, ['write', CAIRN, '--lake', lake]);
    expect(write.code).toBe(1);
    expect(write.stderr).toContain('ERR_PERMISSION');
  });

  it('a read-only mount without .tmp/: reads work; a write and gc are ERR_READ_ONLY; verify prints no raw error', async () => {
    const mount = await tmpfs('8m');
    try {
      const lake = join(mount.dir, 'lake');
      const storage = new HashKeyStorage(lake);
      const key = (await storage.write(randomBytes(4000)))!;
      await storage.close();
      rmSync(join(lake, '.tmp'), { recursive: true });
      makeOld(lake, key);
      await mount.remount('ro');
      const disk = new Disk(lake);
      expect((await disk.readBytes(key))!.length).toBe(4000);
      expect((await (await disk.read(key))!.bytes()).length).toBe(4000);
      const write = await disk.write(sha256(Buffer.from('new')), bytesSource(Buffer.from('new'))).then((r) => r, (e: unknown) => e);
      expect(write).toBeInstanceOf(LocationError);
      expect((write as LocationError).code).toBe('ERR_READ_ONLY');
      await disk.close();
      const gc = await cairnAs(0, ['gc', '--older-than', '7d', '--lake', lake]);
      expect(gc.code).toBe(1);
      expect(gc.stderr).toMatch(/ERR_READ_ONLY/);
      const verify = await cairnAs(0, ['verify', '--lake', lake]);
      expect(verify.stderr).not.toMatch(/^Error: E[A-Z]+/m);
    } finally {
      await mount.unmount();
    }
  });

  it('a full disk is ERR_NO_SPACE, for bytes and for a staged stream', async () => {
    const mount = await tmpfs('2m');
    try {
      const storage = new HashKeyStorage(join(mount.dir, 'lake'));
      const stream = await storage.write(Readable.from([randomBytes(1024 * 1024), randomBytes(1024 * 1024), randomBytes(1024 * 1024)])).then(() => null, (e: unknown) => e);
      expect(stream).toBeInstanceOf(LocationError);
      expect((stream as LocationError).code).toBe('ERR_NO_SPACE');
      const bytes = await storage.write(randomBytes(3 * 1024 * 1024)).then(() => null, (e: unknown) => e);
      expect((bytes as LocationError).code).toMatch(/ERR_NO_SPACE|ERR_WRITE_DECLINED/);
      await storage.close();
    } finally {
      await mount.unmount();
    }
  });

  it("a full disk under TierKV's SQLite file and blobs is ERR_NO_SPACE", async () => {
    const mount = await tmpfs('2m');
    try {
      let failure: unknown = null;
      await TierKV.with({ name: 'full', resources: [new ResourceFilesystem({ path: join(mount.dir, 'kv') })] }, async (store) => {
        // small values go into the SQLite file, larger ones beside it: both fill the 2 MB
        for (let i = 0; i < 400 && failure === null; i++) {
          await store.set(['v', String(i)], randomBytes(i % 2 === 0 ? 3000 : 30_000)).catch((error: unknown) => (failure = error));
        }
      }).catch((error: unknown) => (failure ??= error));
      // TierKV sees its only tier full before SQLite does (OutOfResourcesError), or SQLite hits ENOSPC
      // first (a LocationError): either way a typed "full", never ERR_LOCATION
      expect(failure).toBeInstanceOf(CairnError);
      expect(['ERR_OUT_OF_RESOURCES', 'ERR_NO_SPACE']).toContain((failure as CairnError).code);
    } finally {
      await mount.unmount();
    }
  });
});

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HashKeyStorage, Memory } from '../../src/index.js';
import { HOST_TAG, PROCESS_TAG } from '../../src/locations/disk/disk-liveness.js';
import { privateStagingDir } from '../../src/storage/stage.js';

/** The staged files of this process in the private staging folder. */
function ours(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes(PROCESS_TAG));
}

describe('staging a stream for a storage without a local folder', () => {
  it('stages in a folder only this user may enter, readable by the owner only, removed afterwards; leftovers of killed processes go', async () => {
    const dead = spawn(process.execPath, ['-e', '']);
    const pid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
    const dir = join(tmpdir(), `cairn-stage-${process.getuid!()}`);
    // what a process killed while staging left (before this process first stages: it then sweeps)
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const left = join(dir, `stage.${pid.toString(36)}-${HOST_TAG}-abcdef.0123`);
    writeFileSync(left, 'a value of a killed process');
    const storage = new HashKeyStorage(new Memory());
    let seen: { dirMode: number; fileMode: number } | null = null;
    const chunks = async function* () {
      yield Buffer.alloc(1 << 20, 1);
      // the first chunk is on disk by now: look at the staged file
      const [name] = ours(dir);
      seen = { dirMode: statSync(dir).mode & 0o777, fileMode: statSync(join(dir, name!)).mode & 0o777 };
      yield Buffer.alloc(1 << 20, 2);
    };
    const key = await storage.write(Readable.from(chunks()));
    expect(seen).toEqual({ dirMode: 0o700, fileMode: 0o400 });
    expect((await storage.readBytes(key!))?.length).toBe(2 << 20);
    expect(ours(dir)).toEqual([]);
    expect(existsSync(left)).toBe(false);
    expect(await privateStagingDir()).toBe(dir);
  });
});

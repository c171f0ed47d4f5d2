/**
 * A full disk on the SSH server is LocationError ERR_NO_SPACE for SFTP (whose protocol only says
 * "failure": the location asks the server's free space) and SCP (the server's message), and the
 * failed write leaves nothing behind. The remote lake lives on a 2 MiB tmpfs (the tests run as root).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocationError } from '../../src/errors.js';
import { SCP } from '../../src/locations/ssh/scp.js';
import { SFTP } from '../../src/locations/ssh/sftp.js';
import { bytesSource, sha256 } from '../conformance.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

let server: Sshd;
let mount: string;

function run(command: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}`))));
  });
}

beforeAll(async () => {
  server = await startSshd();
  mount = mkdtempSync(join(server.dir, 'small-disk-'));
  await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
});
afterAll(async () => {
  if (mount) {
    await run('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
  await server?.close();
});

describe('SSH: a full disk on the server', () => {
  for (const Kind of [SFTP, SCP]) {
    it(`${Kind.name}: a write that does not fit is ERR_NO_SPACE, leaves no temp file, and a small one still fits`, async () => {
      const root = join(mount, Kind.name);
      const remote = new Kind(server.host, root, {
        port: server.port,
        username: server.username,
        privateKey: server.privateKey,
        knownHosts: server.knownHosts,
        timeoutMs: 20_000,
      });
      const large = randomBytes(3 * 1024 * 1024);
      const failure = await remote.write(sha256(large), bytesSource(large)).then(() => null, (error: unknown) => error);
      expect(failure).toBeInstanceOf(LocationError);
      expect((failure as LocationError).code).toBe('ERR_NO_SPACE');
      expect(readdirSync(join(root, '.tmp'))).toEqual([]);
      const small = randomBytes(1000);
      await remote.write(sha256(small), bytesSource(small));
      expect((await remote.readBytes(sha256(small)))!.equals(small)).toBe(true);
      await remote.close();
    });
  }
});

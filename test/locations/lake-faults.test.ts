/**
 * The conformance suite's fault part for the lake locations: over SSH, sshd stopped (its sessions
 * killed) and started again, hung through a proxy that takes connections and answers nothing, and
 * a blob corrupted on the server's disk; Nginx (read-only) likewise, its values put in place by a
 * Disk on the served folder.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import { Disk, type Location } from '../../src/index.js';
import { Nginx } from '../../src/locations/http/nginx.js';
import { SCP } from '../../src/locations/ssh/scp.js';
import { SFTP } from '../../src/locations/ssh/sftp.js';
import { bytesSource, expectStored } from '../conformance.js';
import { locationFaults } from '../conformance-faults.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { type FaultProxy, startFaultProxy } from '../servers/fault-proxy.js';
import { startNginx, type NginxServer } from '../servers/nginx.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

afterAll(cleanup);

/** Flips the first byte of a blob file (read-only, as lakes write them). */
function corruptFile(file: string): void {
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[0] = bytes[0]! ^ 0xff;
  writeFileSync(file, bytes);
}

const TIMEOUT_MS = 2000;
/** Each SCP command starts a shell on the server (its startup files too), which takes seconds on a loaded machine. */
const SCP_TIMEOUT_MS = 5000;
const RETRY = { attempts: 2, baseDelayMs: 50 };

for (const Kind of [SFTP, SCP]) {
  const timeoutMs = Kind === SCP ? SCP_TIMEOUT_MS : TIMEOUT_MS;
  describe(`${Kind.name} faults`, () => {
    let server: Sshd;
    let proxy: FaultProxy;
    let lakes = 0;
    beforeAll(async () => {
      server = await startSshd();
      proxy = await startFaultProxy(server.port);
    });
    afterAll(async () => {
      await proxy?.close();
      await server?.close();
    });

    locationFaults({
      name: Kind.name,
      create: () =>
        new Kind(server.host, join(server.dir, `faults-${++lakes}`), {
          port: proxy.port,
          username: server.username,
          privateKey: server.privateKey,
          hostKeyFingerprint: server.fingerprint,
          timeoutMs,
          retry: RETRY,
        }),
      timeoutMs,
      stop: () => server.stop(),
      start: () => server.start(),
      hang: () => proxy.hang(),
      resume: () => proxy.resume(),
      corrupt: async (location: Location, key: string) => corruptFile(await (location as SFTP | SCP).pathOf(key)),
      destroy: (location) => (location as SFTP | SCP).close(),
    });
  });
}

describe('Nginx faults', () => {
  const root = tempDir('cairn-nginx-faults-');
  let server: NginxServer;
  let proxy: FaultProxy;
  let lakes = 0;
  /** The Disk lake each Nginx location serves: its values are put there. */
  const served = new Map<Location, Disk>();
  beforeAll(async () => {
    server = await startNginx(root);
    proxy = await startFaultProxy(server.port);
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  locationFaults({
    name: 'Nginx',
    readOnly: true,
    labels: false,
    create: () => {
      const folder = `faults-${++lakes}`;
      const lake = new Disk(join(root, folder));
      const location = new Nginx(`http://127.0.0.1:${proxy.port}/lake/${folder}/`, { timeoutMs: TIMEOUT_MS, retry: RETRY });
      served.set(location, lake);
      return location;
    },
    seed: async (location, key, bytes) => {
      await expectStored(served.get(location)!.write(key, bytesSource(bytes)), key);
    },
    timeoutMs: TIMEOUT_MS,
    stop: () => server.stop(),
    start: () => server.start(),
    hang: () => proxy.hang(),
    resume: () => proxy.resume(),
    corrupt: async (location, key) => corruptFile(served.get(location)!.pathOf(key)),
    destroy: (location) => (location as Nginx).close(),
  });
});

/**
 * The conformance suite's fault part for the lake locations over SSH: sshd killed and started
 * again (stop/start), hung through a proxy that takes connections and answers nothing, and a blob
 * corrupted on the server's disk.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe } from 'vitest';
import type { Location } from '../../src/index.js';
import { SCP } from '../../src/locations/ssh/scp.js';
import { SFTP } from '../../src/locations/ssh/sftp.js';
import { locationFaults } from '../conformance-faults.js';
import { type FaultProxy, startFaultProxy } from '../servers/fault-proxy.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

const TIMEOUT_MS = 2000;
const RETRY = { attempts: 2, baseDelayMs: 50 };

for (const Kind of [SFTP, SCP]) {
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
          timeoutMs: TIMEOUT_MS,
          retry: RETRY,
        }),
      timeoutMs: TIMEOUT_MS,
      stop: () => server.stop(),
      start: () => server.start(),
      hang: () => proxy.hang(),
      resume: () => proxy.resume(),
      corrupt: async (location: Location, key: string) => {
        const file = await (location as SFTP | SCP).pathOf(key);
        chmodSync(file, 0o644);
        const bytes = readFileSync(file);
        bytes[0] = bytes[0]! ^ 0xff;
        writeFileSync(file, bytes);
      },
      destroy: (location) => (location as SFTP | SCP).close(),
    });
  });
}

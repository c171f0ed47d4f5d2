import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Disk, type Location } from '../../src/index.js';
import { AuthenticationError } from '../../src/errors.js';
import { SCP } from '../../src/locations/ssh/scp.js';
import { bytesSource, locationConformance, sha256, streamSource, expectStored } from '../conformance.js';
import { expectAtomicWrite } from '../helpers/atomic-write.js';
import { expectFolderBlobHandled } from '../helpers/lake-transport.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

let server: Sshd;
let counter = 0;

beforeAll(async () => {
  server = await startSshd({ passwordAuth: true });
});
afterAll(async () => {
  await server?.close();
});

function remoteRoot(): string {
  return join(server.dir, `scp-lake-${++counter}`);
}

function connect(root: string, extra: ConstructorParameters<typeof SCP>[2] = {}): SCP {
  return new SCP(server.host, root, {
    port: server.port,
    username: server.username,
    privateKey: server.privateKey,
    knownHosts: server.knownHosts,
    timeoutMs: 10_000,
    ...extra,
  });
}

async function corruptRemote(location: Location, key: string): Promise<void> {
  const file = await (location as SCP).pathOf(key);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
  writeFileSync(file, bytes);
}

locationConformance({
  name: 'SCP',
  create: () => connect(remoteRoot()),
  destroy: (location) => (location as SCP).close(),
  corrupt: corruptRemote,
});

describe('SCP', () => {
  it('refuses an unknown host key with ERR_HOST_KEY, accepts the right fingerprint', async () => {
    const empty = join(server.dir, 'scp_empty_known_hosts');
    writeFileSync(empty, '# nothing\n');
    const refused = connect(remoteRoot(), { knownHosts: empty });
    const error = await refused.read(sha256(Buffer.from('x'))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).code).toBe('ERR_HOST_KEY');
    await refused.close();
    const pinned = connect(remoteRoot(), { knownHosts: empty, hostKeyFingerprint: server.fingerprint });
    expect(await pinned.read(sha256(Buffer.from('x')))).toBeNull();
    await pinned.close();
  });

  it('fails with AuthenticationError (ERR_AUTH) for a wrong password', async () => {
    const scp = connect(remoteRoot(), { privateKey: undefined, password: 'wrong' });
    await expect(scp.read(sha256(Buffer.from('x')))).rejects.toMatchObject({ name: 'AuthenticationError', code: 'ERR_AUTH' });
    await scp.close();
  });

  it('honours an existing lake layout (levels [2, -1]) and shares it with Disk', async () => {
    const root = remoteRoot();
    new Disk(root, { levels: [2, -1] });
    const scp = connect(root);
    const bytes = randomBytes(70_000);
    const key = sha256(bytes);
    await expectStored(scp.write(key, streamSource(bytes), ['x']), key);
    expect(readFileSync(join(root, key.slice(0, 4), key.slice(4))).equals(bytes)).toBe(true);
    expect(await (await new Disk(root).read(key))!.labels()).toEqual(['x']);
    const listed: string[] = [];
    for await (const entry of scp.contents()) listed.push(entry.key);
    expect(listed).toEqual([key]);
    await scp.close();
  });

  it('writes atomically through .tmp and leaves nothing there, even for a bad copy', async () => {
    const root = remoteRoot();
    const scp = connect(root);
    await expectAtomicWrite(scp, root, 400_000);
    await scp.close();
  });

  it("creates last-used marks and labels with tarn's modes (0777, their prefix folders too), and replaces a corrupted large blob", async () => {
    const root = remoteRoot();
    const scp = connect(root);
    const bytes = randomBytes(2 * 1024 * 1024 + 1);
    const key = sha256(bytes);
    await expectStored(scp.write(key, bytesSource(bytes), ['shared']), key);
    const prefix = key.slice(0, 2);
    const mark = join(root, 'tools', 'usage', prefix, key.slice(2));
    const labels = join(root, 'tools', 'labels', prefix, `${key.slice(2)}.json`);
    for (const path of [mark, labels, join(root, 'tools', 'usage', prefix), join(root, 'tools', 'labels', prefix)]) {
      expect([path, statSync(path).mode & 0o777]).toEqual([path, 0o777]);
    }
    await corruptRemote(scp, key);
    await expectStored(scp.write(key, bytesSource(bytes)), key);
    expect(readFileSync(await scp.pathOf(key)).equals(bytes)).toBe(true);
    await scp.close();
  });

  it('lists a large labelled lake in a bounded number of round trips, with every label and mark', async () => {
    const root = remoteRoot();
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'config.yml'), 'labels: JsonLabels\nlevels:\n- 1\n- -1\nusage: StatUsage\n');
    const expected = new Map<string, string[]>();
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(`value ${i}`);
      const key = sha256(bytes);
      const [prefix, rest] = [key.slice(0, 2), key.slice(2)];
      for (const dir of [prefix, join('tools', 'labels', prefix), join('tools', 'usage', prefix)]) mkdirSync(join(root, dir), { recursive: true });
      writeFileSync(join(root, prefix, rest), bytes);
      // some files span lines, as a pretty-printed list would
      const labels = ['all', `group-${i % 5}`];
      writeFileSync(join(root, 'tools', 'labels', prefix, `${rest}.json`), i % 2 ? JSON.stringify(labels) : JSON.stringify(labels, null, 1));
      if (i % 3 === 0) writeFileSync(join(root, 'tools', 'usage', prefix, rest), '');
      expected.set(key, labels);
    }
    const scp = connect(root);
    await scp.has(sha256(Buffer.from('value 0'))); // connected, config.yml read
    const exec = Client.prototype.exec;
    let channels = 0;
    Client.prototype.exec = function (this: Client, ...args: Parameters<Client['exec']>) {
      channels++;
      return exec.apply(this, args);
    } as Client['exec'];
    const seen = new Map<string, string[] | null>();
    let marked = 0;
    try {
      for await (const entry of scp.contents()) {
        seen.set(entry.key, entry.meta.labels);
        if (entry.meta.lastUsed !== null) marked++;
      }
    } finally {
      Client.prototype.exec = exec;
    }
    expect(channels).toBe(1);
    expect(seen).toEqual(expected);
    expect(marked).toBe(1000);
    await scp.close();
  });

  it('costs one command to start on an existing lake, one to delete a key (blob, mark and labels), one to miss a delete', async () => {
    const root = remoteRoot();
    const bytes = randomBytes(500);
    const key = sha256(bytes);
    const writer = connect(root);
    await expectStored(writer.write(key, bytesSource(bytes), ['kept']), key);
    await writer.read(key); // a mark
    await writer.close();
    const mark = join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2));
    const labels = join(root, 'tools', 'labels', key.slice(0, 2), `${key.slice(2)}.json`);
    expect([statSync(mark).isFile(), statSync(labels).isFile()]).toEqual([true, true]);

    const exec = Client.prototype.exec;
    const commands: string[] = [];
    Client.prototype.exec = function (this: Client, ...args: Parameters<Client['exec']>) {
      commands.push(String(args[0]));
      return exec.apply(this, args);
    } as Client['exec'];
    const scp = connect(root);
    const counted = async (action: () => Promise<unknown>) => {
      commands.length = 0;
      const result = await action();
      return { result, count: commands.length };
    };
    try {
      // config.yml read and .tmp/ made by one command, then the stat: before, three
      expect(await counted(() => scp.has(key))).toEqual({ result: true, count: 2 });
      // the blob, its mark and its labels in one command: before, three
      expect(await counted(() => scp.delete(key))).toEqual({ result: true, count: 1 });
      // a miss: before, a remove and a stat
      expect(await counted(() => scp.delete(key))).toEqual({ result: false, count: 1 });
    } finally {
      Client.prototype.exec = exec;
    }
    expect([existsSync(join(root, key.slice(0, 2), key.slice(2))), existsSync(mark), existsSync(labels)]).toEqual([false, false, false]);
    expect(existsSync(join(root, '.tmp'))).toBe(true);
    await scp.close();
  });

  it("reads, rewrites and deletes an old tarn lake's folder blob (<key>/data)", async () => {
    const root = remoteRoot();
    const remote = connect(root);
    await expectFolderBlobHandled(remote, root);
    await remote.close();
  });
});

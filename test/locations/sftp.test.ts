import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Disk, type Location, StorageCorruption } from '../../src/index.js';
import { AuthenticationError } from '../../src/errors.js';
import { requestSize, SFTP } from '../../src/locations/ssh/sftp.js';
import { bytesSource, locationConformance, sha256, expectStored } from '../conformance.js';
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

/** A fresh remote folder on the test server. */
function remoteRoot(): string {
  return join(server.dir, `lake-${++counter}`);
}

function connect(root: string, extra: ConstructorParameters<typeof SFTP>[2] = {}): SFTP {
  return new SFTP(server.host, root, {
    port: server.port,
    username: server.username,
    privateKey: server.privateKey,
    knownHosts: server.knownHosts,
    timeoutMs: 10_000,
    ...extra,
  });
}

/** Flips a byte of the blob on the server's disk, as bit rot would. */
async function corruptRemote(location: Location, key: string): Promise<void> {
  const file = await (location as SFTP).pathOf(key);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[0] = bytes[0]! ^ 0xff;
  writeFileSync(file, bytes);
}

locationConformance({
  name: 'SFTP',
  create: () => connect(remoteRoot()),
  destroy: (location) => (location as SFTP).close(),
  corrupt: corruptRemote,
});

describe('SFTP host keys and credentials', () => {
  it('refuses a server whose host key is not in known_hosts, with ERR_HOST_KEY', async () => {
    const empty = join(server.dir, 'empty_known_hosts');
    writeFileSync(empty, '');
    const sftp = connect(remoteRoot(), { knownHosts: empty });
    const error = await sftp.read(sha256(Buffer.from('x'))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).code).toBe('ERR_HOST_KEY');
    expect((error as Error).message).toMatch(/not in known_hosts/);
    await sftp.close();
  });

  it('refuses a host key that differs from the one in known_hosts', async () => {
    const other = join(server.dir, 'other_known_hosts');
    const line = readFileSync(server.knownHosts, 'utf8').trim().split(' ');
    writeFileSync(other, `${line[0]} ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), randomBytes(32)]).toString('base64')}\n`);
    const sftp = connect(remoteRoot(), { knownHosts: other, acceptUnknownHostKey: true });
    const error = await sftp.read(sha256(Buffer.from('x'))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as AuthenticationError).code).toBe('ERR_HOST_KEY');
    expect((error as Error).message).toMatch(/does not match/);
    await sftp.close();
  });

  it('accepts the server by its SHA256 fingerprint, and refuses a wrong fingerprint', async () => {
    const root = remoteRoot();
    const good = connect(root, { knownHosts: join(server.dir, 'missing'), hostKeyFingerprint: server.fingerprint });
    const bytes = randomBytes(100);
    await expectStored(good.write(sha256(bytes), bytesSource(bytes)), sha256(bytes));
    await good.close();
    const bad = connect(root, { hostKeyFingerprint: 'SHA256:' + randomBytes(32).toString('base64').replace(/=+$/, '') });
    await expect(bad.read(sha256(bytes))).rejects.toMatchObject({ code: 'ERR_HOST_KEY' });
    await bad.close();
  });

  it('connects to an unknown host only when acceptUnknownHostKey is set', async () => {
    const sftp = connect(remoteRoot(), { knownHosts: join(server.dir, 'missing'), acceptUnknownHostKey: true });
    expect(await sftp.read(sha256(Buffer.from('nothing')))).toBeNull();
    await sftp.close();
  });

  it('fails with AuthenticationError for a key the server does not know, and for a wrong password', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrongKey = connect(remoteRoot(), { privateKey: privateKey.export({ format: 'pem', type: 'pkcs1' }).toString() });
    await expect(wrongKey.read(sha256(Buffer.from('x')))).rejects.toMatchObject({ name: 'AuthenticationError', code: 'ERR_AUTH' });
    await wrongKey.close();
    const wrongPassword = connect(remoteRoot(), { privateKey: undefined, password: 'not-the-password' });
    await expect(wrongPassword.read(sha256(Buffer.from('x')))).rejects.toBeInstanceOf(AuthenticationError);
    await wrongPassword.close();
  });
});

describe('SFTP remote lake', () => {
  it('honours the layout of an existing lake (levels [2, -1]) and Disk reads what it wrote', async () => {
    const root = remoteRoot();
    new Disk(root, { levels: [2, -1] });
    const sftp = connect(root);
    const bytes = randomBytes(5000);
    const key = sha256(bytes);
    await expectStored(sftp.write(key, bytesSource(bytes), ['scan']), key);
    expect(readFileSync(join(root, key.slice(0, 4), key.slice(4))).equals(bytes)).toBe(true);
    const disk = new Disk(root);
    expect((await disk.readBytes(key))!.equals(bytes)).toBe(true);
    expect(await (await disk.read(key))!.labels()).toEqual(['scan']);
    const keys: string[] = [];
    for await (const entry of sftp.contents()) keys.push(entry.key);
    expect(keys).toEqual([key]);
    await sftp.close();
  });

  it('creates a tarn config.yml in an empty folder, and refuses a levels option that disagrees', async () => {
    const root = remoteRoot();
    const sftp = connect(root, { levels: [1, 1, -1] });
    const bytes = randomBytes(10);
    const key = sha256(bytes);
    await expectStored(sftp.write(key, bytesSource(bytes)), key);
    expect(readFileSync(join(root, 'config.yml'), 'utf8')).toMatch(/levels:\s*\n\s*- 1\s*\n\s*- 1\s*\n\s*- -1/);
    expect(existsSync(join(root, key.slice(0, 2), key.slice(2, 4), key.slice(4)))).toBe(true);
    await sftp.close();
    const other = connect(root, { levels: [2, -1] });
    await expect(other.read(key)).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    await other.close();
  });

  it('writes atomically: nothing at the final path until the upload is complete, nothing left in .tmp', async () => {
    const root = remoteRoot();
    const sftp = connect(root, { chunkSize: 16 * 1024 });
    await expectAtomicWrite(sftp, root, 600_000);
    await sftp.close();
  });

  it('replaces a corrupted small blob on write, and streams a large value intact', async () => {
    const root = remoteRoot();
    mkdirSync(root, { recursive: true });
    const sftp = connect(root);
    const small = randomBytes(4000);
    const key = sha256(small);
    await sftp.write(key, bytesSource(small));
    await corruptRemote(sftp, key);
    await expectStored(sftp.write(key, bytesSource(small)), key);
    expect((await sftp.readBytes(key))!.equals(small)).toBe(true);

    const large = randomBytes(5 * 1024 * 1024 + 3);
    const largeKey = sha256(large);
    await expectStored(sftp.write(largeKey, bytesSource(large, false)), largeKey);
    const parts: Buffer[] = [];
    for await (const part of (await sftp.read(largeKey))!.stream()) parts.push(part as Buffer);
    expect(Buffer.concat(parts).equals(large)).toBe(true);
    await sftp.close();
  });
  it('replaces a corrupted LARGE blob (over 1 MiB) on the next write: a blob in place counts only when it hashes to its key', async () => {
    const root = remoteRoot();
    const sftp = connect(root);
    const large = randomBytes(3 * 1024 * 1024 + 5);
    const key = sha256(large);
    await sftp.write(key, bytesSource(large));
    await corruptRemote(sftp, key);
    await expect(sftp.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    await expectStored(sftp.write(key, bytesSource(large)), key);
    expect(readFileSync(await sftp.pathOf(key)).equals(large)).toBe(true);
    expect((await sftp.readBytes(key))!.equals(large)).toBe(true);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
    await sftp.close();
  });

  it("creates last-used marks and labels with tarn's modes (0777, their prefix folders too), so another user of the group can touch them", async () => {
    const root = remoteRoot();
    const sftp = connect(root);
    const bytes = randomBytes(100);
    const key = sha256(bytes);
    await sftp.write(key, bytesSource(bytes), ['shared']);
    const mark = join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2));
    const labels = join(root, 'tools', 'labels', key.slice(0, 2), `${key.slice(2)}.json`);
    for (const path of [mark, labels, join(root, 'tools', 'usage', key.slice(0, 2)), join(root, 'tools', 'labels', key.slice(0, 2))]) {
      expect([path, statSync(path).mode & 0o777]).toEqual([path, 0o777]);
    }
    expect(statSync(await sftp.pathOf(key)).mode & 0o777).toBe(0o444);
    await sftp.close();
  });
});

describe('SFTP request size and depth', () => {
  it('caps requests at what the server announces (limits@openssh.com), never above it', async () => {
    const { Client } = await import('ssh2');
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({ host: server.host, port: server.port, username: server.username, privateKey: server.privateKey, hostVerifier: () => true });
    });
    try {
      const channel = await new Promise<import('ssh2').SFTPWrapper>((resolve, reject) =>
        client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))),
      );
      // OpenSSH's sftp-server takes 255 KiB per read and per write; a 256 KiB request would be split in two
      expect(requestSize(channel, 1024 * 1024, 'read')).toBe(255 * 1024);
      expect(requestSize(channel, 256 * 1024, 'write')).toBe(255 * 1024);
      expect(requestSize(channel, 32 * 1024, 'read')).toBe(32 * 1024);
    } finally {
      client.end();
    }
    // a channel that does not say what it takes: the wanted size as it is
    expect(requestSize({} as import('ssh2').SFTPWrapper, 64 * 1024, 'read')).toBe(64 * 1024);
  });

  it('moves values intact with a chunkSize above the server limit and any readConcurrency / concurrency', async () => {
    const value = randomBytes(3 * 1024 * 1024 + 12_345);
    const key = sha256(value);
    for (const options of [
      { chunkSize: 4 * 1024 * 1024, readConcurrency: 1, concurrency: 1 },
      { chunkSize: 100_000, readConcurrency: 32, concurrency: 32 },
      {},
    ]) {
      const root = remoteRoot();
      mkdirSync(root, { recursive: true });
      const sftp = connect(root, options);
      await expectStored(sftp.write(key, bytesSource(value, false)), key);
      expect(readFileSync(await sftp.pathOf(key)).equals(value)).toBe(true);
      expect((await sftp.readBytes(key))!.equals(value)).toBe(true);
      const parts: Buffer[] = [];
      for await (const part of (await sftp.read(key))!.stream()) parts.push(part as Buffer);
      expect(Buffer.concat(parts).equals(value)).toBe(true);
      expect(readdirSync(join(root, '.tmp'))).toEqual([]);
      await sftp.close();
    }
  });

  it('uploads a stream of uneven pieces intact: requests cut across pieces, Uint8Arrays, empty pieces', async () => {
    const value = randomBytes(2 * 1024 * 1024 + 777);
    const key = sha256(value);
    // piece sizes around the 100,000-byte request size: smaller, larger, exact, empty, tiny
    const sizes = [1, 99_999, 0, 100_000, 250_001, 3, 70_000, 130_000];
    const pieces: Uint8Array[] = [];
    for (let at = 0, i = 0; at < value.length; i++) {
      const piece = value.subarray(at, at + sizes[i % sizes.length]!);
      pieces.push(i % 3 === 0 ? new Uint8Array(piece) : piece);
      at += piece.length;
    }
    const root = remoteRoot();
    mkdirSync(root, { recursive: true });
    const sftp = connect(root, { chunkSize: 100_000, concurrency: 4 });
    const source = { size: null, path: null, verified: false, stream: () => Readable.from(pieces), bytes: async () => value };
    await expectStored(sftp.write(key, source), key);
    expect(readFileSync(await sftp.pathOf(key)).equals(value)).toBe(true);
    await sftp.close();
  });

  it('refuses a remote blob that is shorter than it should be, through bytes and stream, at full depth', async () => {
    const root = remoteRoot();
    mkdirSync(root, { recursive: true });
    const sftp = connect(root, { readConcurrency: 16 });
    const value = randomBytes(2 * 1024 * 1024);
    const key = sha256(value);
    await sftp.write(key, bytesSource(value));
    const file = await sftp.pathOf(key);
    chmodSync(file, 0o644);
    writeFileSync(file, value.subarray(0, value.length - 300_000));
    await expect(sftp.readBytes(key)).rejects.toBeInstanceOf(StorageCorruption);
    const stream = (await sftp.read(key))!.stream();
    const streamed = (async () => {
      for await (const part of stream) void part;
    })();
    await expect(streamed).rejects.toBeInstanceOf(StorageCorruption);
    await sftp.close();
  });

  it("reads, rewrites and deletes an old tarn lake's folder blob (<key>/data)", async () => {
    const root = remoteRoot();
    const remote = connect(root);
    await expectFolderBlobHandled(remote, root);
    await remote.close();
  });
});

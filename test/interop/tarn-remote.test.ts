/**
 * Remote lakes shared with real Python tarn 0.14 (see tarn.ts): tarn's SFTP, SCP and Nginx
 * locations read what cairn wrote (through a Disk on the server's side, or through cairn's own
 * SFTP and SCP writes), and cairn's SFTP, SCP and Nginx read what tarn wrote. tarn's remote
 * locations only read, and list nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Disk, HashKeyStorage, type Location } from '../../src/index.js';
import { Nginx } from '../../src/locations/http/nginx.js';
import { SCP } from '../../src/locations/ssh/scp.js';
import { SFTP } from '../../src/locations/ssh/sftp.js';
import { bytesSource, expectStored } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { startNginx, type NginxServer } from '../servers/nginx.js';
import { startSshd, type Sshd } from '../servers/sshd.js';
import { b64, fromB64, removeTarnRuntime, tarn, type TarnLocation } from './tarn.js';

// each test starts Python tarn a few times (about a second each, more on a loaded machine)
vi.setConfig({ testTimeout: 180_000 });

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let sshd: Sshd;
let keyFile: string;
let lakes = 0;

beforeAll(async () => {
  sshd = await startSshd();
  keyFile = join(sshd.dir, 'tarn_user_key');
  writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
});
afterAll(async () => {
  await sshd?.close();
  removeTarnRuntime();
  cleanup();
});

const remoteRoot = () => join(sshd.dir, `interop-lake-${++lakes}`);
const sshOptions = () => ({ port: sshd.port, username: sshd.username, privateKey: sshd.privateKey, knownHosts: sshd.knownHosts, timeoutMs: 10_000 });
const tarnSsh = (kind: 'sftp' | 'scp', root: string): TarnLocation => ({ kind, host: sshd.host, port: sshd.port, root, username: sshd.username, key_file: keyFile });
const cairnRemote = (kind: 'sftp' | 'scp', root: string): Location => (kind === 'sftp' ? new SFTP(sshd.host, root, sshOptions()) : new SCP(sshd.host, root, sshOptions()));

/** Values tarn writes into a lake cairn created (so that it keeps labels and marks), with their keys. */
async function tarnLake(root: string): Promise<{ keys: string[]; values: Buffer[] }> {
  new Disk(root);
  const values = [randomBytes(20), randomBytes(150_000)];
  const keys = (await tarn({ kind: 'disk', root }, values.map((bytes, i) => ({ op: 'write' as const, data: b64(bytes), labels: ['tarn', `n${i}`] })))) as string[];
  expect(keys).toEqual(values.map(sha));
  return { keys, values };
}

/** The keys and labels a cairn location lists. */
async function listed(location: Location): Promise<Map<string, string[] | null>> {
  const found = new Map<string, string[] | null>();
  for await (const { key, meta } of location.contents()) found.set(key, meta.labels === null ? null : [...meta.labels].sort());
  return found;
}

for (const kind of ['sftp', 'scp'] as const) {
  describe(`${kind.toUpperCase()}: a lake shared with tarn`, () => {
    it(`tarn's ${kind.toUpperCase()} reads a lake cairn wrote on the server`, async () => {
      const root = remoteRoot();
      const storage = new HashKeyStorage(root);
      const values = [randomBytes(10), randomBytes(200_000)];
      const keys = [];
      for (const bytes of values) keys.push((await storage.write(bytes, { labels: ['cairn'] }))!);
      const missing = sha(randomBytes(8));
      const results = await tarn(tarnSsh(kind, root), [...keys.map((key) => ({ op: 'read' as const, key })), { op: 'read', key: missing }]);
      keys.forEach((_key, i) => expect(fromB64(results[i]).equals(values[i]!)).toBe(true));
      expect(results[keys.length]).toBeNull();
      await storage.close();
    });

    it(`tarn reads what cairn's ${kind.toUpperCase()} wrote, on disk and through its own ${kind.toUpperCase()}`, async () => {
      const root = remoteRoot();
      new Disk(root); // the lake exists on the server (cairn's remote locations write into a lake, they do not create one)
      const remote = cairnRemote(kind, root);
      const bytes = randomBytes(70_000);
      const key = sha(bytes);
      await expectStored(remote.write(key, bytesSource(bytes), ['cairn']), key, bytes);
      await remote.close?.();
      const [fromDisk, labels] = await tarn({ kind: 'disk', root }, [{ op: 'read', key }, { op: 'labels', key }]);
      expect(fromB64(fromDisk).equals(bytes)).toBe(true);
      expect(labels).toEqual(['cairn']);
      const [fromRemote] = await tarn(tarnSsh(kind, root), [{ op: 'read', key }]);
      expect(fromB64(fromRemote).equals(bytes)).toBe(true);
    });

    it(`cairn's ${kind.toUpperCase()} reads and lists what tarn wrote`, async () => {
      const root = remoteRoot();
      const { keys, values } = await tarnLake(root);
      const remote = cairnRemote(kind, root);
      for (const [i, key] of keys.entries()) {
        const value = (await remote.read(key))!;
        expect((await value.bytes()).equals(values[i]!)).toBe(true);
      }
      const found = await listed(remote);
      expect([...found.keys()].sort()).toEqual([...keys].sort());
      for (const [i, key] of keys.entries()) expect(found.get(key)).toEqual(['tarn', `n${i}`].sort());
      await remote.close?.();
    });
  });
}

describe('Nginx: a lake shared with tarn', () => {
  let servedRoot: string;
  let nginx: NginxServer;
  beforeAll(async () => {
    servedRoot = tempDir('cairn-interop-nginx-');
    nginx = await startNginx(servedRoot);
  });
  afterAll(async () => {
    await nginx?.close();
  });

  it('tarn’s Nginx reads what cairn wrote, and cairn’s Nginx reads and lists what tarn wrote', async () => {
    const cairnBytes = randomBytes(90_000);
    const cairnKey = (await new HashKeyStorage(servedRoot).write(cairnBytes, { labels: ['cairn'] }))!;
    const tarnBytes = randomBytes(30);
    const [tarnKey] = (await tarn({ kind: 'disk', root: servedRoot }, [{ op: 'write', data: b64(tarnBytes), labels: ['tarn'] }])) as string[];
    const missing = sha(randomBytes(8));
    const results = await tarn({ kind: 'nginx', url: nginx.url }, [{ op: 'read', key: cairnKey }, { op: 'read', key: tarnKey! }, { op: 'read', key: missing }]);
    expect(fromB64(results[0]).equals(cairnBytes)).toBe(true);
    expect(fromB64(results[1]).equals(tarnBytes)).toBe(true);
    expect(results[2]).toBeNull();
    const mirror = new Nginx(nginx.url, { timeoutMs: 5000 });
    expect((await (await mirror.read(tarnKey!))!.bytes()).equals(tarnBytes)).toBe(true);
    const found = await listed(mirror);
    expect(found.get(tarnKey!)).toEqual(['tarn']);
    expect(found.get(cairnKey)).toEqual(['cairn']);
    await mirror.close();
  });
});

import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Disk, type Location } from '../../src/index.js';
import { ConfigError } from '../../src/errors.js';
import { Nginx } from '../../src/locations/http/nginx.js';
import { bytesSource, locationConformance, sha256, expectStored } from '../conformance.js';
import { startNginx, type NginxServer } from '../servers/nginx.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

let server: NginxServer;
let lake: Disk;
const servedRoot = tempDir('cairn-nginx-lake-');

beforeAll(async () => {
  lake = new Disk(servedRoot);
  server = await startNginx(servedRoot);
});
afterAll(async () => {
  await server?.close();
  cleanup();
});

/** Flips a byte of the served blob on disk. */
async function corruptServed(_location: Location, key: string): Promise<void> {
  const file = lake.pathOf(key);
  chmodSync(file, 0o644);
  const bytes = readFileSync(file);
  bytes[0] = bytes[0]! ^ 0xff;
  writeFileSync(file, bytes);
}

locationConformance({
  name: 'Nginx (read-only mirror of a Disk lake)',
  create: () => new Nginx(server.url, { timeoutMs: 5000 }),
  destroy: (location) => (location as Nginx).close(),
  readOnly: true,
  seed: async (key, bytes, labels) => {
    await expectStored(lake.write(key, bytesSource(bytes), labels), key);
  },
  corrupt: corruptServed,
});

describe('Nginx', () => {
  it("follows the served lake's config.yml (levels [2, -1])", async () => {
    const root = tempDir('cairn-nginx-levels-');
    const disk = new Disk(root, { levels: [2, -1] });
    const other = await startNginx(root);
    try {
      const bytes = randomBytes(3000);
      const key = sha256(bytes);
      await disk.write(key, bytesSource(bytes), ['a']);
      const nginx = new Nginx(other.url);
      expect((await nginx.readBytes(key))!.equals(bytes)).toBe(true);
      const listed: string[] = [];
      for await (const entry of nginx.contents()) listed.push(entry.key);
      expect(listed).toEqual([key]);
      await nginx.close();
    } finally {
      await other.close();
    }
  });

  it('fails with ConfigError when the URL is not the root of a lake', async () => {
    const nginx = new Nginx(server.url + 'tools/');
    await expect(nginx.read(sha256(Buffer.from('x')))).rejects.toBeInstanceOf(ConfigError);
    await nginx.close();
  });

  it('declines writes: the served lake is unchanged', async () => {
    const nginx = new Nginx(server.url);
    const bytes = randomBytes(50);
    const key = sha256(bytes);
    expect(await nginx.write(key, bytesSource(bytes))).toBeNull();
    expect(await lake.read(key)).toBeNull();
    await nginx.close();
  });
});

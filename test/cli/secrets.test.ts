/**
 * A password in a config file's URL (from `${env:NAME}`) is used, and printed nowhere: not by
 * any command, not in error messages, not in the `.stats/` files. `cairn read -o` never writes
 * through a link planted beside the output file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { join, normalize } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { loadConfig } from '../../src/config/load.js';
import { saveStats } from '../../src/storage/maintenance/stats.js';
import { bytesSource } from '../conformance.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { cairn } from './run.js';

afterAll(cleanup);

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

/** Serves `root` at /lake/ (files, and folders as nginx's JSON autoindex) to basic auth `user:password` only. */
async function basicAuthServer(root: string, user: string, password: string) {
  const authorizations: (string | undefined)[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response) => {
    authorizations.push(request.headers.authorization);
    if (request.headers.authorization !== `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`) {
      response.writeHead(401, { 'content-length': 0 }).end();
      return;
    }
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    if (!path.startsWith('/lake/')) return void response.writeHead(404, { 'content-length': 0 }).end();
    const file = join(root, normalize(path.slice('/lake/'.length)));
    void (async () => {
      const stat = await fsp.stat(file).catch(() => null);
      if (stat === null) return void response.writeHead(404, { 'content-length': 0 }).end();
      const body = stat.isDirectory()
        ? Buffer.from(JSON.stringify(readdirSync(file).map((name) => {
            const each = statSync(join(file, name));
            return { name, type: each.isDirectory() ? 'directory' : 'file', mtime: each.mtime.toUTCString(), size: each.size };
          })))
        : await fsp.readFile(file);
      response.writeHead(200, { 'content-length': body.length });
      response.end(request.method === 'HEAD' ? undefined : body);
    })();
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/lake/`,
    authorizations,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

describe('secrets in config files', () => {
  it('a password in an nginx URL from ${env:…} is sent as basic auth and shown by no command and in no file', async () => {
    const password = 'pw-' + randomBytes(6).toString('hex');
    const served = tempDir();
    const remote = new Disk(served);
    const bytes = randomBytes(3000);
    const key = sha(bytes);
    await remote.write(key, bytesSource(bytes), ['served']);
    const server = await basicAuthServer(served, 'reader', password);
    try {
      const dir = tempDir();
      const url = server.url.replace('http://', 'http://reader:${env:LAKE_PW}@');
      writeFileSync(join(dir, 'cairn.config.yaml'), `storage:\n  levels:\n    - disk: ./lake\n    - nginx: "${url}"\n`);
      const env = { LAKE_PW: password };
      const runs = [
        await cairn(['read', key, '-o', join(dir, 'out.bin')], { cwd: dir, env }),
        await cairn(['ls'], { cwd: dir, env }),
        await cairn(['ls', '--json'], { cwd: dir, env }),
        await cairn(['du'], { cwd: dir, env }),
        await cairn(['du', '--json'], { cwd: dir, env }),
        await cairn(['verify'], { cwd: dir, env }),
        await cairn(['stats'], { cwd: dir, env }),
        // a failure names the location too
        await cairn(['read', key], { cwd: dir, env: { LAKE_PW: 'wrong-' + password } }),
      ];
      expect(readFileSync(join(dir, 'out.bin')).equals(bytes)).toBe(true);
      expect(runs[1]!.stdout).toContain(key);
      for (const run of runs) expect(run.stdout + run.stderr).not.toContain(password);

      const config = await loadConfig(join(dir, 'cairn.config.yaml'), { env });
      const storage = new HashKeyStorage(config.local, config.options);
      expect(await storage.readBytes(key)).toEqual(bytes);
      const saved = saveStats(storage)!;
      expect(readFileSync(saved, 'utf8')).toContain('Nginx(http://127.0.0.1');
      expect(readFileSync(saved, 'utf8')).not.toContain(password);
      await storage.close();
      // every request carried the credentials: the right ones, or the wrong ones of the failing run
      expect(server.authorizations.length).toBeGreaterThan(0);
      expect(server.authorizations.every((header) => header?.startsWith('Basic '))).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('cairn read -o', () => {
  it('never writes through a link planted beside the output file', async () => {
    const dir = tempDir();
    const lake = join(dir, 'lake');
    const storage = new HashKeyStorage(lake);
    const bytes = randomBytes(5000);
    const key = (await storage.write(bytes))!;
    await storage.close();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'precious');
    const output = join(dir, 'out.bin');
    // the old, predictable temporary name, pointing at a file of someone else's
    symlinkSync(victim, `${output}.cairn-partial`);
    const run = await cairn(['read', key, '-o', output, '--lake', lake]);
    expect(run.code).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readFileSync(output).equals(bytes)).toBe(true);
    // nothing left behind but the planted link
    expect(readdirSync(dir).sort()).toEqual(['lake', 'out.bin', 'out.bin.cairn-partial', 'victim']);
    expect(existsSync(`${output}.cairn-partial`)).toBe(true);
  });
});

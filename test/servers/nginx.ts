/**
 * A throwaway nginx for tests: its own config (`-p prefix -c conf`, `daemon off;`), serving one
 * folder with `autoindex on; autoindex_format json;` on a free loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.js';

export interface NginxServer {
  port: number;
  /** `http://127.0.0.1:<port>/lake/`: the served folder's URL. */
  url: string;
  /** Stops nginx (master and workers); the port then refuses connections. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Serves `root` at `/lake/` (so a location URL with a path is exercised). */
export async function startNginx(root: string): Promise<NginxServer> {
  const prefix = mkdtempSync(join(tmpdir(), 'cairn-nginx-'));
  mkdirSync(join(prefix, 'logs'));
  mkdirSync(join(prefix, 'temp'));
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process on;
worker_processes 1;
user root;
pid ${join(prefix, 'nginx.pid')};
error_log stderr error;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'temp', 'body')};
  proxy_temp_path ${join(prefix, 'temp', 'proxy')};
  fastcgi_temp_path ${join(prefix, 'temp', 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'temp', 'uwsgi')};
  scgi_temp_path ${join(prefix, 'temp', 'scgi')};
  default_type application/octet-stream;
  sendfile on;
  server {
    listen 127.0.0.1:${port};
    location /lake/ {
      alias ${root}/;
      autoindex on;
      autoindex_format json;
    }
  }
}
`,
  );
  let child: ChildProcess | null = null;
  let log = '';
  const start = async () => {
    child = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (data: Buffer) => (log = (log + data.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`nginx exited with ${code}: ${log}`))));
    exited.catch(() => undefined);
    await Promise.race([waitForPort(port), exited]);
  };
  const stop = async () => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const gone = new Promise((resolve) => running.once('exit', resolve));
    // SIGTERM: fast shutdown, the master stops its workers before it exits
    running.kill('SIGTERM');
    await gone;
  };
  await start();
  return {
    port,
    url: `http://127.0.0.1:${port}/lake/`,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

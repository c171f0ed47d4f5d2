import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from './ports.js';

/** A Redis Cluster of three masters (no replicas) on free loopback ports, without persistence. */
export interface RedisClusterServer {
  /** The masters' client ports, in slot order: the first holds slots 0-5460, and so on. */
  readonly ports: readonly number[];
  /** One `redis://` URL per master. */
  readonly urls: readonly string[];
  /** Stops every node and removes their folders. */
  destroy(): Promise<void>;
}

const SLOTS = 16384;

/** A port whose cluster bus port (given explicitly, see `--cluster-port`) is free too. */
async function portPair(): Promise<[number, number]> {
  const port = await freePort();
  let bus = await freePort();
  while (bus === port) bus = await freePort();
  return [port, bus];
}

export async function startRedisCluster(masters = 3): Promise<RedisClusterServer> {
  const root = mkdtempSync(join(tmpdir(), 'cairn-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const buses: number[] = [];
  const admins: Redis[] = [];
  const destroy = async (): Promise<void> => {
    for (const admin of admins) admin.disconnect();
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null) return Promise.resolve();
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < masters; index++) {
      const [port, bus] = await portPair();
      const dir = join(root, String(index));
      mkdirSync(dir);
      const args = [
        '--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1', '--dir', dir,
        '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000',
        '--save', '', '--appendonly', 'no', '--daemonize', 'no',
      ];
      const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      ports.push(port);
      buses.push(bus);
      const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`redis-server (cluster node) exited with ${code} before it listened`))));
      await Promise.race([waitForPort(port), exited]);
      exited.catch(() => {});
    }
    for (const port of ports) admins.push(new Redis({ host: '127.0.0.1', port, lazyConnect: false }));
    // slots in equal ranges, then every node meets the first one (at its bus port: not the default port + 10000)
    const per = Math.ceil(SLOTS / masters);
    await Promise.all(admins.map((admin, index) => admin.call('CLUSTER', 'ADDSLOTSRANGE', String(index * per), String(Math.min(SLOTS, (index + 1) * per) - 1))));
    for (const admin of admins.slice(1)) await admin.call('CLUSTER', 'MEET', '127.0.0.1', String(ports[0]), String(buses[0]));
    await waitUntil(async () => {
      for (const admin of admins) {
        const info = String(await admin.call('CLUSTER', 'INFO'));
        if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${masters}`)) return false;
      }
      return true;
    }, 'the cluster to agree on its nodes and slots');
    for (const admin of admins) admin.disconnect();
    admins.length = 0;
  } catch (error) {
    await destroy();
    throw error;
  }
  return { ports, urls: ports.map((port) => `redis://127.0.0.1:${port}`), destroy };
}

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { stablePort, waitForPort } from './ports.js';

/** A Redis Cluster of three masters (no replicas) on free loopback ports, without persistence. */
export interface RedisClusterServer {
  /** The masters' client ports, in slot order: the first holds slots 0-5460, and so on. */
  readonly ports: readonly number[];
  /** One `redis://` URL per master. */
  readonly urls: readonly string[];
  /** Kills every node (SIGKILL, as a crash); `start()` brings them back on the same ports, with their slots and no values. */
  stop(): Promise<void>;
  /** Starts the stopped nodes again, and waits until the cluster is whole. */
  start(): Promise<void>;
  /** Freezes every node (SIGSTOP): connections are taken, nothing is answered. */
  pause(): void;
  resume(): void;
  /** Stops every node and removes their folders. */
  destroy(): Promise<void>;
}

const SLOTS = 16384;

/**
 * A port whose cluster bus port (given explicitly, see `--cluster-port`) is free too; both stable
 * (see stablePort), so that no other test's server takes them while the cluster is stopped.
 */
async function portPair(): Promise<[number, number]> {
  const port = await stablePort();
  let bus = await stablePort();
  while (bus === port) bus = await stablePort();
  return [port, bus];
}

export async function startRedisCluster(masters = 3): Promise<RedisClusterServer> {
  const root = mkdtempSync(join(tmpdir(), 'cairn-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const buses: number[] = [];
  const admins: Redis[] = [];
  const commands: string[][] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        return exited;
      }),
    );
  };
  const destroy = async (): Promise<void> => {
    for (const admin of admins) admin.disconnect();
    await stop();
    rmSync(root, { recursive: true, force: true });
  };
  /** Starts node `index` with its command line, and waits until it listens. */
  const launch = async (index: number): Promise<void> => {
    const child = spawn('redis-server', commands[index]!, { stdio: ['ignore', 'ignore', 'pipe'] });
    children[index] = child;
    const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`redis-server (cluster node) exited with ${code} before it listened`))));
    await Promise.race([waitForPort(ports[index]!), exited]);
    exited.catch(() => {});
  };
  /** Until every node sees the whole cluster with its slots served. */
  const whole = async (): Promise<void> => {
    const clients = ports.map((port) => new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 }));
    for (const client of clients) client.on('error', () => {});
    try {
      await waitUntil(async () => {
        for (const client of clients) {
          const info = String(await client.call('CLUSTER', 'INFO').catch(() => ''));
          if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${masters}`)) return false;
        }
        return true;
      }, 'the cluster to agree on its nodes and slots');
    } finally {
      for (const client of clients) client.disconnect();
    }
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
      commands.push(args);
      ports.push(port);
      buses.push(bus);
      await launch(index);
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
  return {
    ports,
    urls: ports.map((port) => `redis://127.0.0.1:${port}`),
    stop,
    // each node reads its nodes.conf again: the same ids, slots and peers
    start: async () => {
      await Promise.all(ports.map((_port, index) => launch(index)));
      await whole();
    },
    pause: () => children.forEach((child) => child.kill('SIGSTOP')),
    resume: () => children.forEach((child) => child.kill('SIGCONT')),
    destroy,
  };
}

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

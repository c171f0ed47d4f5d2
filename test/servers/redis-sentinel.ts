import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitForPort } from './ports.js';

/** A master, one replica and one Sentinel watching them (quorum 1), on free loopback ports. */
export interface RedisSentinelGroup {
  /** The name the Sentinel knows the master by. */
  readonly name: string;
  readonly sentinelPort: number;
  readonly masterPort: number;
  readonly replicaPort: number;
  destroy(): Promise<void>;
}

export async function startRedisSentinel(name = 'cairn'): Promise<RedisSentinelGroup> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-redis-sentinel-'));
  const children: ChildProcess[] = [];
  const destroy = async (): Promise<void> => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null) return Promise.resolve();
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  const run = async (port: number, args: string[]): Promise<void> => {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it listened`))));
    await Promise.race([waitForPort(port), exited]);
    exited.catch(() => {});
  };
  const plain = (port: number) => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', `${port}.rdb`, '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
  try {
    const masterPort = await freePort();
    await run(masterPort, plain(masterPort));
    const replicaPort = await freePort();
    await run(replicaPort, [...plain(replicaPort), '--replicaof', '127.0.0.1', String(masterPort)]);
    const sentinelPort = await freePort();
    // Sentinel rewrites its config file, so it gets one of its own
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${name} 2000`,
        `sentinel failover-timeout ${name} 10000`,
        '',
      ].join('\n'),
    );
    await run(sentinelPort, [config, '--sentinel']);
    // ready once the replica has synced (a failover needs it) and the Sentinel knows the master
    const replica = new Redis({ host: '127.0.0.1', port: replicaPort });
    const sentinel = new Redis({ host: '127.0.0.1', port: sentinelPort });
    try {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const info = await replica.info('replication');
        const master = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[] | null;
        if (info.includes('master_link_status:up') && master?.[1] === String(masterPort)) break;
        if (Date.now() > deadline) throw new Error('Timed out waiting for the Sentinel group');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      replica.disconnect();
      sentinel.disconnect();
    }
    return { name, sentinelPort, masterPort, replicaPort, destroy };
  } catch (error) {
    await destroy();
    throw error;
  }
}

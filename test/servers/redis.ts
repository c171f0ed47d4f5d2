import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stablePort, waitForPort } from './ports.js';

/** A redis-server of our own on a free loopback port, without persistence. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGKILL: as abrupt as a crash); `start()` brings it back on the same port, empty. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections are accepted by the kernel but never answered. */
  pause(): void;
  resume(): void;
  /** Stops it for good and removes its folder. */
  destroy(): Promise<void>;
}

/** `stable`: a port no other test's server can take while this one is stopped (see stablePort). */
export async function startRedis(options: { stable?: boolean } = {}): Promise<RedisServer> {
  const port = options.stable ? await stablePort() : await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cairn-redis-'));
  let child: ChildProcess | null = null;

  const start = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    const spawned = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = spawned;
    const exited = new Promise<never>((_resolve, reject) =>
      spawned.once('exit', (code) => reject(new Error(`redis-server exited with ${code} before it listened`))),
    );
    await Promise.race([waitForPort(port), exited]);
    exited.catch(() => {});
  };

  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGCONT');
    running.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A throwaway OpenSSH server for tests: `sshd -D -e -f <own config>` on a free loopback port, with
 * a host key and a user key made here by ssh-keygen, nothing read from the system's configuration.
 * It logs in as the user running the tests (root in CI: PermitRootLogin is on).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.js';

export interface SshdOptions {
  /**
   * Offer password logins too. The test user's system password is left alone, so only a wrong
   * password can be tried (and must be refused). @default false
   */
  passwordAuth?: boolean;
  /** An extra line or two of sshd_config. */
  extraConfig?: string;
}

export interface Sshd {
  port: number;
  host: string;
  username: string;
  /** The user key (OpenSSH PEM text) that the server accepts. */
  privateKey: string;
  /** A known_hosts file that lists this server's host key. */
  knownHosts: string;
  /** The host key's fingerprint as `ssh-keygen -l` prints it: `SHA256:…`. */
  fingerprint: string;
  /** A folder for test data (remote roots live under it). */
  dir: string;
  /** Options for `ssh`/`scp` that talk to this server with the user key. */
  sshArgs: string[];
  /** Stops the listener and every session it forked; the port then refuses connections. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop). */
  start(): Promise<void>;
  /** Stops and removes the keys and the config. */
  close(): Promise<void>;
}

/** Every process below `pid` (sessions forked by sshd), read from /proc. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  const parents = new Map<number, number[]>();
  for (const entry of entries) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  const walk = (parent: number) => {
    for (const child of parents.get(parent) ?? []) {
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-sshd-'));
  chmodSync(dir, 0o755);
  const hostKey = join(dir, 'host_ed25519');
  const userKey = join(dir, 'user_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cairn-test-host', '-f', hostKey]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cairn-test-user', '-f', userKey]);
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, readFileSync(userKey + '.pub'), { mode: 0o600 });
  const port = await freePort();
  const host = '127.0.0.1';
  const username = userInfo().username;
  const hostPub = readFileSync(hostKey + '.pub', 'utf8').trim().split(/\s+/);
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[${host}]:${port} ${hostPub[0]} ${hostPub[1]}\n`);
  const fingerprint = 'SHA256:' + createHash('sha256').update(Buffer.from(hostPub[1]!, 'base64')).digest('base64').replace(/=+$/, '');

  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      `ListenAddress ${host}`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'PermitRootLogin yes',
      'StrictModes no',
      'UsePAM no',
      'PubkeyAuthentication yes',
      `PasswordAuthentication ${options.passwordAuth ? 'yes' : 'no'}`,
      'KbdInteractiveAuthentication no',
      'MaxStartups 100',
      'MaxSessions 64',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      options.extraConfig ?? '',
    ].join('\n') + '\n',
  );
  // sshd refuses to start as root without its privilege-separation folder (the service unit
  // normally creates it)
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  let child: ChildProcess | null = null;
  let log = '';
  const start = async () => {
    child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (data: Buffer) => (log = (log + data.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`sshd exited with ${code}: ${log}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitForPort(port), exited]);
  };
  const stop = async () => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null || running.pid === undefined) return;
    const sessions = descendants(running.pid);
    const gone = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    for (const pid of sessions) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await gone;
  };
  await start();
  return {
    port,
    host,
    username,
    privateKey: readFileSync(userKey, 'utf8'),
    knownHosts,
    fingerprint,
    dir,
    sshArgs: ['-P', String(port), '-i', userKey, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'],
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

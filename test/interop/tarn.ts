/**
 * Real Python tarn (0.14, from its source) for the interop tests, run by Debian's python3 with
 * Debian's packages (python3-redis, -boto3, -paramiko, -scp, -pydantic, …: scripts/test-deps.sh).
 * s3fs, which tarn's S3 location is built on, is not in Debian: a stand-in on boto3 is put on its
 * import path (test/interop/python/s3fs), so that tarn's own S3 class runs against the real server.
 *
 * tarn's source, the driver and the stand-in are copied into a folder every user may read, so that
 * tarn can also run as another user (`nobody`, with a group of the lake) wherever the repo is.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** tarn's source: TARN_SOURCE, else the reference copy beside the repo. */
const source = process.env.TARN_SOURCE ?? resolve(here, '..', '..', '..', 'shared', 'reference', 'tarn-0.14');
const python = '/usr/bin/python3';

/** The user and group ids of `nobody` and of Debian's `users` group: a colleague and the lab's group. */
export const NOBODY = 65534;
export const USERS_GID = 100;

export type TarnLocation =
  | { kind: 'disk'; root: string }
  | { kind: 'redis'; url: string; prefix?: string; keep_labels?: boolean; keep_usage?: boolean }
  | { kind: 's3'; endpoint: string; bucket: string; key: string; secret: string }
  | { kind: 'sftp' | 'scp'; host: string; port: number; root: string; username: string; key_file: string }
  | { kind: 'nginx'; url: string };

export type TarnOp =
  | { op: 'write'; data: string; labels?: string[] | string | null }
  | { op: 'read' | 'labels' | 'touch' | 'delete'; key: string }
  | { op: 'contents' };

export interface TarnEntry {
  key: string;
  labels: string[] | null;
  /** seconds since the epoch */
  last_used: number | null;
}

export interface TarnReply {
  results: unknown[];
  /** The op that raised, and what it raised. */
  at?: number;
  error?: { type: string; message: string; trace: string };
}

export interface TarnRun {
  /** Runs as this user (with `groups`), through setpriv; the test runs as root. */
  uid?: number;
  groups?: number[];
}

let copied: string | null = null;

/** tarn, the driver and the s3fs stand-in, in a folder every user can read. */
function runtime(): string {
  if (copied !== null) return copied;
  if (!existsSync(join(source, 'tarn', '__init__.py'))) {
    throw new Error(`tarn's source is not at ${source}: set TARN_SOURCE to a checkout of tarn 0.14`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'cairn-tarn-'));
  cpSync(join(source, 'tarn'), join(dir, 'tarn'), { recursive: true });
  cpSync(join(here, 'python', 's3fs'), join(dir, 's3fs'), { recursive: true });
  cpSync(join(here, 'tarn_driver.py'), join(dir, 'tarn_driver.py'));
  chmodSync(dir, 0o755);
  copied = dir;
  return dir;
}

/** Removes the copy of tarn (call in afterAll). */
export function removeTarnRuntime(): void {
  if (copied !== null) rmSync(copied, { recursive: true, force: true });
  copied = null;
}

/** Runs `ops` with real tarn on `location`; `labels` are HashKeyStorage's preset labels. */
export async function runTarn(location: TarnLocation, ops: TarnOp[], options: TarnRun & { labels?: string[] } = {}): Promise<TarnReply> {
  const dir = runtime();
  const command = [python, '-B', join(dir, 'tarn_driver.py')];
  const argv =
    options.uid === undefined
      ? command
      : ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, `--groups=${(options.groups ?? []).join(',') || String(options.uid)}`, ...command];
  const request = JSON.stringify({ location, labels: options.labels ?? null, ops });
  const { code, stdout, stderr } = await run(argv, request, {
    ...process.env,
    PYTHONPATH: dir,
    PYTHONDONTWRITEBYTECODE: '1',
    HOME: options.uid === undefined ? (process.env.HOME ?? '/root') : '/nonexistent',
  });
  if (code !== 0) throw new Error(`tarn exited with ${code}: ${stderr}`);
  return JSON.parse(stdout) as TarnReply;
}

/** Like runTarn, and fails when tarn raised. */
export async function tarn(location: TarnLocation, ops: TarnOp[], options: TarnRun & { labels?: string[] } = {}): Promise<unknown[]> {
  const reply = await runTarn(location, ops, options);
  if (reply.error) throw new Error(`tarn raised ${reply.error.type} at op ${reply.at} (${JSON.stringify(ops[reply.at!])}): ${reply.error.message}\n${reply.error.trace}`);
  return reply.results;
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
export const fromB64 = (text: unknown): Buffer => Buffer.from(text as string, 'base64');

function run(argv: string[], input: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { freePort, stablePort } from './ports.js';

const run = promisify(execFile);

/**
 * Ceph's S3 gateway (radosgw) over a one-node cluster of our own: a monitor and one OSD keeping
 * its objects in memory (memstore), all on loopback, configured and kept in a temp folder.
 */
export interface RadosgwServer {
  readonly port: number;
  readonly endpoint: string;
  readonly bucket: string;
  /** The keys of the S3 user made for the tests. */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** Stops the gateway (SIGKILL, as a crash); the cluster keeps the objects. */
  stop(): Promise<void>;
  /** Starts the gateway again, on the same port, over the same objects. */
  start(): Promise<void>;
  /** Stops every daemon and removes the folder (the objects go with the OSD's memory). */
  destroy(): Promise<void>;
}

/** A daemon's log lines kept for the error when it fails to start. */
const LOG_TAIL = 4000;
const START_TIMEOUT_MS = 90_000;

/**
 * Runs a Ceph daemon in the foreground under a small shell that kills it when its stdin closes:
 * when stop() ends the pipe, and also when the test process dies without cleaning up, so that no
 * daemon outlives the tests.
 */
function spawnDaemon(command: string, args: string[], logFile: string): ChildProcess {
  const watchdog = [
    'exec 3<&0',
    '"$@" </dev/null >>"$LOG" 2>&1 &',
    'daemon=$!',
    '{ cat <&3 >/dev/null; kill -9 "$daemon" 2>/dev/null; } &',
    'wait "$daemon"',
  ].join('\n');
  return spawn('sh', ['-c', watchdog, 'watchdog', command, ...args], { stdio: ['pipe', 'ignore', 'ignore'], env: { ...process.env, LOG: logFile } });
}

async function stopDaemon(child: ChildProcess | null): Promise<void> {
  if (child === null || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin!.end();
  await exited;
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-LOG_TAIL);
  } catch {
    return '(no log)';
  }
}

/** The HTTP status of `GET /` on the port, or null when nothing answers. */
function statusOf(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode ?? null);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(null));
    req.end();
  });
}

function cephConfig(dir: string, fsid: string, monPort: number, rgwPort: number, noDelay: boolean): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
# one machine, loopback only: no authentication, and messages checked by crc, not encrypted
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms mon service mode = crc
ms client mode = crc
ms service mode = crc
ms cluster mode = crc
# one OSD keeping objects in memory; pools of one copy and few placement groups
osd objectstore = memstore
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
osd crush chooseleaf type = 0
# deleted objects' data is freed soon, not hours later (the OSD holds it in memory)
rgw gc obj min wait = 0
rgw gc processor period = 10
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/$name.log
mon data = ${dir}/mon
osd data = ${dir}/osd
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}${noDelay ? ' tcp_nodelay=1' : ''}
rgw data = ${dir}/rgw
`;
}

export interface RadosgwOptions {
  buckets?: string[];
  /**
   * The gateway sends without Nagle's algorithm (beast's `tcp_nodelay=1`). Ceph's default is off,
   * and then each GET's body waits for the client's delayed ACK of its headers: ~40 ms a request
   * on loopback. @default true
   */
  tcpNoDelay?: boolean;
}

export async function startRadosgw(options: RadosgwOptions = {}): Promise<RadosgwServer> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-radosgw-'));
  for (const folder of ['run', 'mon', 'osd', 'rgw']) mkdirSync(join(dir, folder));
  const config = join(dir, 'ceph.conf');
  const fsid = randomUUID();
  const monPort = await freePort();
  // a port no other test's server takes while the gateway is stopped (see stablePort)
  const port = await stablePort();
  writeFileSync(config, cephConfig(dir, fsid, monPort, port, options.tcpNoDelay ?? true));
  const ceph = (command: string, ...args: string[]) => run(command, ['-c', config, ...args], { timeout: 60_000 });
  const buckets = options.buckets ?? ['lake'];
  const credentials = { accessKeyId: 'CAIRNTEST' + randomUUID().slice(0, 8).toUpperCase(), secretAccessKey: randomUUID() };

  let mon: ChildProcess | null = null;
  let osd: ChildProcess | null = null;
  let gateway: ChildProcess | null = null;

  const destroy = async (): Promise<void> => {
    // the gateway first: without the monitor it would wait for it instead of stopping
    await stopDaemon(gateway);
    gateway = null;
    await stopDaemon(osd);
    await stopDaemon(mon);
    osd = mon = null;
    rmSync(dir, { recursive: true, force: true });
  };

  const start = async (): Promise<void> => {
    if (gateway !== null) return;
    const log = join(dir, 'client.rgw.out');
    const child = spawnDaemon('radosgw', ['-c', config, '-n', 'client.rgw', '-f'], log);
    gateway = child;
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + START_TIMEOUT_MS;
    // it answers once it has made its pools on the OSD: an anonymous listing of buckets
    while ((await statusOf(port)) !== 200) {
      if (exited) throw new Error(`radosgw exited before it served:\n${tail(log)}\n${tail(join(dir, 'client.rgw.log'))}`);
      if (Date.now() > deadline) throw new Error(`radosgw did not serve on ${port} within ${START_TIMEOUT_MS} ms:\n${tail(join(dir, 'client.rgw.log'))}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  const stop = async (): Promise<void> => {
    const running = gateway;
    gateway = null;
    await stopDaemon(running);
  };

  try {
    await run('monmaptool', ['--create', '--add', 'a', `v2:127.0.0.1:${monPort}`, '--fsid', fsid, join(dir, 'monmap')]);
    await ceph('ceph-mon', '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'));
    mon = spawnDaemon('ceph-mon', ['-c', config, '-i', 'a', '-f'], join(dir, 'mon.out'));
    const osdUuid = randomUUID();
    // `osd new` waits for the monitor to form its quorum
    const { stdout } = await ceph('ceph', '--connect-timeout', '30', 'osd', 'new', osdUuid);
    const id = stdout.trim();
    await ceph('ceph-osd', '-i', id, '--mkfs', '--osd-uuid', osdUuid);
    osd = spawnDaemon('ceph-osd', ['-c', config, '-i', id, '-f'], join(dir, 'osd.out'));
    await start();
    await ceph('radosgw-admin', 'user', 'create', '--uid', 'cairn', '--display-name', 'cairn tests', '--access-key', credentials.accessKeyId, '--secret', credentials.secretAccessKey);
    const client = new S3Client({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials });
    try {
      for (const bucket of buckets) {
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
        // the first object of a bucket is slow (its index and data placement groups come up): not in a test's time
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'warm-up', Body: 'x' }));
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'warm-up' }));
      }
    } finally {
      client.destroy();
    }
  } catch (error) {
    await destroy();
    throw error;
  }

  return { port, endpoint: `http://127.0.0.1:${port}`, bucket: buckets[0]!, credentials, stop, start, destroy };
}

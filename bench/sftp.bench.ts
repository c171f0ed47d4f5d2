/**
 * SFTP location vs the OpenSSH `scp` command: upload and download of one 256 MiB file to the same
 * throwaway sshd, same run. Each round times both, back to back (which goes first alternates), so
 * a change in the machine's load hits both; it prints the median rates, the median of the
 * per-round ratios (target ≥ 0.8), and the CPU time each client used (this process for the SFTP
 * location; scp and its ssh for the command). Like scp, each timed SFTP transfer opens its own
 * connection (handshake, login, config.yml) and closes it: both sides pay the same set-up.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { asSource, fileBlob } from '../src/blob.js';
import { SFTP } from '../src/locations/ssh/sftp.js';
import { startSshd } from '../test/servers/sshd.js';

const SIZE = 256 * 1024 * 1024;
const ROUNDS = Number(process.env.SFTP_BENCH_ROUNDS ?? 9);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Wall seconds and this process's CPU seconds. */
async function time(run: () => Promise<void>): Promise<[number, number]> {
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await run();
  const used = process.cpuUsage(cpu);
  return [Number(process.hrtime.bigint() - started) / 1e9, (used.user + used.system) / 1e6];
}

/** Wall seconds and the CPU seconds of scp and the ssh it starts (bash's `time` counts both). */
function timeScp(args: string[]): [number, number] {
  const started = process.hrtime.bigint();
  const output = execFileSync('bash', ['-c', 'TIMEFORMAT="%U %S"; { time scp "$@"; } 2>&1', 'scp', '-q', ...args], { encoding: 'utf8' });
  const [user, system] = output.trim().split(/\s+/).slice(-2).map(Number);
  return [Number(process.hrtime.bigint() - started) / 1e9, user! + system!];
}

const mib = (seconds: number) => SIZE / 1024 / 1024 / seconds;

const server = await startSshd();
const local = mkdtempSync(join(tmpdir(), 'cairn-bench-sftp-'));
try {
  const file = join(local, 'blob');
  const bytes = randomBytes(SIZE);
  writeFileSync(file, bytes);
  const key = createHash('sha256').update(bytes).digest('hex');
  const root = join(server.dir, 'lake');
  const connect = () =>
    new SFTP(server.host, root, {
      port: server.port,
      username: server.username,
      privateKey: server.privateKey,
      knownHosts: server.knownHosts,
      timeoutMs: 60_000,
    });
  // untimed housekeeping (removing the previous round's copy) goes through this one
  const sftp = connect();
  /** Times `run` on a new connection, connecting and closing included, as scp does. */
  const timeFresh = (run: (location: SFTP) => Promise<void>) =>
    time(async () => {
      const location = connect();
      try {
        await run(location);
      } finally {
        await location.close();
      }
    });
  const scpTarget = join(server.dir, 'scp-copy');
  const target = `${server.username}@${server.host}`;
  type Sample = { ours: [number, number]; scp: [number, number] };
  const results = { upload: [] as Sample[], download: [] as Sample[] };
  const downloaded = join(local, 'down');

  // what connecting costs each side, shown for scale: a 1-byte scp, and an SFTP connect + stat
  const tiny = join(local, 'tiny');
  writeFileSync(tiny, 'x');
  const setUp = { scp: [] as number[], ours: [] as number[] };
  for (let i = 0; i < 3; i++) {
    setUp.scp.push(timeScp([...server.sshArgs, tiny, `${target}:${scpTarget}`])[0]);
    setUp.ours.push((await timeFresh(async (location) => void (await location.read(key))))[0]);
  }

  for (let round = 0; round < ROUNDS; round++) {
    const scpFirst = round % 2 === 1;
    const upload = async () => {
      await sftp.delete(key);
      return timeFresh(async (location) => {
        await location.write(key, asSource(fileBlob(file, SIZE), true));
      });
    };
    const scpUpload = () => {
      rmSync(scpTarget, { force: true });
      return timeScp([...server.sshArgs, file, `${target}:${scpTarget}`]);
    };
    const download = () => {
      rmSync(downloaded, { force: true });
      return timeFresh(async (location) => {
        const value = await location.read(key);
        await pipeline(value!.stream(), createWriteStream(downloaded)); // verified while it streams
      });
    };
    const scpDownload = () => {
      rmSync(downloaded, { force: true });
      return timeScp([...server.sshArgs, `${target}:${scpTarget}`, downloaded]);
    };
    if (scpFirst) {
      const scp = scpUpload();
      results.upload.push({ scp, ours: await upload() });
      const scpDown = scpDownload();
      results.download.push({ scp: scpDown, ours: await download() });
    } else {
      const ours = await upload();
      results.upload.push({ ours, scp: scpUpload() });
      const oursDown = await download();
      results.download.push({ ours: oursDown, scp: scpDownload() });
    }
    rmSync(downloaded, { force: true });
  }
  await sftp.close();

  console.log(`SFTP location vs scp command, 256 MiB, ${ROUNDS} rounds, medians; load average ${loadavg()[0]!.toFixed(1)}`);
  const ms = (values: number[]) => `${(median(values) * 1000).toFixed(0)} ms`;
  console.log(`set-up (connect, log in, one small request): scp ${ms(setUp.scp)}, SFTP location ${ms(setUp.ours)}`);
  console.log('direction   SFTP MiB/s   scp MiB/s   ratio (target ≥ 0.80)   CPU s SFTP / scp   per-round ratios');
  for (const [name, samples] of Object.entries(results)) {
    const ours = mib(median(samples.map((sample) => sample.ours[0])));
    const theirs = mib(median(samples.map((sample) => sample.scp[0])));
    const ratios = samples.map((sample) => sample.scp[0] / sample.ours[0]);
    const cpu = `${median(samples.map((sample) => sample.ours[1])).toFixed(2)} / ${median(samples.map((sample) => sample.scp[1])).toFixed(2)}`;
    console.log(
      `${name.padEnd(11)} ${ours.toFixed(1).padStart(10)} ${theirs.toFixed(1).padStart(11)}   ${median(ratios).toFixed(2).padStart(21)}   ` +
        `${cpu.padStart(16)}   ${ratios.map((ratio) => ratio.toFixed(2)).join(' ')}`,
    );
  }
} finally {
  rmSync(local, { recursive: true, force: true });
  await server.close();
}

/**
 * SFTP location vs the OpenSSH `scp` command: upload and download of one 256 MiB file to the same
 * throwaway sshd, same run. Prints the median rate of a few rounds and the ratio (target ≥ 0.8).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { asSource, fileBlob } from '../src/blob.js';
import { SFTP } from '../src/locations/sftp.js';
import { startSshd } from '../test/servers/sshd.js';

const SIZE = 256 * 1024 * 1024;
const ROUNDS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function time(run: () => Promise<void> | void): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e9;
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
  const sftp = new SFTP(server.host, root, {
    port: server.port,
    username: server.username,
    privateKey: server.privateKey,
    knownHosts: server.knownHosts,
    timeoutMs: 60_000,
  });
  const scpTarget = join(server.dir, 'scp-copy');
  const target = `${server.username}@${server.host}`;
  const results = { sftpUp: [] as number[], scpUp: [] as number[], sftpDown: [] as number[], scpDown: [] as number[] };

  for (let round = 0; round < ROUNDS; round++) {
    await sftp.delete(key);
    results.sftpUp.push(await time(() => sftp.write(key, asSource(fileBlob(file, SIZE), true)).then(() => undefined)));
    rmSync(scpTarget, { force: true });
    results.scpUp.push(await time(() => void execFileSync('scp', ['-q', ...server.sshArgs, file, `${target}:${scpTarget}`])));

    const downloaded = join(local, 'down');
    rmSync(downloaded, { force: true });
    results.sftpDown.push(
      await time(async () => {
        const value = await sftp.read(key);
        await pipeline(value!.stream(), createWriteStream(downloaded)); // verified while it streams
      }),
    );
    rmSync(downloaded, { force: true });
    results.scpDown.push(await time(() => void execFileSync('scp', ['-q', ...server.sshArgs, `${target}:${scpTarget}`, downloaded])));
    rmSync(downloaded, { force: true });
  }
  await sftp.close();

  const rows = [
    ['upload', mib(median(results.sftpUp)), mib(median(results.scpUp))],
    ['download', mib(median(results.sftpDown)), mib(median(results.scpDown))],
  ] as const;
  console.log(`SFTP location vs scp command, 256 MiB, median of ${ROUNDS} rounds (MiB/s)`);
  console.log('direction   SFTP location   scp command   ratio (target ≥ 0.80)');
  for (const [name, ours, theirs] of rows) {
    console.log(`${name.padEnd(11)} ${ours.toFixed(1).padStart(13)} ${theirs.toFixed(1).padStart(13)}   ${(ours / theirs).toFixed(2)}`);
  }
} finally {
  rmSync(local, { recursive: true, force: true });
  await server.close();
}

/**
 * `cairn migrate` between two Disk lakes vs `cp -r` of the same files, in one run (issue 6).
 *
 *   npm run bench -- migrate          (CAIRN_BENCH_SCALE=0.25 for a quicker, smaller run)
 *
 * Two data sets: 10,000 files of 64 KiB, and 4 files of 256 MiB. Each figure is the median of
 * ROUNDS runs; the page cache is warm for both sides (the sources were just written). `cairn
 * migrate` hashes every copy and flushes the target filesystem once at the end (`sync -f`), so it
 * is compared with `cp -r` alone and with `cp -r` followed by the same flush.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Disk, HashKeyStorage } from '../src/index.js';

const scale = Number(process.env.CAIRN_BENCH_SCALE ?? 1);
const ROUNDS = 3;
const repo = fileURLToPath(new URL('..', import.meta.url));
// the command as users run it once installed: compiled JavaScript (no TypeScript loader at start)
const built = join(repo, 'node_modules', '.cache', 'cairn-bench');
const cairnBin = join(built, 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'cairn-bench-migrate-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function run(command: string, args: string[]): number {
  const start = performance.now();
  const result = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status})`);
  return (performance.now() - start) / 1000;
}

async function dataset(name: string, count: number, size: number): Promise<{ files: string; lake: string; bytes: number }> {
  const files = join(work, `${name}-files`);
  const lake = join(work, `${name}-lake`);
  mkdirSync(files);
  const storage = new HashKeyStorage(new Disk(lake, { fsync: false }));
  const block = randomBytes(Math.min(size, 16 * 1024 * 1024));
  for (let i = 0; i < count; i++) {
    const path = join(files, `file-${i}`);
    const bytes = Buffer.alloc(size);
    for (let offset = 0; offset < size; offset += block.length) block.copy(bytes, offset);
    bytes.writeUInt32LE(i, 0); // each file differs
    writeFileSync(path, bytes);
    await storage.write(path);
  }
  run('sync', []);
  return { files, lake, bytes: count * size };
}

async function compare(name: string, count: number, size: number): Promise<string[]> {
  const { files, lake, bytes } = await dataset(name, count, size);
  const times = { migrate: [] as number[], cp: [] as number[], cpSync: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const what of round % 2 === 0 ? (['cp', 'migrate'] as const) : (['migrate', 'cp'] as const)) {
      const target = join(work, `${name}-target`);
      rmSync(target, { recursive: true, force: true });
      run('sync', []); // start from a clean page cache state (nothing dirty)
      if (what === 'migrate') times.migrate.push(run(process.execPath, [cairnBin, 'migrate', '--from', lake, '--to', target, '--jobs', '8', '--quiet']));
      else {
        const copy = run('cp', ['-r', files, target]);
        times.cp.push(copy);
        times.cpSync.push(copy + run('sync', ['-f', target]));
      }
    }
  }
  const rate = (seconds: number) => bytes / 1e6 / seconds;
  const label = `${count.toLocaleString('en')} × ${size >= 1024 ** 2 ? size / 1024 ** 2 + ' MiB' : size / 1024 + ' KiB'}`;
  const m = median(times.migrate);
  const c = median(times.cp);
  const cs = median(times.cpSync);
  rmSync(join(work, `${name}-target`), { recursive: true, force: true });
  rmSync(files, { recursive: true, force: true });
  rmSync(lake, { recursive: true, force: true });
  return [
    `${label.padEnd(20)} cairn migrate --jobs 8  ${rate(m).toFixed(0).padStart(6)} MB/s  (${m.toFixed(2)} s)`,
    `${''.padEnd(20)} cp -r                   ${rate(c).toFixed(0).padStart(6)} MB/s  (${c.toFixed(2)} s)   migrate/cp = ${(c / m).toFixed(2)}`,
    `${''.padEnd(20)} cp -r; sync -f          ${rate(cs).toFixed(0).padStart(6)} MB/s  (${cs.toFixed(2)} s)   migrate/(cp+sync) = ${(cs / m).toFixed(2)}`,
  ];
}

try {
  run(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.build.json'), '--outDir', built]);
  console.log(`${cpus().length} cores, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM; medians of ${ROUNDS} rounds, scale ${scale}`);
  const lines = [
    ...(await compare('small', Math.round(10_000 * scale), 64 * 1024)),
    ...(await compare('large', 4, Math.round(256 * scale) * 1024 * 1024)),
  ];
  console.log(lines.join('\n'));
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * What the benches of the `cairn` command share: a build of the command as users run it once
 * installed (compiled JavaScript), lakes of tiny values written straight into tarn's layout (a
 * million keys in seconds, not an hour), and a run of a command under `/usr/bin/time`, which
 * reports the peak RSS and CPU time of the cairn process alone.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Disk } from '../src/index.js';

const repo = fileURLToPath(new URL('..', import.meta.url));

/** A scratch folder inside the checkout (ignored by git), so that the build finds its dependencies in node_modules. */
export function scratchFolder(name: string): string {
  const scratch = join(repo, '.bench-tmp');
  mkdirSync(scratch, { recursive: true });
  return mkdtempSync(join(scratch, `${name}-`));
}

/** Compiles cairn into `work/build`; the path of its command's main.js. */
export function buildCli(work: string): string {
  const built = join(work, 'build');
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json'), '--outDir', built], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('the build failed');
  return join(built, 'cli', 'main.js');
}

/** The tiny value of key number `index` in every bench lake: `v<index>`. */
export function tinyValue(index: number): Buffer {
  return Buffer.from(`v${index}`);
}

/**
 * A Disk lake at `root` holding the tiny values `from` ≤ index < `to`, written as Disk writes them:
 * a read-only blob file per key under `ab/`, no last-used marks (the mtime stands for the last use).
 */
export function tinyDiskLake(root: string, from: number, to: number): string {
  new Disk(root); // config.yml and .tmp/
  const made = new Set<string>(); // at most 256 folders
  for (let i = from; i < to; i++) {
    const bytes = tinyValue(i);
    const key = createHash('sha256').update(bytes).digest('hex');
    const dir = join(root, key.slice(0, 2));
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    writeFileSync(join(dir, key.slice(2)), bytes, { mode: 0o444 });
  }
  return root;
}

export interface Measure {
  seconds: number;
  cpu: number;
  rssMb: number;
  /** What the command printed on stdout (after the pipe, e.g. `wc -l`'s count), trimmed. */
  stdout: string;
}

/**
 * Runs a shell command in which `CAIRN` stands for the node binary under /usr/bin/time: wall time,
 * CPU (user + sys) and peak RSS of that process, and the command's output.
 */
export function measure(work: string, command: string, env: NodeJS.ProcessEnv = process.env): Measure {
  const report = join(work, 'time.txt');
  const start = performance.now();
  const result = spawnSync('sh', ['-c', command.replace('CAIRN', `/usr/bin/time -f '%M %U %S' -o ${report} ${process.execPath}`)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
    maxBuffer: 64 * 1024 * 1024,
  });
  const seconds = (performance.now() - start) / 1000;
  if (result.status !== 0 && result.status !== 1) throw new Error(`${command} failed (${result.status})`);
  const [rss, user, sys] = readFileSync(report, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds, cpu: user! + sys!, rssMb: rss! / 1024, stdout: result.stdout.toString().trim() };
}

/** The load average, as `uptime` gives it. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

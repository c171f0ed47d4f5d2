/**
 * Peak memory and time of the maintenance commands over growing Disk lakes (issue 15), and the
 * CPU of `cairn verify` against hashing the same files in a bare Node loop (issue 14).
 *
 *   npm run bench -- maintenance
 *   CAIRN_BENCH_KEYS=10000,100000,1000000 npm run bench -- maintenance     (the default: 10⁴ and 10⁵)
 *
 * Each lake holds tiny values (a few bytes), written straight into tarn's layout (a blob file per
 * key under `ab/`, no last-used marks: the mtime stands for the last use) so that building a
 * million keys takes seconds, not an hour. Each command runs as a user runs it once installed
 * (compiled JavaScript), under `/usr/bin/time`, which reports its peak RSS and CPU time:
 *
 * - `cairn ls --json | wc -l` (the rows stream to a pipe),
 * - `cairn du`, `cairn verify`, `cairn gc --dry-run --max-count N/2 --keep-recent 0`.
 *
 * `CAIRN_BENCH_OTHER_CLI=<main.js of another build>` runs the same commands with that build too,
 * side by side (a before/after comparison in one run).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Disk } from '../src/index.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const counts = (process.env.CAIRN_BENCH_KEYS ?? '10000,100000').split(',').map(Number);
const other = process.env.CAIRN_BENCH_OTHER_CLI ?? null;
// inside the checkout (ignored by git), so that the build finds its dependencies in node_modules
const scratch = join(repo, '.bench-tmp');
mkdirSync(scratch, { recursive: true });
const work = mkdtempSync(join(scratch, 'maintenance-'));
const built = join(work, 'build');

function build(): string {
  const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(repo, 'tsconfig.build.json'), '--outDir', built], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error('the build failed');
  return join(built, 'cli', 'main.js');
}

/** A lake of `count` tiny values in tarn's layout, written directly. */
function makeLake(count: number): string {
  const root = join(work, `lake-${count}`);
  new Disk(root); // config.yml and .tmp/
  const made = new Set<string>();
  for (let i = 0; i < count; i++) {
    const bytes = Buffer.from(`v${i}`);
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

interface Measure {
  seconds: number;
  cpu: number;
  rssMb: number;
}

/** Runs a shell command under /usr/bin/time: wall time, CPU (user + sys) and peak RSS of the cairn process. */
function measure(command: string): Measure {
  const report = join(work, 'time.txt');
  const start = performance.now();
  const result = spawnSync('sh', ['-c', command.replace('CAIRN', `/usr/bin/time -f '%M %U %S' -o ${report} ${process.execPath}`)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const seconds = (performance.now() - start) / 1000;
  if (result.status !== 0 && result.status !== 1) throw new Error(`${command} failed (${result.status})`);
  const [rss, user, sys] = readFileSync(report, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds, cpu: user! + sys!, rssMb: rss! / 1024 };
}

/** CPU of hashing every blob of the lake in a bare Node loop (a read and a sha256 per file), in its own process. */
function bareHash(root: string): Measure {
  const program = `
    const { createHash } = require('node:crypto');
    const { readdirSync, readFileSync } = require('node:fs');
    const { join } = require('node:path');
    let n = 0;
    for (const prefix of readdirSync(process.argv[2])) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of readdirSync(join(process.argv[2], prefix))) {
        createHash('sha256').update(readFileSync(join(process.argv[2], prefix, name))).digest('hex');
        n++;
      }
    }`;
  const script = join(work, 'bare-hash.cjs');
  writeFileSync(script, program);
  return measure(`CAIRN ${script} ${root}`);
}

const cli = build();
const clis: [string, string][] = [['this build', cli], ...(other ? ([['other build', other]] as [string, string][]) : [])];
console.log(`load average at start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('| keys | build | command | time | CPU | peak RSS |');
console.log('| ---: | --- | --- | ---: | ---: | ---: |');
for (const count of counts) {
  const started = performance.now();
  const lake = makeLake(count);
  console.log(`| ${count.toLocaleString('en')} | | (lake built in ${((performance.now() - started) / 1000).toFixed(1)} s) | | | |`);
  const bare = bareHash(lake);
  console.log(`| ${count.toLocaleString('en')} | bare Node | read + sha256 of every blob | ${bare.seconds.toFixed(2)} s | ${bare.cpu.toFixed(2)} s | ${bare.rssMb.toFixed(0)} MB |`);
  for (const [name, bin] of clis) {
    const commands: [string, string][] = [
      ['ls --json | wc -l', `CAIRN ${bin} ls --json --lake ${lake} | wc -l`],
      ['du', `CAIRN ${bin} du -q --lake ${lake}`],
      ['verify', `CAIRN ${bin} verify -q --lake ${lake}`],
      ['gc --dry-run', `CAIRN ${bin} gc -q --dry-run --max-count ${count / 2} --keep-recent 0 --lake ${lake}`],
    ];
    for (const [label, command] of commands) {
      const result = measure(command);
      const ratio = label === 'verify' ? ` (${(result.cpu / bare.cpu).toFixed(2)}× bare)` : '';
      console.log(`| ${count.toLocaleString('en')} | ${name} | ${label} | ${result.seconds.toFixed(2)} s | ${result.cpu.toFixed(2)} s${ratio} | ${result.rssMb.toFixed(0)} MB |`);
    }
  }
  rmSync(lake, { recursive: true, force: true });
}
console.log(`load average at end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
rmSync(work, { recursive: true, force: true });

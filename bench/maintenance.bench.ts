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
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCli, loadAverage, type Measure, measure as measureIn, scratchFolder, tinyDiskLake } from './cli-measure.js';

const counts = (process.env.CAIRN_BENCH_KEYS ?? '10000,100000').split(',').map(Number);
const other = process.env.CAIRN_BENCH_OTHER_CLI ?? null;
const work = scratchFolder('maintenance');
const measure = (command: string): Measure => measureIn(work, command);

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

const cli = buildCli(work);
const clis: [string, string][] = [['this build', cli], ...(other ? ([['other build', other]] as [string, string][]) : [])];
console.log(`load average at start: ${loadAverage()}`);
console.log('| keys | build | command | time | CPU | peak RSS |');
console.log('| ---: | --- | --- | ---: | ---: | ---: |');
for (const count of counts) {
  const started = performance.now();
  const lake = tinyDiskLake(join(work, `lake-${count}`), 0, count);
  console.log(`| ${count.toLocaleString('en')} | | (lake built in ${((performance.now() - started) / 1000).toFixed(1)} s) | | | |`);
  const bare = bareHash(lake);
  console.log(`| ${count.toLocaleString('en')} | bare Node | read + sha256 of every blob | ${bare.seconds.toFixed(2)} s | ${bare.cpu.toFixed(2)} s | ${bare.rssMb.toFixed(0)} MB |`);
  for (const [name, bin] of clis) {
    const commands: [string, string][] = [
      ['ls --json | wc -l', `CAIRN ${bin} ls --json --lake ${lake} | wc -l`],
      ['du', `CAIRN ${bin} du -q --lake ${lake}`],
      ['verify', `CAIRN ${bin} verify -q --lake ${lake}`],
      ['gc --dry-run', `CAIRN ${bin} gc -q --dry-run --max-count ${count / 2} --keep-recent 0 --lake ${lake} > /dev/null`],
    ];
    for (const [label, command] of commands) {
      const result = measure(command);
      const ratio = label === 'verify' ? ` (${(result.cpu / bare.cpu).toFixed(2)}× bare)` : '';
      console.log(`| ${count.toLocaleString('en')} | ${name} | ${label} | ${result.seconds.toFixed(2)} s | ${result.cpu.toFixed(2)} s${ratio} | ${result.rssMb.toFixed(0)} MB |`);
    }
  }
  rmSync(lake, { recursive: true, force: true });
}
console.log(`load average at end: ${loadAverage()}`);
rmSync(work, { recursive: true, force: true });

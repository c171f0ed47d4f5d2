/**
 * smartCache benchmark (issue 4), in one run:
 *
 *   npm run bench -- smart-cache
 *
 * - calls/s of a small function on misses and on hits, smartCache vs memoize-fs (both on local
 *   disk in a fresh folder per round, both sequential, awaited one after another, same function and
 *   arguments). memoize-fs keeps one file per call; smartCache keeps each entry in the folder's
 *   SQLite index (one committed row per miss), and each of its hits reads the entry back from it
 *   (one indexed lookup, checked): nothing is held in memory between calls;
 * - the same hits with a 'hit' listener, against the hits with none (what an event costs);
 * - the key of a call with a 100 MB Float32Array argument vs the plain sha256 rate of its bytes;
 * - the first call of a fresh process (a child process: from smartCache() to the result, so the
 *   function's digest, loading SQLite and opening the index are in; importing cairn is not) on a
 *   cache holding 100,000 entries.
 * Each figure is the median of several rounds; ratios compare figures of this run only.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import memoizeFs from 'memoize-fs';
import { smartCache } from '../src/cache/index.js';

const ROUNDS = 5;
const CALLS = Number(process.env.CAIRN_BENCH_CALLS ?? 2000);
const ENTRIES = Number(process.env.CAIRN_BENCH_ENTRIES ?? 100_000);
const work = mkdtempSync(join(tmpdir(), 'cairn-bench-sc-'));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const rows: { what: string; rate: string; ratio?: string }[] = [];

/** A small function: the kind of call where the cache's own overhead is what is measured. */
function small(a: number, b: { scale: number; label: string }) {
  return { value: a * b.scale, label: `${b.label}:${a}` };
}

async function callsPerSecond(call: (i: number) => Promise<unknown>, offset: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) await call(offset + i);
  return CALLS / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const options = { scale: 3, label: 'x' };
  const missesSc: number[] = [];
  const hitsSc: number[] = [];
  const missesMf: number[] = [];
  const hitsMf: number[] = [];
  const hitsListened: number[] = [];
  /** Per round, hits with a listener over hits with none, measured one after the other (either order). */
  const listenerRatios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const cached = smartCache(join(work, `sc-${round}`))(small);
    const memoizer = memoizeFs({ cachePath: join(work, `mf-${round}`) });
    const memoized = await memoizer.fn(small);
    // warm both up on other keys (module loading, the function's digest, folders)
    for (let i = 0; i < 50; i++) {
      await cached(-1 - i, options);
      await memoized(-1 - i, options);
    }
    const offset = round * CALLS;
    missesSc.push(await callsPerSecond((i) => cached(i, options), offset));
    missesMf.push(await callsPerSecond((i) => memoized(i, options), offset));
    hitsSc.push(await callsPerSecond((i) => cached(i, options), offset));
    hitsMf.push(await callsPerSecond((i) => memoized(i, options), offset));
    let heard = 0;
    const onHit = () => heard++;
    const listened = async () => {
      cached.on('hit', onHit);
      const value = await callsPerSecond((i) => cached(i, options), offset);
      cached.off('hit', onHit);
      return value;
    };
    const unlistened = () => callsPerSecond((i) => cached(i, options), offset);
    // alternate which goes first, so that neither gains from the other's warm-up
    const [withOne, withNone] = round % 2 === 0 ? [await listened(), await unlistened()] : [await unlistened(), await listened()].reverse();
    hitsListened.push(withOne!);
    listenerRatios.push(withOne! / withNone!);
    if (heard !== CALLS) throw new Error(`the listener heard ${heard} hits of ${CALLS}`);
  }
  const rate = (value: number) => `${Math.round(value).toLocaleString('en-US')} calls/s`;
  rows.push({ what: 'memoize-fs misses (small function)', rate: rate(median(missesMf)) });
  rows.push({ what: 'smartCache misses (small function)', rate: rate(median(missesSc)), ratio: `${(median(missesSc) / median(missesMf)).toFixed(1)}× memoize-fs (target ≥ 3×)` });
  rows.push({ what: 'memoize-fs hits (small function)', rate: rate(median(hitsMf)) });
  rows.push({ what: 'smartCache hits (small function)', rate: rate(median(hitsSc)), ratio: `${(median(hitsSc) / median(hitsMf)).toFixed(1)}× memoize-fs (target ≥ 10×)` });
  rows.push({ what: "smartCache hits with a 'hit' listener", rate: rate(median(hitsListened)), ratio: `${median(listenerRatios).toFixed(2)}× hits with none (the same cache, just before or after)` });

  // the key of a call with a 100 MB argument, against sha256 of the same bytes
  const big = new Float32Array(25 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 1024) big[i] = i;
  const bytes = new Uint8Array(big.buffer);
  const keyed = smartCache(join(work, 'big'))(async function mean(scan: Float32Array, opts: { sigma: number }) {
    return scan.length * opts.sigma;
  });
  keyed.key(new Float32Array(4), { sigma: 1 });
  const plain: number[] = [];
  const keys: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let start = performance.now();
    createHash('sha256').update(bytes).digest();
    plain.push(bytes.byteLength / ((performance.now() - start) / 1000));
    start = performance.now();
    keyed.key(big, { sigma: 2 });
    keys.push(bytes.byteLength / ((performance.now() - start) / 1000));
  }
  const mbps = (value: number) => `${(value / 1e6).toFixed(0)} MB/s`;
  rows.push({ what: 'sha256 of 100 MB (node:crypto)', rate: mbps(median(plain)) });
  rows.push({ what: 'key of a call with a 100 MB Float32Array', rate: mbps(median(keys)), ratio: `${(median(keys) / median(plain)).toFixed(2)}× sha256 (target ≥ 0.8×)` });

  // the first call of a fresh process on a cache of ENTRIES entries (filled by a child too, so the
  // function's code, hence the keys, are the same)
  const child = join(work, 'first-call.mjs');
  writeFileSync(
    child,
    `import { smartCache } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../src/cache/index.ts')).href)};
const [cache, mode, count] = process.argv.slice(2);
const start = performance.now();
const f = smartCache(cache, { name: 'features' })(async function features(i) {
  return { i, score: i / 7, label: 'item ' + i };
});
if (mode === 'fill') {
  for (let i = 0; i < Number(count); i++) await f(i);
} else {
  const value = await f(Number(count) - 1);
  const ms = performance.now() - start;
  if (f.stats.hits !== 1 || value.i !== Number(count) - 1) throw new Error('the first call was not a hit');
  console.log(ms);
}
`,
  );
  const node = (args: string[]) => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', child, ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`child failed: ${result.stderr}`);
    return result.stdout.trim();
  };
  const cache = join(work, 'first-call');
  const fillStart = performance.now();
  node([cache, 'fill', String(ENTRIES)]);
  const fillRate = ENTRIES / ((performance.now() - fillStart) / 1000);
  const firsts: number[] = [];
  for (let round = 0; round < ROUNDS; round++) firsts.push(Number(node([cache, 'first', String(ENTRIES)])));
  rows.push({ what: `filling a cache with ${ENTRIES.toLocaleString('en-US')} entries (one process)`, rate: rate(fillRate) });
  rows.push({ what: `first call (a hit) of a fresh process, ${ENTRIES.toLocaleString('en-US')} entries`, rate: `${median(firsts).toFixed(1)} ms`, ratio: 'target ≤ 50 ms' });

  console.log(`smartCache, ${CALLS} calls per round, median of ${ROUNDS} rounds`);
  console.table(rows);
}

try {
  await main();
} finally {
  rmSync(work, { recursive: true, force: true });
}

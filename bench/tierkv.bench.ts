/**
 * TierKV against the seed notebook's own TierKV class (run with Debian's Python, read from the
 * seed file at run time), on the same workload: 20,000 values of 1 KiB with tags
 * [`tag<i % 100>`, `<i>`]; set all, each set awaited before the next (the notebook's loop);
 * get by each of the 100 tags (GET_PASSES times over); 3,000 samples of 32 from a tag.
 * With use case 3's tiers (memory, then two lz4-compressed filesystems), in memory only, and on
 * one filesystem tier; then LARGE values of 100 B with 1,000 tags through a 64 MB memory tier
 * over a filesystem tier (total time, reopening, memory per entry after reopening).
 *
 * The machine may be shared: the seed and cairn take turns, one round each (the seed in a new
 * Python process, then cairn), a first round of both is a warm-up and is not counted, and the
 * ratio of a measure is the median over rounds of the ratio within a round (both ran within
 * seconds of each other). Rates printed are medians over rounds. (No garbage collection is forced
 * between runs: a forced one shrinks the heap, and the next run pays for growing it again.)
 * Run: npm run bench -- tierkv
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Memory } from '../src/locations/memory.js';
import { type Durability, ResourceFilesystem, ResourceMemory, TierKV } from '../src/storage/tierkv/index.js';

const N = 20_000;
const TAGS = 100;
const SAMPLES = 3_000;
/** Each get phase reads every tag this many times (a single pass takes a few milliseconds: too short to time on a busy machine). */
const GET_PASSES = 5;
/** Counted rounds, after one warm-up round. */
const RUNS = Number(process.env.TIERKV_BENCH_RUNS ?? 3);
/** Sets with durability 'power' (an fsync per awaited set: a few hundred per second). */
const POWER_N = 1_000;
/** The large run: values of 100 B, 1,000 tags (the figure is 1M; 100k fits a shared machine's minutes). */
const LARGE = Number(process.env.TIERKV_BENCH_LARGE ?? 100_000);
const LARGE_TAGS = 1_000;
const here = dirname(fileURLToPath(import.meta.url));
const seedFile = resolve(here, '..', '..', 'shared', 'seeds', '000_30a530ce80b4909e.txt');
const python = '/usr/bin/python3';

type Rates = { set: number; get: number; sample: number; getViews: number; sampleViews: number; setViews: number; setPower: number; setExit: number };
type SeedRates = { set: number; get: number; sample: number };
type Large = { total: number; reopen: number; perEntry: number; totalExit?: number };
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const PATCH_FROM = 'random.sample(self.tag_keys_map[tag], k)';
const PATCH_TO = 'random.sample(list(self.tag_keys_map[tag]), k)';
const DRIVER = `
import sys, time, os, tempfile, json, shutil
src = open(sys.argv[1]).read()
code = src[src.index('import hashlib'):]
assert code.count(${JSON.stringify(PATCH_FROM)}) == 1
code = code.replace(${JSON.stringify(PATCH_FROM)}, ${JSON.stringify(PATCH_TO)})
ns = {}
exec(compile(code, 'seed-notebook', 'exec'), ns)
TierKV, RM, RF = ns['TierKV'], ns['ResourceMemory'], ns['ResourceFilesystem']
N, T, S, P = ${N}, ${TAGS}, ${SAMPLES}, ${GET_PASSES}
vals = [os.urandom(1024) for _ in range(N)]
def run(resources, reads=True):
    out = {}
    with TierKV(name='bench', resources=resources) as s:
        t = time.perf_counter()
        for i in range(N): s.set(['tag%d' % (i % T), str(i)], vals[i])
        out['set'] = N / (time.perf_counter() - t)
        if not reads:
            s.thread_run = False
            return out
        t = time.perf_counter(); n = 0
        for p in range(P):
            for j in range(T): n += len(s.get('tag%d' % j))
        out['get'] = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for r in range(S): s.sample('tag%d' % (r % T), 32)
        out['sample'] = S / (time.perf_counter() - t)
    return out
def large():
    import psutil, gc
    L, LT = ${LARGE}, ${LARGE_TAGS}
    d = tempfile.mkdtemp()
    small = [os.urandom(100) for _ in range(1000)]
    t = time.perf_counter()
    with TierKV(name='large', resources=[RM(limit=0.9), RF(path=d, limit=0.99)]) as s:
        for i in range(L): s.set(['t%d' % (i % LT), str(i)], small[i % 1000])
    total = time.perf_counter() - t
    s = None  # the closed store's maps go before the baseline is read
    gc.collect()
    rss = psutil.Process().memory_info().rss
    t = time.perf_counter()
    s = TierKV(name='large', resources=[RM(limit=0.9), RF(path=d, limit=0.99)])
    s.__enter__()
    n = len(s.get('t7'))
    reopen = time.perf_counter() - t
    s.thread_run = False
    s.thread.join()
    gc.collect()
    per = (psutil.Process().memory_info().rss - rss) / L
    assert n == L // LT
    shutil.rmtree(d)
    return {'total': total, 'reopen': reopen, 'perEntry': per}
result = {}
d1, d2 = tempfile.mkdtemp(), tempfile.mkdtemp()
result['loop'] = run([RM(limit=0.9), RF(path=d1, limit=0.9, compression=True), RF(path=d2, limit=0.9, compression=True)], reads=False)
shutil.rmtree(d1); shutil.rmtree(d2)
result['memory'] = run([RM(limit=0.99)])
d = tempfile.mkdtemp()
result['fs'] = run([RF(path=d, limit=0.99)])
shutil.rmtree(d)
if len(sys.argv) > 2: result['large'] = large()
print(json.dumps(result))
sys.stdout.flush()
os._exit(0)  # the seed's worker thread is joined in __exit__; nothing else to wait for
`;

let seedMissing = !existsSync(seedFile) || !existsSync(python);
if (seedMissing) console.log(`seed notebook or ${python} not found: the seed is not run`);

type SeedRound = { loop: SeedRates; memory: SeedRates; fs: SeedRates; large?: Large };
/** One round of the seed (use case 3's tiers, memory, a filesystem tier; the large run when asked) in a new Python process. */
function seedRound(withLarge: boolean): SeedRound | null {
  if (seedMissing) return null;
  const result = spawnSync(python, ['-c', DRIVER, seedFile, ...(withLarge ? ['large'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) {
    console.log('the seed failed:', result.stderr);
    seedMissing = true;
    return null;
  }
  return JSON.parse(result.stdout) as SeedRound;
}

const values = Array.from({ length: N }, () => randomBytes(1024));
const tagsOf = (i: number) => [`tag${i % TAGS}`, String(i)];

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** The notebook's loop with use case 3's tiers: memory (90 %), two lz4-compressed filesystem tiers. */
async function cairnLoop(durability: Durability): Promise<number> {
  const dirs = [mkdtempSync(join(tmpdir(), 'tierkv-bench-')), mkdtempSync(join(tmpdir(), 'tierkv-bench-'))];
  const resources = [new ResourceMemory({ limit: 0.9 }), ...dirs.map((path) => new ResourceFilesystem({ path, limit: 0.9, compression: true, durability }))];
  const store = await TierKV.open({ name: 'bench', resources });
  try {
    const t = performance.now();
    for (let i = 0; i < N; i++) await store.set(tagsOf(i), values[i]!);
    return N / ((performance.now() - t) / 1000);
  } finally {
    await store.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** Sets awaited one by one on one filesystem tier with durability 'power' (fsync per commit, POWER_N sets) or 'exit' (N sets). */
async function cairnFsSets(durability: 'power' | 'exit'): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-bench-'));
  const store = await TierKV.open({ name: 'bench', resources: [new ResourceFilesystem({ path: dir, limit: 0.99, durability })] });
  const count = durability === 'power' ? POWER_N : N;
  try {
    const t = performance.now();
    for (let i = 0; i < count; i++) await store.set(tagsOf(i), values[i]!);
    return count / ((performance.now() - t) / 1000);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Memory-only sets with `{ copy: false }`: the store keeps the caller's buffers. */
async function cairnSetViews(): Promise<number> {
  const store = await TierKV.open({ name: 'bench', resources: [new ResourceMemory({ limit: 0.99 })] });
  try {
    const t = performance.now();
    for (let i = 0; i < N; i++) await store.set(tagsOf(i), values[i]!, { copy: false });
    return N / ((performance.now() - t) / 1000);
  } finally {
    await store.close();
  }
}

async function cairnRun(withFs: boolean): Promise<Omit<Rates, 'setViews' | 'setPower' | 'setExit'>> {
  const dir = withFs ? mkdtempSync(join(tmpdir(), 'tierkv-bench-')) : null;
  const resources = dir ? [new ResourceFilesystem({ path: dir, limit: 0.99 })] : [new ResourceMemory({ limit: 0.99 })];
  const store = await TierKV.open({ name: 'bench', resources });
  try {
    const t = performance.now();
    // awaited one by one, as users write the loop (durable to kill -9 with a filesystem tier)
    for (let i = 0; i < N; i++) await store.set(tagsOf(i), values[i]!);
    const set = N / ((performance.now() - t) / 1000);
    // one idle turn, untimed: the acknowledged sets are folded into SQLite, and the reads below
    // read the filesystem tier (without it, they would read the sets still waiting in memory)
    await new Promise((resolve) => setImmediate(resolve));
    const byTag = async (copy: boolean) => {
      const start = performance.now();
      let got = 0;
      for (let p = 0; p < GET_PASSES; p++) for (let j = 0; j < TAGS; j++) got += (await store.get(`tag${j}`, { copy })).length;
      if (got !== N * GET_PASSES) throw new Error(`get by tag gave ${got} values, expected ${N * GET_PASSES}`);
      return got / ((performance.now() - start) / 1000);
    };
    const samples = async (copy: boolean) => {
      const start = performance.now();
      for (let r = 0; r < SAMPLES; r++) if ((await store.sample(`tag${r % TAGS}`, 32, { copy })).length !== 32) throw new Error('a sample of 32 gave fewer values');
      return SAMPLES / ((performance.now() - start) / 1000);
    };
    const get = await byTag(true);
    const getViews = await byTag(false);
    const sample = await samples(true);
    const sampleViews = await samples(false);
    return { set, get, sample, getViews, sampleViews };
  } finally {
    await store.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** LARGE values of 100 B through a 64 MB memory tier over a filesystem tier: total time, reopening, memory per entry after it. */
async function cairnLarge(): Promise<Large & { heapPerEntry: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-bench-'));
  const options = (durability: Durability = 'process') => ({ name: 'large', resources: [new ResourceMemory({ limit: '64MB' }), new ResourceFilesystem({ path: dir, limit: 0.99, durability })] });
  const small = Array.from({ length: 1000 }, () => randomBytes(100));
  try {
    // the seed's semantics first (in a store of its own), then the default
    let t = performance.now();
    const exitStore = await TierKV.open({ ...options('exit'), name: 'large-exit' });
    for (let i = 0; i < LARGE; i++) await exitStore.set([`t${i % LARGE_TAGS}`, String(i)], small[i % 1000]!);
    await exitStore.close();
    const totalExit = (performance.now() - t) / 1000;
    rmSync(join(dir, 'large-exit'), { recursive: true, force: true });
    t = performance.now();
    const store = await TierKV.open(options());
    for (let i = 0; i < LARGE; i++) await store.set([`t${i % LARGE_TAGS}`, String(i)], small[i % 1000]!);
    await store.close();
    const total = (performance.now() - t) / 1000;
    collect();
    collect();
    const before = process.memoryUsage();
    t = performance.now();
    const again = await TierKV.open(options());
    const got = (await again.get('t7')).length;
    const reopen = (performance.now() - t) / 1000;
    if (got !== LARGE / LARGE_TAGS) throw new Error(`reopened store gave ${got} values for a tag`);
    collect();
    collect();
    const after = process.memoryUsage();
    await again.close();
    return { total, totalExit, reopen, perEntry: (after.rss - before.rss) / LARGE, heapPerEntry: (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / LARGE };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The Memory location's puts of 100 B values, before and while it evicts (maxSize 1 MB: from the
 * 10,000th put on, every put evicts one value). Eviction used to rescan the Map's deleted slots.
 */
function memoryEviction(): { filling: number; evicting: number } {
  const memory = new Memory({ maxSize: 1_000_000 });
  const value = randomBytes(100);
  const keys = Array.from({ length: 210_000 }, (_, i) => i.toString(16).padStart(64, '0'));
  let t = performance.now();
  for (let i = 0; i < 10_000; i++) memory.putSync(keys[i]!, value);
  const filling = 10_000 / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 10_000; i < 210_000; i++) memory.putSync(keys[i]!, value);
  const evicting = 200_000 / ((performance.now() - t) / 1000);
  if (memory.count !== 10_000) throw new Error(`Memory holds ${memory.count} values, expected 10,000`);
  return { filling, evicting };
}

/** Heap and buffer bytes per stored value of a memory-only store holding the N values. */
async function bytesPerValue(): Promise<number> {
  const used = () => {
    collect();
    collect();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
  const before = used();
  const store = await TierKV.open({ name: 'memory', resources: [new ResourceMemory({ limit: 0.99 })] });
  for (let i = 0; i < N; i++) await store.set(tagsOf(i), values[i]!);
  const after = used();
  await store.close();
  return (after - before) / N;
}

const ratioText = (ratios: number[]) => (ratios.length ? median(ratios).toFixed(2) + 'x' : null);
const fmt = (value: number) => (value >= 1e6 ? `${(value / 1e6).toFixed(2)}M` : `${(value / 1e3).toFixed(1)}k`);
if (!seedMissing) console.log(`seed: the notebook's own TierKV class, read from the seed file; its sample() patched to random.sample(list(...), k) for Python >= 3.11`);

type Round = { seed: SeedRound | null; loop: Rates; loopExit: Rates; memory: Rates; fs: Rates };
const rounds: Round[] = [];
for (let r = 0; r <= RUNS; r++) {
  const seed = seedRound(false);
  // memory first, as the seed's driver runs it first after its loop in a new process: a memory
  // run right after the loop pays for collecting the loop's garbage
  const memory = { ...(await cairnRun(false)), setViews: await cairnSetViews(), setPower: 0, setExit: 0 };
  const loop = await cairnLoop('process');
  const loopExit = await cairnLoop('exit');
  const fs = { ...(await cairnRun(true)), setViews: 0, setPower: await cairnFsSets('power'), setExit: await cairnFsSets('exit') };
  const loopRates = (set: number) => ({ set, get: 0, sample: 0, getViews: 0, sampleViews: 0, setViews: 0, setPower: 0, setExit: 0 });
  if (r > 0) rounds.push({ seed, loop: loopRates(loop), loopExit: loopRates(loopExit), memory, fs }); // round 0 warms both up
}
const perValue = await bytesPerValue();
const eviction = memoryEviction();
// the large run once each (seed first, in its own process; cairn in this one)
const seedLarge = seedRound(true)?.large ?? null;
const large = await cairnLarge();

// [tier, what, cairn's measure, the seed's measure, target]; "views": `{ copy: false }`, the stored
// bytes themselves, as the seed hands out its own `bytes` objects
const measures: [string, string, 'loop' | 'loopExit' | 'memory' | 'fs', keyof Rates, keyof SeedRates, number][] = [
  ['use case 3', 'loop sets/s', 'loop', 'set', 'set', 1],
  ['use case 3', "  ...'exit'", 'loopExit', 'set', 'set', 1],
  ['memory', 'sets/s', 'memory', 'set', 'set', 1],
  ['memory', '  ...copy: false', 'memory', 'setViews', 'set', 2],
  ['memory', 'values/s by tag', 'memory', 'get', 'get', 1],
  ['memory', '  ...as views', 'memory', 'getViews', 'get', 2],
  ['memory', 'samples of 32/s', 'memory', 'sample', 'sample', 1],
  ['memory', '  ...as views', 'memory', 'sampleViews', 'sample', 2],
  ['filesystem', 'sets/s (kill -9)', 'fs', 'set', 'set', 1],
  ['filesystem', 'sets/s (power)', 'fs', 'setPower', 'set', 0],
  ['filesystem', "sets/s ('exit')", 'fs', 'setExit', 'set', 1],
  ['filesystem', 'values/s by tag', 'fs', 'get', 'get', 1],
  ['filesystem', 'samples of 32/s', 'fs', 'sample', 'sample', 1],
];
console.log(
  `\n${N} values of 1 KiB, ${TAGS} tags, get by tag ${GET_PASSES} passes, ${SAMPLES} samples; ${RUNS} rounds after a warm-up, seed and cairn taking turns;` +
    ` every set awaited before the next; cairn's filesystem sets durable to kill -9 when acknowledged (power: fsync, ${POWER_N} sets; 'exit': saved at close or exit, as the seed's), the seed's committed at exit`,
);
console.log('tier        measure            cairn      seed       ratio   target   (ratio per round)');
for (const [tier, what, where, field, seedField, target] of measures) {
  const ours = median(rounds.map((round) => round[where][field]));
  const seedWhere = where === 'loopExit' ? 'loop' : where; // the seed's loop is its only semantics
  const theirs = rounds[0]!.seed ? median(rounds.map((round) => round.seed![seedWhere][seedField])) : null;
  const ratios = theirs ? rounds.map((round) => round[where][field] / round.seed![seedWhere][seedField]) : [];
  if (target === 0) {
    // no target: the seed has no such mode (its sets are committed at exit)
    console.log(`${tier.padEnd(11)} ${what.padEnd(18)} ${fmt(ours).padStart(8)}   ${(theirs ? fmt(theirs) : '-').padStart(8)}   ${(ratioText(ratios) ?? '-').padStart(6)}   (no target)`);
    continue;
  }
  const ratio = theirs ? median(ratios) : null;
  console.log(
    `${tier.padEnd(11)} ${what.padEnd(18)} ${fmt(ours).padStart(8)}   ${(theirs ? fmt(theirs) : '-').padStart(8)}   ${(ratio ? ratio.toFixed(2) + 'x' : '-').padStart(6)}   >= ${target}x ${ratio === null ? '' : ratio >= target ? 'met   ' : 'MISSED'}   ${ratios.map((value) => value.toFixed(2)).join(' ')}`,
  );
}
const largeLine = (what: string, ours: number, theirs: number | null, unit: string, digits: number) =>
  console.log(
    `${what.padEnd(30)} ${ours.toFixed(digits).padStart(8)} ${unit}   seed ${theirs === null ? '-' : theirs.toFixed(digits).padStart(8)} ${unit}   ` +
      (theirs === null ? '' : `ratio ${(ours / theirs).toFixed(2)}x (target <= 1x ${ours <= theirs ? 'met' : 'MISSED'})`),
  );
console.log(`\n${LARGE} values of 100 B, ${LARGE_TAGS} tags, through a 64 MB memory tier over a filesystem tier (seed: its memory tier, saved to its filesystem tier at exit); once each`);
largeLine('total (open, sets, close)', large.total, seedLarge?.total ?? null, 's', 2);
largeLine("  ...durability 'exit'", large.totalExit!, seedLarge?.total ?? null, 's', 2);
largeLine('reopen (open, first get)', large.reopen, seedLarge?.reopen ?? null, 's', 2);
largeLine('memory per entry after reopen', large.perEntry, seedLarge?.perEntry ?? null, 'B', 0);
console.log(`  (cairn's heap and buffers per entry after reopen: ${large.heapPerEntry.toFixed(0)} B; both figures are RSS growth, which the allocators round)`);
console.log(
  `Memory location, 100 B values under a 1 MB maxSize: ${fmt(eviction.filling)} puts/s filling, ${fmt(eviction.evicting)} puts/s over 200,000 puts that each evict one ` +
    `(${(eviction.evicting / eviction.filling).toFixed(2)}x; it fell to 2-12k/s before the recency list)`,
);
console.log(`memory per stored value: ${perValue.toFixed(0)} bytes for 1024-byte values (${(perValue / 1024).toFixed(2)}x, target <= 1.5x ${perValue <= 1536 ? 'met' : 'MISSED'})`);

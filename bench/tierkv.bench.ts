/**
 * TierKV against the seed notebook's own TierKV class (run with Debian's Python, read from the
 * seed file at run time), on the same workload: 20,000 values of 1 KiB with tags
 * [`tag<i % 100>`, `<i>`]; set all; get by each of the 100 tags (GET_PASSES times over);
 * 3,000 samples of 32 from a tag. In memory, and on one filesystem tier.
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
import { ResourceFilesystem, ResourceMemory, TierKV } from '../src/storage/tierkv/index.js';

const N = 20_000;
const TAGS = 100;
const SAMPLES = 3_000;
/** Each get phase reads every tag this many times (a single pass takes a few milliseconds: too short to time on a busy machine). */
const GET_PASSES = 5;
/** Counted rounds, after one warm-up round. */
const RUNS = Number(process.env.TIERKV_BENCH_RUNS ?? 5);
/** Sets in flight at once on the filesystem tier: concurrent sets share a commit (group commit). */
const WINDOW = 1_000;
const here = dirname(fileURLToPath(import.meta.url));
const seedFile = resolve(here, '..', '..', 'shared', 'seeds', '000_30a530ce80b4909e.txt');
const python = '/usr/bin/python3';

type Rates = { set: number; get: number; sample: number; getViews: number; sampleViews: number };
type SeedRates = { set: number; get: number; sample: number };
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
def run(resources):
    out = {}
    with TierKV(name='bench', resources=resources) as s:
        t = time.perf_counter()
        for i in range(N): s.set(['tag%d' % (i % T), str(i)], vals[i])
        out['set'] = N / (time.perf_counter() - t)
        t = time.perf_counter(); n = 0
        for p in range(P):
            for j in range(T): n += len(s.get('tag%d' % j))
        out['get'] = n / (time.perf_counter() - t)
        t = time.perf_counter()
        for r in range(S): s.sample('tag%d' % (r % T), 32)
        out['sample'] = S / (time.perf_counter() - t)
    return out
result = {}
result['memory'] = run([RM(limit=0.99)])
d = tempfile.mkdtemp()
result['fs'] = run([RF(path=d, limit=0.99)])
shutil.rmtree(d)
print(json.dumps(result))
sys.stdout.flush()
os._exit(0)  # the seed's worker thread is joined in __exit__; nothing else to wait for
`;

let seedMissing = !existsSync(seedFile) || !existsSync(python);
if (seedMissing) console.log(`seed notebook or ${python} not found: the seed is not run`);

/** One round of the seed (memory, then a filesystem tier) in a new Python process. */
function seedRound(): { memory: SeedRates; fs: SeedRates } | null {
  if (seedMissing) return null;
  const result = spawnSync(python, ['-c', DRIVER, seedFile], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (result.status !== 0) {
    console.log('the seed failed:', result.stderr);
    seedMissing = true;
    return null;
  }
  return JSON.parse(result.stdout) as { memory: SeedRates; fs: SeedRates };
}

const values = Array.from({ length: N }, () => randomBytes(1024));
const tagsOf = (i: number) => [`tag${i % TAGS}`, String(i)];

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

async function cairnRun(withFs: boolean): Promise<Rates> {
  const dir = withFs ? mkdtempSync(join(tmpdir(), 'tierkv-bench-')) : null;
  const resources = dir ? [new ResourceFilesystem({ path: dir, limit: 0.99 })] : [new ResourceMemory({ limit: 0.99 })];
  const store = await TierKV.open({ name: 'bench', resources });
  try {
    const t = performance.now();
    if (withFs) {
      for (let start = 0; start < N; start += WINDOW) {
        const batch: Promise<string>[] = [];
        for (let i = start; i < Math.min(N, start + WINDOW); i++) batch.push(store.set(tagsOf(i), values[i]!));
        await Promise.all(batch);
      }
    } else {
      for (let i = 0; i < N; i++) await store.set(tagsOf(i), values[i]!);
    }
    const set = N / ((performance.now() - t) / 1000);
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

const fmt = (value: number) => (value >= 1e6 ? `${(value / 1e6).toFixed(2)}M` : `${(value / 1e3).toFixed(1)}k`);
if (!seedMissing) console.log(`seed: the notebook's own TierKV class, read from the seed file; its sample() patched to random.sample(list(...), k) for Python >= 3.11`);

type Round = { seed: { memory: SeedRates; fs: SeedRates } | null; memory: Rates; fs: Rates };
const rounds: Round[] = [];
for (let r = 0; r <= RUNS; r++) {
  const seed = seedRound();
  const memory = await cairnRun(false);
  const fs = await cairnRun(true);
  if (r > 0) rounds.push({ seed, memory, fs }); // round 0 warms both up
}
const perValue = await bytesPerValue();

// [tier, what, cairn's measure, the seed's measure, target]; "views": `{ copy: false }`, the stored
// bytes themselves, as the seed hands out its own `bytes` objects
const measures: [string, string, 'memory' | 'fs', keyof Rates, keyof SeedRates, number][] = [
  ['memory', 'sets/s', 'memory', 'set', 'set', 2],
  ['memory', 'values/s by tag', 'memory', 'get', 'get', 2],
  ['memory', '  ...as views', 'memory', 'getViews', 'get', 2],
  ['memory', 'samples of 32/s', 'memory', 'sample', 'sample', 2],
  ['memory', '  ...as views', 'memory', 'sampleViews', 'sample', 2],
  ['filesystem', 'sets/s (durable)', 'fs', 'set', 'set', 1],
  ['filesystem', 'values/s by tag', 'fs', 'get', 'get', 1],
  ['filesystem', 'samples of 32/s', 'fs', 'sample', 'sample', 1],
];
console.log(
  `\n${N} values of 1 KiB, ${TAGS} tags, get by tag ${GET_PASSES} passes, ${SAMPLES} samples; ${RUNS} rounds after a warm-up, seed and cairn taking turns;` +
    ` filesystem sets ${WINDOW} in flight (cairn, each acknowledged after its commit), one after another (seed, no commit until exit)`,
);
console.log('tier        measure            cairn      seed       ratio   target   (ratio per round)');
for (const [tier, what, where, field, seedField, target] of measures) {
  const ours = median(rounds.map((round) => round[where][field]));
  const theirs = rounds[0]!.seed ? median(rounds.map((round) => round.seed![where][seedField])) : null;
  const ratios = theirs ? rounds.map((round) => round[where][field] / round.seed![where][seedField]) : [];
  const ratio = theirs ? median(ratios) : null;
  console.log(
    `${tier.padEnd(11)} ${what.padEnd(18)} ${fmt(ours).padStart(8)}   ${(theirs ? fmt(theirs) : '-').padStart(8)}   ${(ratio ? ratio.toFixed(2) + 'x' : '-').padStart(6)}   >= ${target}x ${ratio === null ? '' : ratio >= target ? 'met   ' : 'MISSED'}   ${ratios.map((value) => value.toFixed(2)).join(' ')}`,
  );
}
console.log(`memory per stored value: ${perValue.toFixed(0)} bytes for 1024-byte values (${(perValue / 1024).toFixed(2)}x, target <= 1.5x ${perValue <= 1536 ? 'met' : 'MISSED'})`);

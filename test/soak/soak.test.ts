/**
 * The crash-and-concurrency soak: processes are killed with SIGKILL at random moments while they
 * write, collect (gc) and migrate, several at once on one lake; after each kill every
 * acknowledged value must read back intact with all its labels, and nothing may be left over
 * after the next open and gc. Counts come from the environment (small by default, for CI;
 * `npm run soak` runs large ones): SOAK_RUNS runs per scenario, SOAK_PROCS processes per lake
 * (4 to 8), SOAK_SEEDED old values for gc to evict. SOAK_REPORT names a JSON file for the counts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Disk, HashKeyStorage } from '../../src/index.js';
import { gc } from '../../src/storage/maintenance/gc.js';
import { migrate } from '../../src/storage/maintenance/migrate.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { type Acknowledged, addAcknowledged, checkAcknowledged, countLeftOvers } from './lake-check.js';
import { newTally, seedSize, SIZES, type Tally, valueOf } from './values.js';

const RUNS = Number(process.env.SOAK_RUNS ?? 2);
const PROCS = Math.min(8, Math.max(4, Number(process.env.SOAK_PROCS ?? 4)));
const SEEDED = Number(process.env.SOAK_SEEDED ?? 30);
const PER_RUN_MS = 60_000;

const tallies: Record<string, Tally> = {};
afterAll(() => {
  cleanup();
  const summary = JSON.stringify({ runs: RUNS, processes: PROCS, seeded: SEEDED, scenarios: tallies }, null, 2);
  console.log(`soak counts:\n${summary}`);
  if (process.env.SOAK_REPORT) writeFileSync(process.env.SOAK_REPORT, summary);
});

interface Agent {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

function startAgent(script: string, args: string[]): Agent {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'agents', script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  return { child, output: () => text, exited };
}

/** Waits until every agent printed a line (it is past its start-up and working), at most 20 s. */
async function working(agents: Agent[]): Promise<void> {
  for (let waited = 0; waited < 20_000 && agents.some((agent) => !agent.output().includes('\n')); waited += 20) await sleep(20);
}

/** Kills each agent with SIGKILL at its own random moment within `spanMs`, and waits for all. */
async function killAtRandom(agents: Agent[], spanMs: number): Promise<void> {
  await Promise.all(
    agents.map(async (agent) => {
      await sleep(Math.random() * spanMs);
      agent.child.kill('SIGKILL');
      await agent.exited;
    }),
  );
}

/** A lake holding `count` values nobody used for decades (gc evicts them), labelled `seed`. */
async function seededLake(root: string, count: number, size: (i: number) => number = seedSize): Promise<string[]> {
  const storage = new HashKeyStorage(root);
  const disk = new Disk(root);
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = (await storage.write(valueOf(`seed-${i}`, size(i)), { labels: ['seed', `seed-${i}`] }))!;
    for (const file of [disk.pathOf(key), join(root, 'tools', 'usage', key.slice(0, 2), key.slice(2))]) utimesSync(file, new Date(0), new Date(0));
    keys.push(key);
  }
  return keys;
}

/** Blobs, marks and labels that the (killed) gc runs of a lake hold in their folders. */
function heldByRuns(root: string): number {
  const runs = join(root, 'tools', 'gc');
  if (!existsSync(runs)) return 0;
  return readdirSync(runs)
    .filter((name) => !name.endsWith('.done'))
    .reduce((sum, name) => sum + readdirSync(join(runs, name)).filter((file) => !file.endsWith('.pin')).length, 0);
}

function tally(name: string): Tally {
  return (tallies[name] ??= newTally());
}

function report(name: string, problems: string[]): void {
  expect(problems.slice(0, 20), `${name}: ${problems.length} problems`).toEqual([]);
}

describe('soak: kill -9 and concurrency on one lake', () => {
  it(`Disk writes by ${PROCS} processes, all killed at random moments`, { timeout: RUNS * PER_RUN_MS }, async () => {
    const counts = tally('writes');
    const problems: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const root = join(tempDir('cairn-soak-'), 'lake');
      new Disk(root);
      const writers = Array.from({ length: PROCS }, (_, id) => startAgent('writer.ts', [root, `${run}x${id}`, '0']));
      await working(writers);
      await killAtRandom(writers, 1500);
      const acked: Acknowledged = new Map();
      for (const writer of writers) addAcknowledged(acked, writer.output());
      // the next open removes the temp files of the killed writers
      new Disk(root);
      const temp = await new Disk(root).tempFiles();
      counts.leftOver += temp.length;
      problems.push(...temp.map((file) => `temp file after open: ${file.path}`));
      await checkAcknowledged(root, acked, counts, problems);
      await gc(root, {});
      countLeftOvers(root, counts, problems);
      counts.runs++;
    }
    report('writes', problems);
    expect(counts.acknowledged).toBeGreaterThan(0);
  });

  it(`gc beside ${PROCS - 2} writers rewriting what it evicts, all killed at random moments`, { timeout: RUNS * PER_RUN_MS }, async () => {
    const counts = tally('gc beside writers');
    const problems: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const root = join(tempDir('cairn-soak-'), 'lake');
      await seededLake(root, SEEDED);
      const writers = Array.from({ length: PROCS - 2 }, (_, id) => startAgent('writer.ts', [root, `${run}y${id}`, String(SEEDED)]));
      await working(writers);
      // collectors start while the writers are busy rewriting (and verifying in place) what they evict
      const agents = [...writers, startAgent('gc-loop.ts', [root]), startAgent('gc-loop.ts', [root])];
      await working(agents);
      await killAtRandom(agents, 2000);
      counts.heldByKilledGc += heldByRuns(root);
      const acked: Acknowledged = new Map();
      for (const agent of agents.slice(0, PROCS - 2)) addAcknowledged(acked, agent.output());
      // the next open puts back what the killed collectors held; the next gc (no limits: it evicts
      // nothing) removes the rest
      await checkAcknowledged(root, acked, counts, problems);
      await gc(root, {});
      countLeftOvers(root, counts, problems);
      counts.runs++;
    }
    report('gc beside writers', problems);
    expect(counts.acknowledged).toBeGreaterThan(0);
  });

  it(`one key written by ${PROCS} processes with labels of their own, killed at random moments`, { timeout: RUNS * PER_RUN_MS }, async () => {
    const counts = tally('labels');
    const problems: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const root = join(tempDir('cairn-soak-'), 'lake');
      new Disk(root);
      const labellers = Array.from({ length: PROCS }, (_, id) => startAgent('labeller.ts', [root, `${run}z${id}`]));
      await working(labellers);
      await killAtRandom(labellers, 1500);
      const acked: Acknowledged = new Map();
      for (const labeller of labellers) addAcknowledged(acked, labeller.output());
      counts.acknowledged += [...acked.values()].reduce((sum, labels) => sum + labels.size, 0) - acked.size;
      await checkAcknowledged(root, acked, counts, problems);
      await gc(root, {});
      countLeftOvers(root, counts, problems);
      counts.runs++;
    }
    report('labels', problems);
  });

  it('gc killed at a random moment: the next gc puts back or finishes everything', { timeout: RUNS * PER_RUN_MS }, async () => {
    const counts = tally('gc killed');
    const problems: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const root = join(tempDir('cairn-soak-'), 'lake');
      // many small values: the gc spends a while moving, removing and putting back, and is killed in it
      const seeded = await seededLake(root, SEEDED * 8, () => 300);
      const collector = startAgent('gc-loop.ts', [root, '1']);
      await working([collector]);
      await killAtRandom([collector], 250);
      counts.heldByKilledGc += heldByRuns(root);
      await new Disk(root).recovered(); // the next open puts back what the killed gc held
      await gc(root, {});
      // a value gc chose is either still whole (blob, labels) or gone with its mark and labels
      const disk = new Disk(root);
      for (const [i, key] of seeded.entries()) {
        const bytes = await disk.readBytes(key);
        if (bytes === null) continue;
        counts.acknowledged++;
        const labels = disk.labelsOf(key) ?? [];
        if (!labels.includes(`seed-${i}`)) {
          counts.labelsMissing++;
          problems.push(`labels of put-back ${key}: ${JSON.stringify(labels)}`);
        }
      }
      countLeftOvers(root, counts, problems);
      counts.runs++;
    }
    report('gc killed', problems);
  });

  it('migrate killed at a random moment, then resumed: every value and label arrives', { timeout: RUNS * PER_RUN_MS }, async () => {
    const counts = tally('migrate killed');
    const problems: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const parent = tempDir('cairn-soak-');
      const [from, to] = [join(parent, 'from'), join(parent, 'to')];
      const source = new HashKeyStorage(from);
      const acked: Acknowledged = new Map();
      for (let i = 0; i < 300; i++) {
        const labels = [`m-${i}`, `run-${run}`];
        const key = (await source.write(valueOf(`migrate-${run}-${i}`, i % 50 === 0 ? 2_500_000 : SIZES[i % 3]!), { labels }))!;
        acked.set(key, new Set(labels));
      }
      new Disk(to);
      const mover = startAgent('migrate.ts', [from, to, String(1 + (run % 2))]);
      await working([mover]);
      await killAtRandom([mover], 1200);
      await migrate(from, to);
      await checkAcknowledged(to, acked, counts, problems);
      await gc(to, {});
      countLeftOvers(to, counts, problems);
      counts.runs++;
    }
    report('migrate killed', problems);
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';
import { valueFor } from './values.js';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-proc-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const writer = join(import.meta.dirname, 'child-writer.ts');
function startWriter(dir: string, prefix: string, count: number): { child: ChildProcess; acked: number[]; done: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', writer, dir, prefix, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acked: number[] = [];
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) if (/^\d+$/.test(line)) acked.push(Number(line));
  });
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, acked, done };
}
const open = (dir: string) => TierKV.open({ name: 'shared', resources: [new ResourceMemory(), new ResourceFilesystem({ path: dir })] });

it('keeps every acknowledged set, with its tags, when the writer is killed with SIGKILL', async () => {
  const dir = folder();
  const run = startWriter(dir, 'K', 100_000);
  // let it get well into the stream, then kill it at once
  while (run.acked.length < 1500) await new Promise((resolve) => setTimeout(resolve, 5));
  run.child.kill('SIGKILL');
  await run.done;
  const acked = [...run.acked];
  expect(acked.length).toBeGreaterThanOrEqual(1500);
  const store = await open(dir);
  try {
    for (const i of acked) {
      const values = await store.getByKey(JSON.stringify(['K', String(i)].sort()));
      expect(values, `entry ${i}`).toHaveLength(1);
      expect(values[0]!.equals(valueFor('K', i))).toBe(true);
    }
    expect(await store.hasTags([String(acked[acked.length - 1])])).toBe(true);
    expect((await store.get('K')).length).toBeGreaterThanOrEqual(acked.length);
  } finally {
    await store.close();
  }
}, 60_000);

it('lets two processes write one store while a third reads every committed entry', async () => {
  const dir = folder();
  const reader = await open(dir);
  try {
    const a = startWriter(dir, 'A', 400);
    const b = startWriter(dir, 'B', 400);
    expect(await a.done).toBe(0);
    expect(await b.done).toBe(0);
    // the reader opened before the writers: it sees what they committed
    expect(await reader.get('A')).toHaveLength(400);
    expect(await reader.get('B')).toHaveLength(400);
    const sample = await reader.sample('B', 10);
    expect(sample).toHaveLength(10);
    expect((await reader.getByKey(JSON.stringify(['399', 'A'])))[0]!.equals(valueFor('A', 399))).toBe(true);
    // and they see its writes, and its deletes
    await reader.set(['A', 'from-reader'], 'hello');
    await reader.delete(['A', '0']);
    const again = await open(dir);
    try {
      expect(await again.get('A')).toHaveLength(400);
      expect(await again.hasTags(['from-reader'])).toBe(true);
      expect(await again.getByKey(JSON.stringify(['0', 'A']))).toEqual([]);
    } finally {
      await again.close();
    }
  } finally {
    await reader.close();
  }
}, 60_000);

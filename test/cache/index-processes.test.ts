/**
 * The SQLite index of a cache folder under real processes: kill -9 in the middle of misses,
 * several processes on one folder, and `rm -rf` of the folder under a running process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { smartCache } from '../../src/cache/index.js';
import { openSqlite } from '../../src/sqlite.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cairn = pathToFileURL(join(root, 'src/cache/index.ts')).href;

afterAll(cleanup);

/**
 * A worker script: `write FROM COUNT` stores results and prints each index once its call has
 * returned (acknowledged); `read FROM COUNT` prints how many calls ran the function; `wait`
 * first makes one call (the index is open), prints `ready` and reads a line of stdin before reading.
 */
function script(dir: string): string {
  const file = join(dir, 'worker.mjs');
  writeFileSync(
    file,
    `import { smartCache } from ${JSON.stringify(cairn)};
import { once } from 'node:events';
const [cache, mode, from, count] = process.argv.slice(2);
const counter = { runs: 0 };
const f = smartCache(cache, { name: 'work' })(async function work(i) {
  counter.runs++;
  // odd calls have a part in storage, even ones are small and inline
  return i % 2 ? { i, data: new Float64Array(700).fill(i) } : { i, square: i * i };
});
const check = (i, value) => value.i === i && (i % 2 ? value.data.length === 700 && value.data[699] === i : value.square === i * i);
if (mode === 'wait') {
  await f(-1);
  process.stdout.write('ready\\n');
  process.stdin.resume();
  await once(process.stdin, 'data');
  process.stdin.destroy();
}
let bad = 0;
for (let i = Number(from); i < Number(from) + Number(count); i++) {
  const value = await f(i);
  if (!check(i, value)) bad++;
  if (mode === 'write') process.stdout.write(i + '\\n');
}
if (mode !== 'write') process.stdout.write(JSON.stringify({ runs: counter.runs, bad }) + '\\n');
`,
  );
  return file;
}

function start(file: string, args: string[]): { child: ChildProcess; lines: string[]; exited: Promise<number | null>; line: (match: (line: string) => boolean) => Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting: { match: (line: string) => boolean; resolve: () => void }[] = [];
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const waiter of waiting.splice(0)) {
        if (waiter.match(line)) waiter.resolve();
        else waiting.push(waiter);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = (match: (line: string) => boolean) =>
    new Promise<void>((resolve, reject) => {
      if (lines.some(match)) return resolve();
      waiting.push({ match, resolve });
      void exited.then(() => reject(new Error(`the worker exited before printing the line; it printed ${lines.length} lines`)));
    });
  return { child, lines, exited, line };
}

async function run(file: string, args: string[]): Promise<{ runs: number; bad: number }> {
  const worker = start(file, args);
  expect(await worker.exited).toBe(0);
  return JSON.parse(worker.lines[worker.lines.length - 1]!) as { runs: number; bad: number };
}

describe('the SQLite index across processes', () => {
  it('kill -9 in the middle of misses leaves every acknowledged entry readable', async () => {
    const dir = tempDir('cairn-sc-kill-');
    const file = script(dir);
    const cache = join(dir, 'cache');
    const writer = start(file, [cache, 'write', '0', '100000']);
    await writer.line((line) => Number(line) >= 300);
    writer.child.kill('SIGKILL');
    await writer.exited;
    const acknowledged = writer.lines.map(Number).filter((i) => Number.isInteger(i));
    expect(acknowledged.length).toBeGreaterThanOrEqual(301);
    expect(acknowledged.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
    // a fresh process reads every acknowledged call back without running the function
    const read = await run(file, [cache, 'read', '0', String(acknowledged.length)]);
    expect(read).toEqual({ runs: 0, bad: 0 });
  });

  it('a process that has the index open reads the hits another process wrote since', async () => {
    const dir = tempDir('cairn-sc-share-');
    const file = script(dir);
    const cache = join(dir, 'cache');
    const reader = start(file, [cache, 'wait', '0', '200']);
    await reader.line((line) => line === 'ready');
    const written = start(file, [cache, 'write', '0', '200']);
    expect(await written.exited).toBe(0);
    expect(written.lines).toHaveLength(200);
    reader.child.stdin!.end('go\n');
    expect(await reader.exited).toBe(0);
    // one run: its own f(-1) before the other process wrote; none of the 200
    expect(JSON.parse(reader.lines[reader.lines.length - 1]!)).toEqual({ runs: 1, bad: 0 });
  });

  it('two processes writing the same folder at once both store everything', async () => {
    const dir = tempDir('cairn-sc-both-');
    const file = script(dir);
    const cache = join(dir, 'cache');
    const [a, b] = [start(file, [cache, 'write', '0', '300']), start(file, [cache, 'write', '300', '300'])];
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);
    expect(await run(file, [cache, 'read', '0', '600'])).toEqual({ runs: 0, bad: 0 });
  });
});

describe('last use of hits', () => {
  it('is written when the process exits, before its batch would have been flushed', async () => {
    const dir = tempDir('cairn-sc-used-');
    const file = script(dir);
    const cache = join(dir, 'cache');
    await run(file, [cache, 'write', '0', '2']);
    const used = () => {
      const db = openSqlite(join(cache, 'index.sqlite'));
      try {
        return db.prepare("SELECT used FROM entries WHERE args != '' ORDER BY used").pluck().all() as number[];
      } finally {
        db.close();
      }
    };
    const before = used();
    expect(before).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // two hits, then the script ends (its flush timer does not keep the process alive)
    expect(await run(file, [cache, 'read', '0', '2'])).toEqual({ runs: 0, bad: 0 });
    const after = used();
    expect(after[0]).toBeGreaterThan(before[1]!);
  });
});

describe('rm -rf of the cache folder under a running process', () => {
  it('is noticed: no hit from the removed index, new entries go to a new file that others see', async () => {
    const dir = tempDir();
    const cache = join(dir, 'cache');
    const counter = { runs: 0 };
    const f = smartCache(cache, { name: 'removed' })(async (x: number): Promise<Float64Array> => {
      counter.runs++;
      // odd: a part in storage; even: small and inline
      return x % 2 ? new Float64Array(1000).fill(x) : new Float64Array([x * 10]);
    });
    await f(1);
    await f(2);
    expect((await f(1))[999]).toBe(1);
    expect((await f(2))[0]).toBe(20);
    expect(counter.runs).toBe(2);
    rmSync(cache, { recursive: true, force: true });
    expect(existsSync(cache)).toBe(false);
    expect((await f(2))[0]).toBe(20);
    expect((await f(1))[999]).toBe(1);
    expect(counter.runs).toBe(4);
    // the new index is the folder's file: another connection finds both entries there
    const db = openSqlite(join(cache, 'index.sqlite'));
    try {
      const keys = db.prepare("SELECT key FROM entries WHERE args != ''").pluck().all() as string[];
      expect(keys.sort()).toEqual([f.key(1), f.key(2)].sort());
    } finally {
      db.close();
    }
    expect((await f(1))[0]).toBe(1);
    expect(counter.runs).toBe(4);
  });
});

describe('rm -rf and the uses waiting to be written', () => {
  it('a process that exits after its cache folder was removed does not make the folder again', async () => {
    const dir = tempDir('cairn-sc-gone-');
    const file = join(dir, 'gone.mjs');
    // a hit (its use waits in memory), then the folder is removed, then the process exits
    writeFileSync(
      file,
      `import { rmSync } from 'node:fs';
import { smartCache } from ${JSON.stringify(cairn)};
const [cache] = process.argv.slice(2);
const f = smartCache(cache, { name: 'gone' })(async (x) => x + 1);
await f(1);
if ((await f(1)) !== 2 || f.stats.hits !== 1) throw new Error('expected a hit');
rmSync(cache, { recursive: true, force: true });
`,
    );
    const cache = join(dir, 'cache');
    const worker = start(file, [cache]);
    expect(await worker.exited).toBe(0);
    expect(existsSync(cache)).toBe(false);
  });
});

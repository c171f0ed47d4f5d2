import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { smartCache, markUnstable } from '../../src/cache/index.js';
import { envelope } from '../../src/cache/store.js';
import { UnhashableError } from '../../src/errors.js';
import { Memory } from '../../src/locations/memory.js';
import { Disk } from '../../src/locations/disk/disk.js';
import { HashKeyStorage } from '../../src/storage/hash-key-storage.js';
import { openSqlite } from '../../src/sqlite.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

/** Replaces the stored entry of `key` in a cache folder's index, as another writer (or a bad disk) might. */
function setEntry(dir: string, key: string, change: (bytes: Buffer) => Buffer): void {
  const db = openSqlite(join(dir, 'index.sqlite'));
  try {
    const bytes = db.prepare('SELECT bytes FROM entries WHERE key = ?').pluck().get(key) as Buffer;
    expect(db.prepare('UPDATE entries SET bytes = ? WHERE key = ?').run(change(bytes), key).changes).toBe(1);
  } finally {
    db.close();
  }
}

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile());
}

function overwrite(path: string, bytes: Buffer | string): void {
  chmodSync(path, 0o644);
  writeFileSync(path, bytes);
}

describe('smartCache', () => {
  it('results come back with their types', async () => {
    const dir = tempDir();
    let runs = 0;
    const make = smartCache(dir)(async function make(n: number) {
      runs++;
      const big = new Float32Array(10_000).map((_, i) => i * n);
      return {
        big,
        small: new Float32Array([1.5, -0.25]),
        ints: new Int16Array([-3, 7]),
        bytes: Buffer.from('hello'),
        again: big, // the same array twice is stored once
        map: new Map<unknown, unknown>([['a', 1], [2, new Set(['x'])]]),
        when: new Date(Date.UTC(2024, 0, 2)),
        huge: 2n ** 100n,
        nested: { list: [1, 'two', null, { deep: new Float64Array([Math.PI]) }] },
      };
    });
    const fresh = await make(3);
    const stored = await make(3);
    expect(runs).toBe(1);
    expect(stored).not.toBe(fresh);
    expect(stored.big).toBeInstanceOf(Float32Array);
    expect(stored.big[9999]).toBe(9999 * 3);
    expect(stored.small).toEqual(new Float32Array([1.5, -0.25]));
    expect(stored.ints).toEqual(new Int16Array([-3, 7]));
    expect(Buffer.isBuffer(stored.bytes) && stored.bytes.toString()).toBe('hello');
    expect(stored.again).toEqual(stored.big);
    expect(stored.map.get('a')).toBe(1);
    expect(stored.map.get(2)).toEqual(new Set(['x']));
    expect(stored.when).toEqual(new Date(Date.UTC(2024, 0, 2)));
    expect(stored.huge).toBe(2n ** 100n);
    expect(stored.nested.list[3]).toEqual({ deep: new Float64Array([Math.PI]) });
    // equal parts are stored once: the 40 kB array's bytes are in storage a single time
    const sizes = files(join(dir, 'storage')).map((path) => statSync(path).size);
    expect(sizes.filter((size) => size === 40_000)).toHaveLength(1);
  });

  it('sync functions work, return a Promise, and count hits and misses', async () => {
    const square = smartCache(tempDir())((x: number) => x * x);
    const pending = square(4);
    expect(pending).toBeInstanceOf(Promise);
    expect(await pending).toBe(16);
    expect(await square(4)).toBe(16);
    expect(await square(5)).toBe(25);
    expect(square.stats).toMatchObject({ hits: 1, misses: 2 });
  });

  it('exceptions are not cached', async () => {
    let runs = 0;
    const flaky = smartCache(tempDir())(async function flaky(x: number) {
      runs++;
      if (runs === 1) throw new Error('first time fails');
      return x;
    });
    await expect(flaky(1)).rejects.toThrow('first time fails');
    expect(await flaky(1)).toBe(1);
    expect(await flaky(1)).toBe(1);
    expect(runs).toBe(2);
  });

  it('concurrent calls with the same key run the function once', async () => {
    let runs = 0;
    const slow = smartCache(tempDir())(async function slow(x: number) {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { x };
    });
    const results = await Promise.all([slow(1), slow(1), slow(1), slow(2)]);
    expect(runs).toBe(2);
    expect(results.map((result) => result.x)).toEqual([1, 1, 1, 2]);
  });

  it('an argument that cannot be keyed is a clear error and nothing runs', async () => {
    let runs = 0;
    const f = smartCache(tempDir())(async (options: { onDone: Promise<void> }) => {
      runs++;
      return options;
    });
    const error = await f({ onDone: Promise.resolve() }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnhashableError);
    expect((error as UnhashableError).path).toBe('args[0].onDone');
    expect(runs).toBe(0);
  });

  it('a truncated index entry is a miss that recomputes and repairs', async () => {
    const dir = tempDir();
    let runs = 0;
    const f = smartCache(dir)(async function f(x: number) {
      runs++;
      return { x, data: new Float32Array(5000).fill(x) };
    });
    await f(7);
    // the entry cut short, as a torn write would leave it
    setEntry(dir, f.key(7), (bytes) => bytes.subarray(0, 30));
    expect((await f.explain(7)).reasons[0]).toMatch(/truncated|checksum/);
    const repaired = await f(7);
    expect(repaired.data[4999]).toBe(7);
    expect(runs).toBe(2);
    expect(f.stats.repaired).toBe(1);
    await f(7);
    expect(runs).toBe(2);
  });

  it('a corrupted or missing part is a miss that recomputes and repairs', async () => {
    const dir = tempDir();
    let runs = 0;
    const f = smartCache(dir)(async function f(x: number) {
      runs++;
      return new Float64Array(2000).fill(x);
    });
    await f(1);
    const part = files(join(dir, 'storage')).find((path) => statSync(path).size === 16_000)!;
    overwrite(part, Buffer.alloc(16_000, 1));
    expect((await f(1))[0]).toBe(1);
    expect(runs).toBe(2);
    expect((await f(1))[1999]).toBe(1);
    expect(runs).toBe(2);
  });

  it('an entry written in another format is recomputed, never decoded', async () => {
    const dir = tempDir();
    let runs = 0;
    const f = smartCache(dir)(async function f(x: number) {
      runs++;
      return x + runs;
    });
    // a well-formed entry of another format (what a newer or older cairn might leave)
    expect(await f(1)).toBe(2);
    const entry = envelope({ p: [], b: new Uint8Array([1]) });
    entry[8] = 99; // the format byte after the magic
    setEntry(dir, f.key(1), () => entry);
    const explained = await f.explain(1);
    expect(explained.reasons[0]).toContain('format 99');
    expect(await f(1)).toBe(3);
    expect(await f(1)).toBe(3);
    expect(f.stats).toMatchObject({ misses: 2, repaired: 1 });
  });

  it('explain says hit, new arguments, or which dependency changed', async () => {
    const dir = tempDir();
    // the same code with another helper behind the same name: what a fresh process sees after an edit
    const build = (offsetOf: () => number, options = {}) => smartCache(dir, { name: 'shift', ...options })(async (x: number) => x + offsetOf());
    const before = build(
      markUnstable(function offsetOf() {
        return 1;
      }),
    );
    expect((await before.explain(1)).reasons[0]).toMatch(/nothing is recorded/);
    await before(1);
    expect(await before.explain(1)).toMatchObject({ hit: true, reasons: [] });
    expect((await before.explain(2)).message).toBe('shift: miss, new arguments: no entry for them with the current code');
    const edited = markUnstable(function offsetOf() {
      return 2;
    });
    expect((await build(edited).explain(1)).reasons).toEqual(['the dependency offsetOf changed']);
    const versioned = build(
      markUnstable(function offsetOf() {
        return 1;
      }),
      { version: 2 },
    );
    expect((await versioned.explain(1)).reasons).toEqual(['the version option is new']);
  });

  it('works on a HashKeyStorage and on { index, storage } locations', async () => {
    let runs = 0;
    const body = async (x: number) => {
      runs++;
      return new Uint8Array(8192).fill(x);
    };
    const storage = new HashKeyStorage(new Disk(tempDir()));
    const onStorage = smartCache(storage)(body);
    expect((await onStorage(3))[8191]).toBe(3);
    expect((await onStorage(3))[0]).toBe(3);
    const inMemory = smartCache({ index: new Memory(), storage: new Memory() })(body);
    expect((await inMemory(4))[0]).toBe(4);
    expect((await inMemory(4))[0]).toBe(4);
    expect(runs).toBe(2);
  });

  it('a native function cannot be tracked: a loud warning, or an error in strict mode', async () => {
    const warnings: string[] = [];
    const listener = (warning: Error) => warnings.push(warning.message);
    process.on('warning', listener);
    try {
      const max = smartCache(tempDir())(Math.max);
      expect(await max(1, 5)).toBe(5);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.some((message) => message.includes('native function') && message.includes('deps or version'))).toBe(true);
    } finally {
      process.off('warning', listener);
    }
    const strict = smartCache(tempDir(), { strict: true })(Math.min);
    await expect(strict(1, 2)).rejects.toThrow(UnhashableError);
  });

  it('the deps option adds what cannot be discovered', async () => {
    const dir = tempDir();
    const table = { scale: 2 };
    // an object, not a `let`: a primitive the function reads from its scope is part of its key
    const counter = { runs: 0 };
    const make = () =>
      smartCache(dir, { deps: [table], name: 'scaled' })(async (x: number) => {
        counter.runs++;
        return x;
      });
    await make()(1);
    await make()(1);
    expect(counter.runs).toBe(1);
    table.scale = 3;
    const changed = make();
    expect((await changed.explain(1)).reasons).toEqual(['the dependency deps[0] changed']);
    await changed(1);
    expect(counter.runs).toBe(2);
  });
});

describe('@smartCache on a class method', () => {
  const dir = tempDir();
  let runs = 0;
  const tokenize = markUnstable(function tokenize(text: string) {
    return text.split(' ');
  });

  class Pipeline {
    constructor(readonly lowercase: boolean) {}

    @smartCache(dir)
    async embed(text: string) {
      runs++;
      const words = tokenize(this.lowercase ? text.toLowerCase() : text);
      return new Float32Array(words.map((word) => word.length));
    }
  }

  it('caches per arguments and per instance state', async () => {
    const pipeline = new Pipeline(true);
    expect(await pipeline.embed('Hello big World')).toEqual(new Float32Array([5, 3, 5]));
    expect(await new Pipeline(true).embed('Hello big World')).toEqual(new Float32Array([5, 3, 5]));
    expect(runs).toBe(1);
    await new Pipeline(false).embed('Hello big World');
    expect(runs).toBe(2);
  });

  it('explain and stats work through the instance', async () => {
    const pipeline = new Pipeline(true);
    const embed = pipeline.embed as unknown as { explain(text: string): Promise<{ hit: boolean }>; stats: { hits: number } };
    expect(await embed.explain('Hello big World')).toMatchObject({ hit: true });
    expect(await embed.explain('other words')).toMatchObject({ hit: false });
    expect(embed.stats.hits).toBeGreaterThanOrEqual(1);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidValueError } from '../../src/errors.js';
import { ResourceFilesystem, ResourceMemory, type StoredValue, TierKV, type TierKVOptions } from '../../src/storage/tierkv/index.js';

const folders: string[] = [];
const folder = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tierkv-typed-'));
  folders.push(dir);
  return dir;
};
afterAll(() => folders.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

type Typed = Exclude<ArrayBufferView, DataView>;
/** One value of each TypedArray this Node has, with odd lengths so that values packed together fall on odd offsets. */
function samples(): [string, Typed][] {
  const out: [string, Typed][] = [
    ['Int8Array', Int8Array.from([-1, 2, -3])],
    ['Uint8ClampedArray', Uint8ClampedArray.from([0, 128, 255])],
    ['Int16Array', Int16Array.from([-300, 2, 30_000])],
    ['Uint16Array', Uint16Array.from([1, 65_535, 7])],
    ['Int32Array', Int32Array.from([-1, 1 << 30, 5])],
    ['Uint32Array', Uint32Array.from([4_000_000_000, 1, 2])],
    ['Float32Array', Float32Array.from([0.5, -1.25, 3e10])],
    ['Float64Array', Float64Array.from([Math.PI, -0, 1e300])],
    ['BigInt64Array', BigInt64Array.from([-1n, 2n ** 62n])],
    ['BigUint64Array', BigUint64Array.from([2n ** 64n - 1n, 3n])],
  ];
  const f16 = (globalThis as { Float16Array?: new (values: number[]) => Typed }).Float16Array;
  if (f16) out.push(['Float16Array', new f16([0.5, -2, 1024])]);
  return out;
}

const configs: [string, () => TierKVOptions][] = [
  ['memory only', () => ({ name: 'typed' })],
  ['memory only, compressed', () => ({ name: 'typed', resources: [new ResourceMemory({ compression: true })] })],
  ['memory over a filesystem tier', () => ({ name: 'typed', resources: [new ResourceMemory(), new ResourceFilesystem({ path: folder(), compression: true })] })],
  ['a filesystem tier alone', () => ({ name: 'typed', resources: [new ResourceFilesystem({ path: folder() })] })],
];

function expectSameTyped(got: StoredValue, want: Typed): void {
  expect(got.constructor).toBe(want.constructor);
  const typed = got as Typed & { BYTES_PER_ELEMENT: number };
  // aligned: the engine would not have built the view otherwise, but say it for the reader
  expect(typed.byteOffset % typed.BYTES_PER_ELEMENT).toBe(0);
  expect(Array.from(typed as unknown as ArrayLike<number | bigint>)).toEqual(Array.from(want as unknown as ArrayLike<number | bigint>));
}

describe.each(configs)('typed values, %s', (_, options) => {
  it('gives every TypedArray, DataView and ArrayBuffer back as its own type, with copies and with views', async () => {
    const opts = options();
    const store = await TierKV.open<StoredValue>(opts);
    try {
      for (const [name, value] of samples()) await store.set(['typed', name], value);
      const view = new DataView(new ArrayBuffer(12), 3, 5);
      view.setUint8(0, 9);
      view.setUint8(4, 7);
      await store.set(['typed', 'DataView'], view);
      const buffer = Uint8Array.from([1, 2, 3, 4, 5]).buffer;
      await store.set(['typed', 'ArrayBuffer'], buffer);
      await store.set(['typed', 'string'], 'text');
      for (const copy of [true, false]) {
        for (const [name, value] of samples()) expectSameTyped((await store.get(name, { copy }))[0]!, value);
        const [gotView] = await store.get('DataView', { copy });
        expect(gotView).toBeInstanceOf(DataView);
        expect((gotView as DataView).byteLength).toBe(5);
        expect([(gotView as DataView).getUint8(0), (gotView as DataView).getUint8(4)]).toEqual([9, 7]);
        const [gotBuffer] = await store.get('ArrayBuffer', { copy });
        expect(gotBuffer).toBeInstanceOf(ArrayBuffer);
        expect([...new Uint8Array(gotBuffer as ArrayBuffer)]).toEqual([1, 2, 3, 4, 5]);
        const [text] = await store.get('string', { copy });
        expect(Buffer.isBuffer(text) && text.toString()).toBe('text');
      }
      // all of them at once: packed into one block, each still aligned for its type
      const all = await store.get('typed');
      expect(all).toHaveLength(samples().length + 3);
      for (const value of all) {
        if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
          const perElement = (value as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
          expect(value.byteOffset % perElement).toBe(0);
        }
      }
      const sampled = await store.sample('Float64Array', 1);
      expectSameTyped(sampled[0]!, samples().find(([name]) => name === 'Float64Array')![1]);
    } finally {
      await store.close();
    }
    if (opts.resources?.some((resource) => resource instanceof ResourceFilesystem)) {
      // after reopening, read from the filesystem tier: the type was stored with the value
      await TierKV.with<void, StoredValue>(opts, async (again) => {
        for (const [name, value] of samples()) expectSameTyped((await again.get(name))[0]!, value);
        expect((await again.get('DataView'))[0]).toBeInstanceOf(DataView);
        expect((await again.get('ArrayBuffer'))[0]).toBeInstanceOf(ArrayBuffer);
      });
    }
  });
});

it('refuses what is not a value, with InvalidValueError', async () => {
  await TierKV.with({ name: 'bad' }, async (store) => {
    await expect(store.set('a', 42 as unknown as string)).rejects.toBeInstanceOf(InvalidValueError);
    await expect(store.set('a', { length: 1 } as unknown as string)).rejects.toBeInstanceOf(InvalidValueError);
    expect(store.size).toBe(0);
  });
});

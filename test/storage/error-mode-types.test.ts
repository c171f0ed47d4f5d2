/**
 * The `error` option of a HashKeyStorage is part of its type: these checks are compiled by the
 * typecheck (tsc over test/), and each one is also run, so that the types say what the calls do.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, expectTypeOf, it } from 'vitest';
import { HashKeyStorage, Memory, NotFoundError, Small, WriteError, type Key, type OrNull, type WriteOptions } from '../../src/index.js';
import { cleanup, tempDir } from '../helpers/tmp.js';

afterAll(cleanup);

const never = 'a'.repeat(64);
/** A storage that declines anything over 10 bytes. */
const tiny = () => new Small(new Memory(), { maxSize: 10 });

describe('HashKeyStorage error mode in the types', () => {
  it('a default storage: write resolves to a Key, readBytes to a Buffer, read to what fn returns; a miss throws', async () => {
    const storage = new HashKeyStorage(tempDir());
    expectTypeOf(storage).toEqualTypeOf<HashKeyStorage<true>>();
    const written = storage.write(Buffer.from('hello'));
    expectTypeOf(written).resolves.toEqualTypeOf<Key>();
    const key = await written;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const bytes = await storage.readBytes(key);
    expectTypeOf(bytes).toEqualTypeOf<Buffer>();
    expect(bytes.toString()).toBe('hello');
    const size = await storage.read(key, (value) => value.size);
    expectTypeOf(size).toEqualTypeOf<number | null>(); // `size` itself may be unknown (null) for some locations
    expect(size).toBe(5);
    await expect(storage.readBytes(never)).rejects.toBeInstanceOf(NotFoundError);
    await expect(new HashKeyStorage(tiny()).write(randomBytes(11))).rejects.toBeInstanceOf(WriteError);
  });

  it('per call, error: false gives null in the types and at run time', async () => {
    const storage = new HashKeyStorage(tiny());
    const declined = storage.write(randomBytes(11), { error: false });
    expectTypeOf(declined).resolves.toEqualTypeOf<Key | null>();
    expect(await declined).toBeNull();
    const absent = storage.readBytes(never, { error: false });
    expectTypeOf(absent).resolves.toEqualTypeOf<Buffer | null>();
    expect(await absent).toBeNull();
    expectTypeOf(storage.read(never, () => 1, { error: false })).resolves.toEqualTypeOf<number | null>();
    // options typed as plain WriteOptions may say either: the result may be null
    const options: WriteOptions = { labels: ['x'] };
    expectTypeOf(storage.write(Buffer.from('y'), options)).resolves.toEqualTypeOf<Key | null>();
  });

  it('a storage made with error: false: null in the types, unless a call asks for errors', async () => {
    const storage = new HashKeyStorage(tiny(), { error: false });
    expectTypeOf(storage).toEqualTypeOf<HashKeyStorage<false>>();
    const declined = storage.write(randomBytes(11));
    expectTypeOf(declined).resolves.toEqualTypeOf<Key | null>();
    expect(await declined).toBeNull();
    expectTypeOf(storage.readBytes(never)).resolves.toEqualTypeOf<Buffer | null>();
    expect(await storage.readBytes(never)).toBeNull();
    expect(await storage.read(never, () => 1)).toBeNull();
    const forced = storage.write(randomBytes(11), { error: true });
    expectTypeOf(forced).resolves.toEqualTypeOf<Key>();
    await expect(forced).rejects.toBeInstanceOf(WriteError);
    await expect(storage.readBytes(never, { error: true })).rejects.toBeInstanceOf(NotFoundError);
    // @ts-expect-error: a HashKeyStorage (of true) is one whose write gives a Key; this one's may give null
    const taken: HashKeyStorage = storage;
    const either: HashKeyStorage<boolean> = storage;
    expect(taken).toBe(either);
  });

  it('a mode known only at run time (a variable, a config file) is boolean: null in the types', async () => {
    const lenient = process.env.CAIRN_NEVER_SET === undefined ? false : true;
    const storage = new HashKeyStorage(tiny(), { error: lenient });
    expectTypeOf(storage).toEqualTypeOf<HashKeyStorage<boolean>>();
    expectTypeOf(storage.write(Buffer.from('z'))).resolves.toEqualTypeOf<Key | null>();
    expect(await storage.write(randomBytes(11))).toBeNull();
    expectTypeOf(HashKeyStorage.fromConfig).returns.resolves.toEqualTypeOf<HashKeyStorage<boolean>>();
    const strict = new HashKeyStorage(new Memory());
    // @ts-expect-error: a Key is not known to come out of a storage of either mode
    const key: Key = await storage.write(Buffer.from('z'));
    const wide: HashKeyStorage<boolean> = strict; // a default storage goes wherever either mode is accepted
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(wide).toBe(strict);
  });

  it('OrNull is the rule the methods follow', () => {
    expectTypeOf<OrNull<Key, true>>().toEqualTypeOf<Key>();
    expectTypeOf<OrNull<Key, false>>().toEqualTypeOf<Key | null>();
    expectTypeOf<OrNull<Key, boolean>>().toEqualTypeOf<Key | null>();
  });
});

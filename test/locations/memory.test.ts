import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, Memory } from '../../src/index.js';
import { bytesSource, locationConformance, sha256, expectStored } from '../conformance.js';

locationConformance({ name: 'Memory', create: () => new Memory() });

describe('Memory', () => {
  it('evicts the least recently used values to stay under maxSize', async () => {
    const memory = new Memory({ maxSize: 3000 });
    const values = [randomBytes(1000), randomBytes(1000), randomBytes(1000)];
    const keys = values.map((value) => sha256(value));
    for (let i = 0; i < 3; i++) await expectStored(memory.write(keys[i]!, bytesSource(values[i]!)), keys[i]!);
    await memory.read(keys[0]!); // now keys[1] is the least recently used
    const extra = randomBytes(1000);
    await expectStored(memory.write(sha256(extra), bytesSource(extra)), sha256(extra));
    expect(await memory.read(keys[1]!)).toBeNull();
    expect(await memory.read(keys[0]!)).not.toBeNull();
    expect(memory.size).toBe(3000);
  });

  it('has() and a read that is not a use leave the eviction order as it was', async () => {
    const memory = new Memory({ maxSize: 2000 });
    const values = [randomBytes(1000), randomBytes(1000)];
    const keys = values.map((value) => sha256(value));
    for (let i = 0; i < 2; i++) await expectStored(memory.write(keys[i]!, bytesSource(values[i]!)), keys[i]!);
    expect(await memory.has(keys[0]!)).toBe(true);
    expect((await (await memory.read(keys[0]!, { use: false }))!.bytes()).equals(values[0]!)).toBe(true);
    const extra = randomBytes(1000);
    await expectStored(memory.write(sha256(extra), bytesSource(extra)), sha256(extra));
    // keys[0] is still the least recently used: it went, keys[1] stayed
    expect(await memory.has(keys[0]!)).toBe(false);
    expect(await memory.has(keys[1]!)).toBe(true);
  });

  it('declines a value larger than maxSize without evicting anything', async () => {
    const memory = new Memory({ maxSize: '1KiB' });
    const small = randomBytes(500);
    await memory.write(sha256(small), bytesSource(small));
    const big = randomBytes(1025);
    expect(await memory.write(sha256(big), bytesSource(big))).toBeNull();
    expect(await memory.read(sha256(small))).not.toBeNull();
  });

  it('declines writes while the machine uses more memory than maxUsage', async () => {
    const memory = new Memory({ maxUsage: 0 });
    const bytes = randomBytes(10);
    expect(await memory.write(sha256(bytes), bytesSource(bytes))).toBeNull();
  });

  it('keeps its own copy: changing the caller buffer or a read buffer changes nothing stored', async () => {
    const memory = new Memory();
    const bytes = randomBytes(64);
    const original = Buffer.from(bytes);
    const key = sha256(bytes);
    await memory.write(key, bytesSource(bytes));
    bytes.fill(0);
    (await memory.readBytes(key))!.fill(1);
    expect((await memory.readBytes(key))!.equals(original)).toBe(true);
  });

  it('rejects bad limits with ConfigError', () => {
    expect(() => new Memory({ maxUsage: -1 })).toThrow(ConfigError);
    expect(() => new Memory({ maxSize: 'lots' })).toThrow(ConfigError);
  });
});

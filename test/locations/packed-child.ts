/**
 * A child process of the packed tests: `write <dir> <prefix> <count> <fsync> <inFlight>` writes
 * values `<prefix>-<i>` and prints `<i> <key>` once each write is acknowledged (killed at a random
 * moment by the test); `read <dir> <key>...` prints `<key> <ok|missing>` for each key.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Packed } from '../../src/index.js';

const [command, dir, ...rest] = process.argv.slice(2);
const valueOf = (prefix: string, i: number) => Buffer.from(`${prefix}-${i}-`.repeat(200));

if (command === 'write') {
  const [prefix, count, fsync, inFlight] = rest as [string, string, string, string];
  const packed = new Packed(dir!, { fsync: fsync === 'true' });
  let next = 0;
  await Promise.all(
    Array.from({ length: Number(inFlight) }, async () => {
      while (next < Number(count)) {
        const i = next++;
        const bytes = valueOf(prefix, i);
        const key = createHash('sha256').update(bytes).digest('hex');
        const source = { size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes };
        if (await packed.write(key, source, [prefix])) process.stdout.write(`${i} ${key}\n`);
      }
    }),
  );
  await packed.close();
} else if (command === 'read') {
  const packed = new Packed(dir!);
  for (const key of rest) process.stdout.write(`${key} ${(await packed.readBytes(key)) === null ? 'missing' : 'ok'}\n`);
  await packed.close();
}

/**
 * A soak writer: writes values of every size (bytes, streams, files), rewrites seeded values that
 * gc wants to evict, and values other writers write too, each with labels of its own; prints
 * `<key> <label,label>` once a write is acknowledged. Runs until killed (or `count` writes).
 */
import { Readable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HashKeyStorage } from '../../../src/index.js';
import { seedSize, SIZES, valueOf } from '../values.js';

const [root, id, seeded, count] = process.argv.slice(2) as [string, string, string, string | undefined];
const storage = new HashKeyStorage(root);
const seededCount = Number(seeded);
const limit = count === undefined ? Infinity : Number(count);
let random = Number.parseInt(id, 36) * 7919 + 17;
const next = (n: number) => ((random = (random * 48271) % 2147483647), random % n);

for (let n = 0; n < limit; n++) {
  const labels = [`w${id}`, `w${id}-${n}`];
  const roll = next(10);
  let value: Buffer;
  if (roll < 5 && seededCount > 0) {
    const i = next(seededCount);
    value = valueOf(`seed-${i}`, seedSize(i)); // what gc is evicting right now
  } else if (roll < 7) value = valueOf(`shared-${next(16)}`, SIZES[next(SIZES.length)]!); // other writers write it too
  else value = valueOf(`${id}-${n}`, SIZES[next(SIZES.length)]!);
  const how = next(3);
  let key: string | null;
  if (how === 0 || value.length < 100_000) key = await storage.write(value, { labels });
  else if (how === 1) key = await storage.write(Readable.from([value.subarray(0, 1000), value.subarray(1000)]), { labels });
  else {
    const file = join(root, '..', `input-${id}-${n}`);
    writeFileSync(file, value);
    key = await storage.write(file, { labels });
  }
  process.stdout.write(`${key} ${labels.join(',')}\n`);
}

/**
 * A soak labeller: writes the same few values as every other labeller, each time with a label of
 * its own, and prints `<key> <label>` once acknowledged. Runs until killed (or `count` writes).
 */
import { HashKeyStorage } from '../../../src/index.js';
import { valueOf } from '../values.js';

const [root, id, count] = process.argv.slice(2) as [string, string, string | undefined];
const storage = new HashKeyStorage(root);
const values = [valueOf('labelled-0', 100), valueOf('labelled-1', 5000), valueOf('labelled-2', 200_000)];
for (let n = 0; n < (count === undefined ? Infinity : Number(count)); n++) {
  const label = `l${id}-${n}`;
  const key = await storage.write(values[n % values.length]!, { labels: [label] });
  process.stdout.write(`${key} ${label}\n`);
}

/**
 * A writer process for the durability tests: sets entries into a store with a memory tier over
 * one filesystem tier, `lanes` at a time, and prints each entry's index once its set resolved.
 * Usage: tsx child-writer.ts <dir> <prefix> <count> [lanes]
 */
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';
import { valueFor } from './values.js';

const [dir, prefix, countText, lanesText] = process.argv.slice(2);
const count = Number(countText);
const lanes = Number(lanesText ?? 8);
const store = await TierKV.open({
  name: 'shared',
  resources: [new ResourceMemory({ limit: '64KB' }), new ResourceFilesystem({ path: dir!, limit: 0.99, compression: true })],
});
let next = 0;
await Promise.all(
  Array.from({ length: lanes }, async () => {
    while (next < count) {
      const i = next++;
      await store.set([prefix!, String(i)], valueFor(prefix!, i));
      process.stdout.write(`${i}\n`);
    }
  }),
);
await store.close();
process.stdout.write('done\n');

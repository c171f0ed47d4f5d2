/**
 * A writer that is killed at a random moment by the durability tests: awaits each set one by one
 * (as the notebook's loop does), small and large values mixed, and prints each index once its
 * set resolved. Usage: tsx child-killed.ts <dir> <prefix> <count> <durability>
 */
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';
import { valueFor } from './values.js';

const [dir, prefix, countText, durability] = process.argv.slice(2);
const store = await TierKV.open({
  name: 'killed',
  resources: [new ResourceMemory({ limit: '64KB' }), new ResourceFilesystem({ path: dir!, durability: durability as 'process' | 'power' })],
});
process.stdout.write('open\n');
for (let i = 0; i < Number(countText); i++) {
  // replacing earlier entries too: a replace frees a blob, another place a kill can land
  const j = i % 3 === 2 ? i - 2 : i;
  await store.set([prefix!, String(j)], valueFor(prefix!, i));
  process.stdout.write(`${j} ${i}\n`);
}
await store.close();
process.stdout.write('done\n');

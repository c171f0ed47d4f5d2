/**
 * A writer with durability 'exit' (the seed's semantics) that ends without closing its store:
 * `exit` calls process.exit, `signal` waits for the test's SIGTERM or SIGINT (Node's default
 * action for both is to end the process, which the store keeps), `throw` dies of an uncaught error.
 * Prints `acked <count>` once every set has resolved. Usage: tsx child-exit.ts <dir> <count> <ending>
 */
import { ResourceFilesystem, ResourceMemory, TierKV } from '../../src/storage/tierkv/index.js';
import { valueFor } from './values.js';

const [dir, countText, ending] = process.argv.slice(2);
const store = await TierKV.open({
  name: 'exit',
  resources: [new ResourceMemory(), new ResourceFilesystem({ path: dir!, durability: 'exit', compression: true })],
});
const count = Number(countText);
for (let i = 0; i < count; i++) await store.set(['E', String(i)], valueFor('E', i));
process.stdout.write(`acked ${count}\n`);
if (ending === 'exit') process.exit(3);
if (ending === 'throw') throw new Error('the writer fails after its sets');
setInterval(() => {}, 1000); // 'signal': alive until the test's signal ends it

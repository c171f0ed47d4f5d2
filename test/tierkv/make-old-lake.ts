/**
 * Writes the TierKV folder of fixtures/tierkv-0.1 (run once, with release 0.1's code, to make the
 * fixture that old-lake.test.ts opens): `tsx make-old-lake.ts <path> commit`, then
 * `tsx make-old-lake.ts <path> kill` (its sets stay in its journal: it kills itself with SIGKILL
 * before the event loop turns to fold them).
 */
import { ResourceFilesystem, TierKV } from '../../src/storage/tierkv/index.js';
import { committedSets, DELETED, journaledSets, OLD_LAKE_STORE } from './old-lake-contents.js';

const [path, phase] = process.argv.slice(2);
const store = await TierKV.open({
  name: OLD_LAKE_STORE,
  resources: [new ResourceFilesystem({ path: path!, durability: 'process', compression: 'gzip' })],
});
if (phase === 'commit') {
  for (const [tags, value] of committedSets()) await store.set(tags, value);
  await store.delete(DELETED);
  await store.close();
} else {
  for (const [tags, value] of journaledSets()) await store.set(tags, value);
  process.kill(process.pid, 'SIGKILL');
}

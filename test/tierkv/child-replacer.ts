/**
 * A process of the replace-and-read test: replaces entries ['R', j] (j < entries) with values
 * larger than the inline limit (Disk blobs) and reads random entries back, `rounds` times, with
 * other processes doing the same. Every value read must be one that some process wrote for that
 * entry (its first bytes say which). Prints `ok <reads>` or the first failure, and exits 0 or 1.
 * Usage: tsx child-replacer.ts <dir> <process number> <rounds> <entries>
 */
import { ResourceFilesystem, TierKV } from '../../src/storage/tierkv/index.js';
import { replacement } from './values.js';

const [dir, who, roundsText, entriesText] = process.argv.slice(2);
const rounds = Number(roundsText);
const entries = Number(entriesText);
const store = await TierKV.open({ name: 'race', resources: [new ResourceFilesystem({ path: dir!, compression: false })] });
let reads = 0;
try {
  for (let round = 0; round < rounds; round++) {
    const j = (round * 7 + Number(who)) % entries;
    await store.set(['R', String(j)], replacement(j, `${who}/${round}`));
    for (let k = 0; k < 8; k++) {
      const target = Math.floor(Math.random() * entries);
      for (const value of await store.getByKey(JSON.stringify([String(target), 'R'].sort()))) {
        const version = value.subarray(0, 32).toString('utf8').trim();
        if (!replacement(target, version).equals(value)) throw new Error(`entry ${target}: a value that no process wrote (version ${JSON.stringify(version)})`);
        reads++;
      }
    }
  }
  await store.close();
  process.stdout.write(`ok ${reads}\n`);
} catch (error) {
  process.stdout.write(`failed: ${(error as Error).stack}\n`);
  process.exit(1);
}

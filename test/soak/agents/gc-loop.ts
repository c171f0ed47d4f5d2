/**
 * A soak gc: collects the lake again and again, evicting every blob not used in the last hour (the
 * seeded ones) at once, with no grace: only the writers' pins keep their writes. Runs until killed.
 */
import { gc } from '../../../src/storage/maintenance/gc.js';

process.stdout.write('ready\n');

const [root, rounds] = process.argv.slice(2) as [string, string | undefined];
const limit = rounds === undefined ? Infinity : Number(rounds);
for (let round = 0; round < limit; round++) {
  const report = await gc(root, { olderThan: '1h', keepRecent: 0, graceMs: round % 3 });
  process.stdout.write(`${report.removed.length}\n`);
}

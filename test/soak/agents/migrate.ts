/** A soak migration between two lakes; killed at a random moment, then resumed by the test. */
import { migrate } from '../../../src/storage/maintenance/migrate.js';

process.stdout.write('ready\n');

const [from, to, threads] = process.argv.slice(2) as [string, string, string];
const report = await migrate(from, to, { threads: Number(threads), jobs: 8 });
process.stdout.write(`${JSON.stringify(report)}\n`);

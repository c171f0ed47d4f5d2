#!/usr/bin/env node
/**
 * The `cairn` command. Exit codes: 0 ok, 1 failure (an error, corrupted blobs, failed copies),
 * 2 usage (unknown command or option, missing argument, no lake).
 */
import { CairnError } from '../errors.js';
import { init, ls, read, write } from './commands/data.js';
import { du, gc, migrate, stats, verify } from './commands/maintenance.js';
import { UsageError } from './context.js';

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { init, write, read, ls, du, verify, gc, migrate, stats };

const HELP = `cairn: a content-addressed datalake

  cairn init <dir> [--group G]                 make a Disk lake (tarn's layout)
  cairn write <files…> [--labels a,b]          store files (\`-\`: stdin); prints one key per file
  cairn read <key> [-o FILE]                   a value to stdout or a file
  cairn ls [--labels x] [--json]               keys, sizes, last use, labels
  cairn du                                     bytes and counts per location
  cairn verify [--jobs 4]                      re-hash every blob; quarantine mismatches
  cairn gc [--max-size 500GB] [--max-count N] [--older-than 30d] [--dry-run]
  cairn migrate [--from LAKE] --to LAKE [--jobs 8]
  cairn stats [--reset]                        hits, misses, bytes, errors saved by programs

The lake: --lake DIR, or --config FILE, or the nearest cairn.config.yaml|yml|json, or $CAIRN_LAKE.
du and gc on a smartCache folder: --cache DIR (or --lake DIR holding index.sqlite): entries by function.
Every command takes --json (output for scripts) and --quiet (no progress).
Exit codes: 0 ok, 1 failure, 2 usage.
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version') {
    process.stdout.write('cairn 0.1.0\n');
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`cairn: unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    return await run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`cairn ${command}: ${error.message}\n`);
      return 2;
    }
    const code = error instanceof CairnError ? ` [${error.code}]` : '';
    process.stderr.write(`cairn ${command}: ${(error as Error).message ?? error}${code}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));

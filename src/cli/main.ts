#!/usr/bin/env node
/**
 * The `cairn` command. Exit codes: 0 ok, 1 failure (an error, corrupted blobs, failed copies),
 * 2 usage (unknown command or option, missing argument, no lake).
 */
import { readFileSync } from 'node:fs';
import { CairnError } from '../errors.js';
import { init, ls, read, write } from './commands/data.js';
import { du, gc, migrate, stats, verify } from './commands/maintenance.js';
import { completionScript } from './completion.js';
import { UsageError } from './context.js';
import { commandHelp, globalHelp, nearest } from './help.js';
import { COMMAND_SPECS, specOf } from './spec.js';

async function completion(args: string[]): Promise<number> {
  process.stdout.write(completionScript(args[0]));
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = { init, write, read, ls, du, verify, gc, migrate, stats, completion };

/** The package's version, from its package.json (two folders up from src/cli/ and from dist/cli/ alike). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return `cairn ${pkg.version} (${pkg.name})\n`;
}

/** Whether `args` ask for help before any `--` (after it, `--help` is a file name). */
function asksHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) {
    process.stderr.write(globalHelp());
    return 2;
  }
  if (command === '--help' || command === '-h') {
    process.stdout.write(globalHelp());
    return 0;
  }
  if (command === 'help') {
    const spec = args[0] === undefined ? undefined : specOf(args[0]);
    if (args[0] !== undefined && !spec) return unknown(args[0]);
    process.stdout.write(spec ? commandHelp(spec) : globalHelp());
    return 0;
  }
  if (command === '--version' || command === '-V') {
    process.stdout.write(version());
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) return unknown(command);
  if (asksHelp(args)) {
    process.stdout.write(commandHelp(specOf(command)!));
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

function unknown(command: string): number {
  const guess = nearest(command, COMMAND_SPECS.map((spec) => spec.name));
  const hint = guess ? `Did you mean \`cairn ${guess}\`?` : 'Run `cairn --help` for the commands.';
  process.stderr.write(`cairn: unknown command "${command}". ${hint}\n`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, UsageError } from '../../src/cli/context.js';
import { COMMAND_SPECS, optionsOf } from '../../src/cli/spec.js';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { cairn } from './run.js';
import { onTerminal } from './terminal.js';

afterAll(cleanup);

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
/** What a terminal shows, with its line ends as a file has them. */
const lines = (shown: string) => shown.replace(/\r\n/g, '\n');

describe('cairn --help and cairn <command> --help', () => {
  it('each command has its own help on a terminal, listing every option and short flag it accepts', () => {
    const helps = new Set<string>();
    for (const spec of COMMAND_SPECS) {
      const run = onTerminal([spec.name, '--help']);
      expect(run.code).toBe(0);
      const help = lines(run.shown);
      expect(help).toContain(`Usage: cairn ${spec.name}`);
      for (const option of optionsOf(spec)) {
        expect(help).toContain(`--${option.name}`);
        if (option.short) expect(help).toContain(`-${option.short}, --${option.name}`);
      }
      helps.add(help);
    }
    expect(helps.size).toBe(COMMAND_SPECS.length);
  });

  it('the options the issue found hidden are listed by their commands', async () => {
    const help = async (command: string) => (await cairn([command, '-h'])).stdout;
    expect(await help('migrate')).toMatch(/-j, --jobs N[\s\S]*--threads N[\s\S]*--fsync/);
    expect(await help('gc')).toMatch(/--keep-recent AGE[\s\S]*--tmp-age AGE[\s\S]*-n, --dry-run/);
    expect(await help('init')).toContain('--levels LIST');
    expect(await help('read')).toContain('-o, --output FILE');
    expect(await help('verify')).toContain('-j, --jobs N');
    expect(await help('ls')).toMatch(/-l, --lake DIR[\s\S]*-c, --config FILE[\s\S]*-q, --quiet/);
    expect((await cairn(['help', 'gc'])).stdout).toBe(await help('gc'));
  });

  it('every option in a help is accepted by the parser, with its short flag', () => {
    for (const spec of COMMAND_SPECS) {
      for (const option of optionsOf(spec)) {
        for (const flag of [`--${option.name}`, ...(option.short ? [`-${option.short}`] : [])]) {
          const { values } = parse([flag, ...(option.arg ? ['x'] : [])], spec.name);
          expect(values[option.name], `${spec.name} ${flag}`).toBe(option.arg ? 'x' : true);
        }
      }
      expect(() => parse(['--not-an-option'], spec.name)).toThrow(UsageError);
    }
  });

  it('the global help lists every command; no command prints it as its own help', async () => {
    const run = await cairn(['--help']);
    expect(run.code).toBe(0);
    for (const spec of COMMAND_SPECS) expect(run.stdout).toMatch(new RegExp(`^  ${spec.name}\\b`, 'm'));
    expect((await cairn(['write', '--help'])).stdout).not.toBe(run.stdout);
    const bare = await cairn([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toBe(run.stdout);
  });
});

describe('cairn --version, unknown commands and options', () => {
  it('--version and -V print the version of the package', () => {
    for (const flag of ['--version', '-V']) {
      const run = onTerminal([flag]);
      expect(run.code).toBe(0);
      expect(lines(run.shown)).toBe(`cairn ${pkg.version} (${pkg.name})\n`);
    }
  });

  it('an unknown command or option suggests the nearest one, exit code 2', async () => {
    const typo = await cairn(['verfy']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('Did you mean `cairn verify`?');
    expect((await cairn(['migarte'])).stderr).toContain('`cairn migrate`');
    const far = await cairn(['frobnicate']);
    expect(far.code).toBe(2);
    expect(far.stderr).not.toContain('Did you mean');
    const option = await cairn(['gc', '--dryrun']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('did you mean --dry-run?');
  });
});

describe('cairn completion', () => {
  /** What bash completes for the words typed so far (the last one being completed). */
  function complete(script: string, words: string[]): string[] {
    const program = `${script}\nCOMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _cairn; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const run = spawnSync('bash', ['-c', program], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    return run.stdout.split('\n').filter(Boolean);
  }

  it('bash: completes command names and each command\'s own options', () => {
    const run = onTerminal(['completion', 'bash']);
    expect(run.code).toBe(0);
    const script = lines(run.shown);
    expect(complete(script, ['cairn', 'mi'])).toEqual(['migrate']);
    expect(complete(script, ['cairn', 'gc', '--k'])).toEqual(['--keep-recent']);
    expect(complete(script, ['cairn', 'migrate', '--t'])).toEqual(['--to', '--threads']);
    expect(complete(script, ['cairn', 'ls', '--t'])).toEqual([]);
  });

  it('zsh and fish: every command and option is in the script; another shell is a usage error', async () => {
    const zsh = (await cairn(['completion', 'zsh'])).stdout;
    const fish = (await cairn(['completion', 'fish'])).stdout;
    expect(zsh).toMatch(/^#compdef cairn/);
    for (const spec of COMMAND_SPECS) {
      expect(zsh).toContain(`    ${spec.name}) compadd -- ${optionsOf(spec).map((o) => `--${o.name}${o.short ? ` -${o.short}` : ''}`).join(' ')} ;;`);
      for (const option of optionsOf(spec)) expect(fish).toContain(`"__fish_seen_subcommand_from ${spec.name}" -l ${option.name}`);
    }
    const bad = await cairn(['completion', 'powershell']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('bash|zsh|fish');
  });
});

describe('cairn init', () => {
  it('prints the next command, naming the lake, and that command works', async () => {
    const dir = tempDir();
    const run = await cairn(['init', 'my lake'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Next: cairn write FILE --lake 'my lake'");
    const exported = /export CAIRN_LAKE=('[^']+'|\S+)/.exec(run.stdout)![1]!;
    expect(exported).toBe(`'${join(dir, 'my lake')}'`);
    const written = await cairn(['write', '-', '--lake', 'my lake'], { cwd: dir, input: 'next step' });
    expect(written.code).toBe(0);
    expect(written.stdout).toMatch(/^[0-9a-f]{64}\n$/);
  });
});

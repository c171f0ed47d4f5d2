/** `cairn --help`, `cairn <command> --help` and the suggestion for a mistyped command, from the tables of spec.ts. */
import { COMMAND_SPECS, optionsOf, type CommandSpec, type OptionSpec } from './spec.js';

function flag(option: OptionSpec): string {
  const long = `--${option.name}${option.arg ? ' ' + option.arg : ''}`;
  return option.short ? `-${option.short}, ${long}` : `    ${long}`;
}

function columns(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`).join('\n');
}

export function commandHelp(spec: CommandSpec): string {
  const usage = `cairn ${spec.name}${spec.args ? ' ' + spec.args : ''} [options]`;
  const own = spec.options.map((option): [string, string] => [flag(option), option.description]);
  const common = optionsOf(spec)
    .slice(spec.options.length)
    .map((option): [string, string] => [flag(option), option.description]);
  const sections = [`Usage: ${usage}\n\n${spec.summary}\n`];
  if (own.length > 0) sections.push(`Options:\n${columns(own)}\n`);
  sections.push(`Common options:\n${columns(common)}\n`);
  return sections.join('\n');
}

export function globalHelp(): string {
  const rows = COMMAND_SPECS.map((spec): [string, string] => [`${spec.name}${spec.args ? ' ' + spec.args : ''}`, spec.summary]);
  return `cairn: a content-addressed datalake

Usage: cairn <command> [options]

Commands:
${columns(rows)}

\`cairn <command> --help\` lists a command's options.
The lake: --lake DIR, or --config FILE, or the nearest cairn.config.yaml|yml|json, or $CAIRN_LAKE.
Every command takes --json (output for scripts) and --quiet (no progress).
  -V, --version  the version
Exit codes: 0 ok, 1 failure, 2 usage.
`;
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name nearest to `typed`, or null when none is close enough to be what was meant. */
export function nearest(typed: string, names: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const name of names) {
    const d = name.startsWith(typed) && typed.length >= 2 ? 0.5 : distance(typed.toLowerCase(), name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return bestDistance <= Math.max(1, Math.floor((best?.length ?? 0) / 3)) ? best : null;
}

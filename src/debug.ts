/**
 * Debug output on stderr, off unless asked: `DEBUG=cairn:*` (the `debug` package's syntax:
 * names separated by commas or spaces, `*` as a wildcard, a leading `-` to leave one out), or
 * `CAIRN_LOG` with the same syntax, where `cairn:` may be left out and `1` or `all` means every one.
 * Namespaces: `cairn:levels`, `cairn:cache`, `cairn:cli`.
 */

export type DebugLog = ((message: string) => void) & { readonly enabled: boolean };

interface Pattern {
  include: RegExp[];
  exclude: RegExp[];
}

function compile(spec: string, prefix: string): Pattern {
  const pattern: Pattern = { include: [], exclude: [] };
  for (let name of spec.split(/[\s,]+/).filter(Boolean)) {
    const excluded = name.startsWith('-');
    if (excluded) name = name.slice(1);
    if (name === '1' || name === 'all' || name === 'true') name = '*';
    if (!name.includes(':') && name !== '*') name = prefix + name;
    const regex = new RegExp(`^${name.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    (excluded ? pattern.exclude : pattern.include).push(regex);
  }
  return pattern;
}

let patterns: Pattern[] | null = null;

/** Whether `namespace` (e.g. `cairn:levels`) is switched on by DEBUG or CAIRN_LOG. */
export function debugEnabled(namespace: string): boolean {
  patterns ??= [compile(process.env.DEBUG ?? '', ''), compile(process.env.CAIRN_LOG ?? '', 'cairn:')];
  return patterns.some((pattern) => pattern.include.some((regex) => regex.test(namespace)) && !pattern.exclude.some((regex) => regex.test(namespace)));
}

/** A logger for `cairn:<name>`; when it is off, calling it does nothing (check `.enabled` before building costly messages). */
export function debugLog(name: string): DebugLog {
  const namespace = `cairn:${name}`;
  const enabled = debugEnabled(namespace);
  const log = (message: string) => {
    if (enabled) process.stderr.write(`${namespace} ${message}\n`);
  };
  return Object.assign(log, { enabled });
}

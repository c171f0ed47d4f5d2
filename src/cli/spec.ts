/**
 * What each command accepts, as one table per command: the parser, `--help` and shell completion
 * all read these tables, so the help can never list an option the parser refuses or hide one it takes.
 */

export interface OptionSpec {
  name: string;
  short?: string;
  /** The argument's placeholder (`DIR`, `N`); none for a switch. */
  arg?: string;
  description: string;
}

export interface CommandSpec {
  name: string;
  /** The positional arguments, as the usage line shows them ('' for none). */
  args: string;
  /** Whether positional arguments are accepted at all. */
  positionals: boolean;
  summary: string;
  options: OptionSpec[];
}

/** Options every command takes. */
export const COMMON_OPTIONS: OptionSpec[] = [
  { name: 'lake', short: 'l', arg: 'DIR', description: 'the lake to work on: a Disk lake or a Packed store (made by `cairn init`)' },
  { name: 'config', short: 'c', arg: 'FILE', description: 'the storage a config file describes' },
  { name: 'group', arg: 'G', description: 'give new files and folders this group' },
  { name: 'json', description: 'one JSON document on stdout, no progress' },
  { name: 'quiet', short: 'q', description: 'no progress' },
  { name: 'help', short: 'h', description: 'this help' },
];

const JOBS = (fallback: number): OptionSpec => ({ name: 'jobs', short: 'j', arg: 'N', description: `operations in flight (default ${fallback})` });
const CACHE: OptionSpec = { name: 'cache', arg: 'DIR', description: 'a smartCache folder instead of a lake (entries by function)' };

export const COMMAND_SPECS: CommandSpec[] = [
  {
    name: 'init',
    args: '<dir>',
    positionals: true,
    summary: 'make a Disk lake (tarn\'s layout), or check an existing one',
    options: [
      { name: 'levels', arg: 'LIST', description: 'folder levels of the layout, e.g. 1,-1 (the default)' },
      { name: 'packed', description: 'make a Packed store instead (small values in one SQLite file)' },
    ],
  },
  {
    name: 'write',
    args: '<files…>',
    positionals: true,
    summary: 'store files (`-`: stdin); prints one key per file, in order',
    options: [{ name: 'labels', arg: 'LIST', description: 'labels to attach, comma-separated' }],
  },
  {
    name: 'read',
    args: '<key>',
    positionals: true,
    summary: 'a value to stdout or to a file',
    options: [{ name: 'output', short: 'o', arg: 'FILE', description: 'write to FILE (beside it, then renamed) instead of stdout' }],
  },
  {
    name: 'ls',
    args: '',
    positionals: false,
    summary: 'keys, sizes, last use, labels',
    options: [{ name: 'labels', arg: 'LIST', description: 'only keys that have all these labels' }],
  },
  { name: 'du', args: '', positionals: false, summary: 'bytes and counts per location', options: [CACHE] },
  {
    name: 'verify',
    args: '',
    positionals: false,
    summary: 're-hash every blob; quarantine mismatches',
    options: [JOBS(4)],
  },
  {
    name: 'gc',
    args: '',
    positionals: false,
    summary: 'evict least recently used blobs; remove stale temp files',
    options: [
      { name: 'max-size', arg: 'SIZE', description: 'evict until each local store holds at most SIZE (500GB, 2GiB)' },
      { name: 'max-count', arg: 'N', description: 'evict until each local store holds at most N values' },
      { name: 'older-than', arg: 'AGE', description: 'evict every blob not used for AGE (30d, 12h)' },
      { name: 'keep-recent', arg: 'AGE', description: 'never evict blobs used within AGE (default 1m)' },
      { name: 'tmp-age', arg: 'AGE', description: 'remove temp files untouched for AGE (default 1d)' },
      { name: 'dry-run', short: 'n', description: 'list what would go, remove nothing' },
      { name: 'plain-cache', arg: 'LIST', description: 'levels to evict from even when no lower level holds the value: `all`, or names/folders, comma-separated' },
      CACHE,
    ],
  },
  {
    name: 'migrate',
    args: '',
    positionals: false,
    summary: 'copy every key the target lacks (resumable)',
    options: [
      { name: 'from', arg: 'LAKE', description: 'the source: a lake folder or a config file (default: the configured lake)' },
      { name: 'to', arg: 'LAKE', description: 'the target: a lake folder (made if new) or a config file' },
      JOBS(8),
      { name: 'threads', arg: 'N', description: 'worker threads between two Disks (default: CPUs, at most 4)' },
      { name: 'fsync', description: 'fsync and mark each copy (slower; default: one flush at the end)' },
    ],
  },
  {
    name: 'stats',
    args: '',
    positionals: false,
    summary: 'hits, misses, bytes, errors saved by programs',
    options: [{ name: 'reset', description: 'remove the saved counters' }],
  },
  {
    name: 'completion',
    args: '<bash|zsh|fish>',
    positionals: true,
    summary: 'print a shell completion script',
    options: [],
  },
];

export function specOf(name: string): CommandSpec | undefined {
  return COMMAND_SPECS.find((spec) => spec.name === name);
}

/** A command's options, its own first, then the common ones. */
export function optionsOf(spec: CommandSpec): OptionSpec[] {
  return [...spec.options, ...COMMON_OPTIONS];
}

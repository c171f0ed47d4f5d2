/**
 * tarn's config.yml, at the root of every lake: the layout (`levels`), the tools (usage marks,
 * labels, a size counter) and the limits. Read the same way by every transport.
 */
import { stringify, parse } from 'yaml';
import { ConfigError } from '../../errors.js';
import { parseSize } from '../../size.js';
import { LakeLayout } from './layout.js';

/** tarn's lake config file name, at the root of a Disk lake. */
export const CONFIG_NAME = 'config.yml';

/** The parts of tarn's `config.yml` that cairn reads. Unknown keys are kept as they are. */
export interface LakeConfig {
  levels: number[];
  /** tarn's usage tracker: 'StatUsage' keeps a last-used mark per key under tools/usage. */
  usage: string | null;
  /** tarn's labels storage: 'JsonLabels' keeps a JSON list per key under tools/labels. */
  labels: string | null;
  maxSize: number | null;
  freeDiskSize: number;
  /** tarn's size tracker (`size:`), e.g. RedisSize: a byte count of the lake kept outside it; null for none. */
  size: ToolConfig | null;
}

/** A tool of tarn's config: its class name, and what its constructor is called with. */
export interface ToolConfig {
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
}

export const DEFAULT_LEVELS = [1, -1];
/** tarn's levels for a config that names its hash but no levels: one byte, then the rest of a sha256 digest. */
const HASH_DEFAULT_LEVELS = [1, 31];

function checkLevels(levels: unknown, file: string): number[] {
  const ok =
    Array.isArray(levels) &&
    levels.length > 0 &&
    levels.every((level, i) => Number.isInteger(level) && (level > 0 || (level === -1 && i === levels.length - 1))) &&
    levels.filter((level) => level !== -1).reduce((sum: number, level: number) => sum + level, 0) <= 32;
  if (!ok) throw new ConfigError(`${file}: "levels" must be a list of positive integers, optionally ending with -1, got ${JSON.stringify(levels)}`);
  // a layout without -1 must cover the whole sha256 digest
  const covered = (levels as number[]).reduce((sum, level) => sum + (level === -1 ? 0 : level), 0);
  if (!(levels as number[]).includes(-1) && covered !== 32) {
    throw new ConfigError(`${file}: "levels" ${JSON.stringify(levels)} must add up to 32 bytes (a sha256 digest) or end with -1`);
  }
  return levels as number[];
}

function toolName(value: unknown, field: string, file: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as { name?: unknown }).name === 'string') return (value as { name: string }).name;
  throw new ConfigError(`${file}: "${field}" must be a tool name, got ${JSON.stringify(value)}`);
}

/** A tool given as a mapping (`{name, args, kwargs}`), as tarn's ToolConfig reads it; `size` takes no bare name in tarn. */
function toolConfig(value: unknown, field: string, file: string): ToolConfig | null {
  if (value === undefined || value === null) return null;
  const raw = value as { name?: unknown; args?: unknown; kwargs?: unknown };
  const ok =
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof raw.name === 'string' &&
    (raw.args === undefined || raw.args === null || Array.isArray(raw.args)) &&
    (raw.kwargs === undefined || raw.kwargs === null || (typeof raw.kwargs === 'object' && !Array.isArray(raw.kwargs)));
  if (!ok) throw new ConfigError(`${file}: "${field}" must be a mapping with a name, and optionally args (a list) and kwargs (a mapping), got ${JSON.stringify(value)}`);
  return { name: raw.name as string, args: (raw.args as unknown[] | null) ?? [], kwargs: (raw.kwargs as Record<string, unknown> | null) ?? {} };
}

/** Parses the text of a config.yml (`file` names it in errors): remote lakes read theirs over the network. */
export function parseLakeConfig(text: string, file: string): LakeConfig {
  let raw: Record<string, unknown>;
  try {
    raw = (parse(text) ?? {}) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`${file} is not valid YAML`, { cause: error });
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file} must hold a mapping`);
  if (raw.hash !== undefined && raw.hash !== null) {
    const name = toolName(raw.hash, 'hash', file);
    if (name !== 'sha256') throw new ConfigError(`${file}: the lake uses the hash "${name}"; cairn supports sha256 only`);
  }
  const hashed = raw.hash !== undefined && raw.hash !== null;
  return {
    levels: raw.levels === undefined || raw.levels === null ? (hashed ? HASH_DEFAULT_LEVELS : DEFAULT_LEVELS) : checkLevels(raw.levels, file),
    usage: toolName(raw.usage, 'usage', file),
    labels: toolName(raw.labels, 'labels', file),
    maxSize: raw.max_size === undefined || raw.max_size === null ? null : parseSize(raw.max_size as number, `${file}: max_size`),
    freeDiskSize: raw.free_disk_size === undefined ? 0 : parseSize(raw.free_disk_size as number, `${file}: free_disk_size`),
    size: toolConfig(raw.size, 'size', file),
  };
}

/** The text of a new tarn-style config.yml with these levels (keys sorted, defaults left out). */
export function lakeConfigText(levels: number[]): string {
  checkLevels(levels, CONFIG_NAME);
  return stringify({ labels: 'JsonLabels', levels, usage: 'StatUsage' });
}

/** What a lake's location needs from its config.yml. */
export interface LakeSettings {
  layout: LakeLayout;
  /** tarn's JsonLabels: labels are kept per key. */
  keepLabels: boolean;
  /** tarn's StatUsage: a last-used mark is kept per key. */
  keepUsage: boolean;
}

/** Reads a config.yml's text (`where` names it in errors); `levels`, when given, must agree with it. */
export function lakeSettings(text: string, where: string, levels: readonly number[] | undefined): LakeSettings {
  const config = parseLakeConfig(text, where);
  if (levels && JSON.stringify(levels) !== JSON.stringify(config.levels)) {
    throw new ConfigError(`The levels option ${JSON.stringify(levels)} does not match ${JSON.stringify(config.levels)} in ${where}`);
  }
  return { layout: new LakeLayout(config.levels), keepLabels: config.labels === 'JsonLabels', keepUsage: config.usage === 'StatUsage' };
}

/**
 * The kinds of location a config file can name. Each built-in kind lives beside its location
 * (`src/locations/*-kind.ts`), with a table of every option checked against the location's options
 * interface at compile time. The remote ones import their location (and so ioredis, the AWS SDK,
 * ssh2, undici) only when a config uses them.
 */
import { diskKind } from '../locations/disk/disk-kind.js';
import { fanoutKind } from '../locations/compose/fanout-kind.js';
import { levelsKind } from '../locations/compose/levels-kind.js';
import { memoryKind } from '../locations/memory-kind.js';
import { nginxKind } from '../locations/http/nginx-kind.js';
import { packedKind } from '../locations/packed/packed-kind.js';
import { redisKind } from '../locations/redis/redis-kind.js';
import { s3Kind } from '../locations/s3/s3-kind.js';
import { scpKind } from '../locations/ssh/scp-kind.js';
import { sftpKind } from '../locations/ssh/sftp-kind.js';
import { smallKind } from '../locations/compose/small-kind.js';
import type { LocationFactory, LocationKind } from './kind.js';

export type { BuildContext, LocationFactory, LocationKind } from './kind.js';

/** The kinds cairn knows without `registerLocationKind`, in the order the docs list them. */
export const BUILT_IN_KINDS: readonly LocationKind[] = [
  diskKind, memoryKind, fanoutKind, levelsKind, smallKind, packedKind, redisKind, s3Kind, sftpKind, scpKind, nginxKind,
];

interface Registered {
  factory: LocationFactory;
  /** Sibling keys this kind accepts beside its own. */
  siblings: readonly string[];
}

const kinds = new Map<string, Registered>();

/**
 * Adds a kind of location to config files (`<name>: …`). `siblings` names the fields it reads
 * beside its key in the same mapping (any other field there is an error).
 */
export function registerLocationKind(name: string, factory: LocationFactory, siblings: readonly string[] = []): void {
  kinds.set(name, { factory, siblings });
}

for (const kind of BUILT_IN_KINDS) registerLocationKind(kind.name, kind.build, Object.keys(kind.siblings ?? {}));

export function locationKinds(): string[] {
  return [...kinds.keys()];
}

export function kindOf(name: string): Registered | undefined {
  return kinds.get(name);
}

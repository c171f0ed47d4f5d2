import { isAbsolute, resolve } from 'node:path';
import { Disk, type DiskOptions } from '../locations/disk.js';
import { Fanout } from '../locations/fanout.js';
import type { Location } from '../locations/interface.js';
import { Level, type LevelOptions, Levels } from '../locations/levels.js';
import { Memory, type MemoryOptions } from '../locations/memory.js';
import { Small } from '../locations/small.js';
import type { ConfigNode } from './node.js';
import { building, type FieldType, fieldValue, readOptions, stringValue } from './values.js';

/** What a factory gets: the node of its kind (`disk: …`), and how to build nested locations. */
export interface BuildContext {
  /** The folder of the config file: relative paths are relative to it. */
  dir: string;
  env: NodeJS.ProcessEnv;
  /**
   * Builds a nested location node. `extra` names the fields its parent reads beside the kind key
   * (a level's `write`, `touch`…); any other field there is an error.
   */
  build(node: ConfigNode, extra?: readonly string[]): Promise<Location>;
  /** Siblings of the kind key in the same mapping (e.g. `maxSize` beside `small`). */
  siblings: Map<string, ConfigNode>;
}

/** Builds one kind of location from its config node. */
export type LocationFactory = (node: ConfigNode, context: BuildContext) => Promise<Location>;

interface Kind {
  factory: LocationFactory;
  /** Sibling keys this kind accepts beside its own. */
  siblings: readonly string[];
}

const kinds = new Map<string, Kind>();

/**
 * Adds a kind of location to config files (`<name>: …`). Remote kinds are registered this way,
 * each importing its module only when a config uses it.
 */
export function registerLocationKind(name: string, factory: LocationFactory, siblings: readonly string[] = []): void {
  kinds.set(name, { factory, siblings });
}

export function locationKinds(): string[] {
  return [...kinds.keys()];
}

export function kindOf(name: string): Kind | undefined {
  return kinds.get(name);
}

const DISK_FIELDS: Record<string, FieldType> = {
  path: 'string', levels: 'numbers', maxSize: 'size', minFree: 'size', maxUsage: 'number', fsync: 'boolean',
  verifyReads: 'boolean', touchInterval: 'number', syncSmallIo: 'boolean', group: 'string|number', groupWritable: 'boolean', markOnWrite: 'boolean',
};
const RETRY: FieldType = { attempts: 'number', baseDelayMs: 'number', maxDelayMs: 'number' };
const SSH_FIELDS: Record<string, FieldType> = {
  host: 'string', root: 'string', port: 'number', username: 'string', privateKey: 'string', passphrase: 'string',
  password: 'string', agent: 'string', knownHosts: 'string', hostKeyFingerprint: 'string', acceptUnknownHostKey: 'boolean',
  timeoutMs: 'number', retry: RETRY, maxChannels: 'number', levels: 'numbers',
};

function localPath(value: string, context: BuildContext): string {
  return isAbsolute(value) ? value : resolve(context.dir, value);
}

/** A kind whose node is a string (the main argument) or a mapping of options with that argument as `field`. */
function argAndOptions(node: ConfigNode, field: string, fields: Record<string, FieldType>, env: NodeJS.ProcessEnv) {
  if (node.isScalar && !node.isNull) return { arg: stringValue(node, env), options: {} as Record<string, unknown> };
  const options = node.isNull ? {} : readOptions(node, fields, env);
  const arg = options[field] as string | undefined;
  delete options[field];
  return { arg, options };
}

registerLocationKind('disk', async (node: ConfigNode, context: BuildContext) => {
  const { arg, options } = argAndOptions(node, 'path', DISK_FIELDS, context.env);
  if (arg === undefined) node.fail('a Disk needs a folder: `disk: /path/to/lake` or `disk: { path: … }`');
  return building(node, () => new Disk(localPath(arg, context), options as DiskOptions));
});

// `packed: DIR` or `packed: { path: DIR, fsync, maxSize, lockTimeout }`: small values in one SQLite file (docs/locations/packed.md)
registerLocationKind('packed', async (node: ConfigNode, context: BuildContext) => {
  const { arg, options } = argAndOptions(node, 'path', { path: 'string', fsync: 'boolean', maxSize: 'size', lockTimeout: 'number' }, context.env);
  if (arg === undefined) node.fail('a Packed store needs a folder: `packed: /path/to/store` or `packed: { path: … }`');
  const { Packed } = await import('../locations/packed.js');
  return building(node, () => new Packed(localPath(arg, context), options));
});

registerLocationKind('memory', async (node: ConfigNode, context: BuildContext) => {
  const options = node.isNull ? {} : readOptions(node, { maxSize: 'size', maxUsage: 'number' }, context.env);
  return building(node, () => new Memory(options as MemoryOptions));
});

registerLocationKind('fanout', async (node: ConfigNode, context: BuildContext) => {
  const items = await Promise.all(node.items().map((item) => context.build(item)));
  return new Fanout(...items);
});

registerLocationKind(
  'small',
  async (node: ConfigNode, context: BuildContext) => {
    const maxSize = context.siblings.get('maxSize');
    if (!maxSize) node.fail('`small` needs `maxSize` beside it, e.g. `{ small: { memory: {} }, maxSize: 100KiB }`');
    const inner = await context.build(node);
    const size = typeof maxSize.scalar === 'number' ? maxSize.scalar : stringValue(maxSize, context.env);
    return building(maxSize, () => new Small(inner, { maxSize: size }));
  },
  ['maxSize'],
);

const LEVEL_FIELDS: Record<string, FieldType> = { write: 'boolean', replicate: 'boolean', touch: 'boolean', name: 'string' };

registerLocationKind(
  'levels',
  async (node: ConfigNode, context: BuildContext) => {
    const levels: Level[] = [];
    for (const item of node.items()) {
      const location = await context.build(item, Object.keys(LEVEL_FIELDS));
      // level options sit beside the kind key: `- { disk: /mnt/ssd, write: false }`
      const options = item.isMap ? readOptions(item, LEVEL_FIELDS, context.env, item.entries().map(([key]) => key).filter((key) => !(key in LEVEL_FIELDS))) : {};
      levels.push(new Level(location, options as LevelOptions));
    }
    const skip = context.siblings.get('skipFailing');
    const skipFailing = skip ? (fieldValue(skip, 'boolean', context.env) as boolean) : false;
    return new Levels(...levels, { skipFailing });
  },
  ['skipFailing'],
);

// Remote kinds: their modules (and ioredis, the AWS SDK, ssh2, undici) load only when a config uses them.

registerLocationKind('redis', async (node: ConfigNode, context: BuildContext) => {
  const fields: Record<string, FieldType> = {
    url: 'string', prefix: 'string', ttl: 'number|null', keepLabels: 'boolean', keepUsage: 'boolean', maxSize: 'size',
    timeoutMs: 'number', retry: RETRY, redis: 'object', scanCount: 'number', batchSize: 'number', touchInterval: 'number',
  };
  const { arg, options } = argAndOptions(node, 'url', fields, context.env);
  const { RedisLocation } = await import('../locations/redis.js');
  return building(node, () => new RedisLocation(arg ?? 'redis://127.0.0.1:6379', options));
});

registerLocationKind('s3', async (node: ConfigNode, context: BuildContext) => {
  const fields: Record<string, FieldType> = {
    endpoint: 'string', bucket: 'string', prefix: 'string', region: 'string',
    credentials: { accessKeyId: 'string', secretAccessKey: 'string', sessionToken: 'string' }, forcePathStyle: 'boolean',
    levels: 'numbers', partSize: 'size', queueSize: 'number', multipartThreshold: 'size', timeoutMs: 'number',
    keepLabels: 'boolean', keepUsage: 'boolean', touchInterval: 'number', pageSize: 'number', retry: RETRY, client: 'object',
  };
  const options = readOptions(node, fields, context.env);
  const { endpoint, bucket, ...rest } = options as { endpoint?: string; bucket?: string };
  if (!bucket) node.fail('an S3 location needs `bucket`');
  const { S3 } = await import('../locations/s3.js');
  return building(node, () => new S3(endpoint ?? null, bucket, rest));
});

for (const kind of ['sftp', 'scp'] as const) {
  registerLocationKind(kind, async (node: ConfigNode, context: BuildContext) => {
    const fields: Record<string, FieldType> = kind === 'sftp'
      ? { ...SSH_FIELDS, chunkSize: 'number', concurrency: 'number', fsync: 'boolean', touchInterval: 'number' }
      : { ...SSH_FIELDS, touchInterval: 'number', spoolDir: 'string' };
    const options = readOptions(node, fields, context.env);
    const { host, root, ...rest } = options as { host?: string; root?: string };
    if (!host || !root) node.fail(`an ${kind.toUpperCase()} location needs \`host\` and \`root\``);
    if (kind === 'sftp') {
      const { SFTP } = await import('../locations/sftp.js');
      return building(node, () => new SFTP(host, root, rest));
    }
    const { SCP } = await import('../locations/scp.js');
    return building(node, () => new SCP(host, root, rest));
  });
}

registerLocationKind('nginx', async (node: ConfigNode, context: BuildContext) => {
  const fields: Record<string, FieldType> = { url: 'string', timeoutMs: 'number', retry: RETRY, headers: 'object', connections: 'number' };
  const { arg, options } = argAndOptions(node, 'url', fields, context.env);
  if (!arg) node.fail('an Nginx location needs a URL: `nginx: http://host/lake/`');
  const { Nginx } = await import('../locations/nginx.js');
  return building(node, () => new Nginx(arg, options));
});

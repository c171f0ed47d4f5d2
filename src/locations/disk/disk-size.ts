import type { Redis as RedisClient } from 'ioredis';
import { ConfigError, LocationError } from '../../errors.js';
import { importOptional } from '../../optional.js';
import type { ToolConfig } from '../lake/config.js';

/**
 * tarn's size trackers (`size:` in config.yml): RedisSize keeps the bytes a lake holds as one
 * Redis counter, `<prefix>.S`, that every writer adds its new blobs to and every delete takes
 * from; tarn checks `max_size` against it. cairn keeps the same counter, so that tarn's count
 * stays right in a lake both write, and checks its own limit against it too.
 */
export interface SizeCounter {
  /** The count, in bytes (0 when the counter was never set). */
  get(): Promise<number>;
  /** Adds `delta` (negative: takes away). */
  add(delta: number): Promise<void>;
  close(): Promise<void>;
}

/** How tarn's RedisSize reaches Redis: `Redis(*args)`, so host, port, db and password by position. */
interface RedisSizeTarget {
  host: string;
  port: number;
  db: number;
  password: string | null;
  key: string;
}

/** The counter that `tool` names, or null for none (no tool, or tarn's DummySize). */
export function sizeCounterFor(tool: ToolConfig | null, file: string, location: string): SizeCounter | null {
  if (tool === null || tool.name === 'DummySize') return null;
  if (tool.name !== 'RedisSize') throw new ConfigError(`${file}: the size tool "${tool.name}" is not one cairn knows (RedisSize, DummySize)`);
  return new RedisSizeCounter(redisSizeTarget(tool, file), location);
}

function redisSizeTarget(tool: ToolConfig, file: string): RedisSizeTarget {
  const { prefix, ...others } = tool.kwargs;
  if (typeof prefix !== 'string' || prefix === '') throw new ConfigError(`${file}: the size tool RedisSize needs kwargs: {prefix: <name>} (its counter is <prefix>.S)`);
  if (Object.keys(others).length > 0) throw new ConfigError(`${file}: the size tool RedisSize takes only the kwarg prefix, got ${Object.keys(others).join(', ')}`);
  if (tool.args.length > 4) throw new ConfigError(`${file}: the size tool RedisSize takes at most 4 args here (host, port, db, password), got ${tool.args.length}`);
  const [host = 'localhost', port = 6379, db = 0, password = null] = tool.args;
  const fine =
    typeof host === 'string' &&
    Number.isInteger(Number(port)) &&
    Number.isInteger(Number(db)) &&
    (password === null || typeof password === 'string');
  if (!fine) throw new ConfigError(`${file}: the size tool RedisSize's args must be host, port, db and password, got ${JSON.stringify(tool.args)}`);
  return { host, port: Number(port), db: Number(db), password, key: `${prefix}.S` };
}

class RedisSizeCounter implements SizeCounter {
  private client: Promise<RedisClient> | null = null;
  private readonly name: string;

  constructor(
    private readonly target: RedisSizeTarget,
    private readonly location: string,
  ) {
    this.name = `RedisSize(redis://${target.host}:${target.port}/${target.db} ${target.key})`;
  }

  async get(): Promise<number> {
    const value = await this.run('read', (client) => client.get(this.target.key));
    const count = value === null ? 0 : Number(value);
    if (!Number.isFinite(count)) throw new LocationError(`${this.location}: ${this.name} holds ${JSON.stringify(value)}, not a number`, this.location);
    return count;
  }

  async add(delta: number): Promise<void> {
    if (delta === 0) return;
    await this.run('update', (client) => client.incrby(this.target.key, delta));
  }

  async close(): Promise<void> {
    const client = await this.client?.catch(() => null);
    this.client = null;
    if (client) await client.quit().catch(() => client.disconnect());
  }

  private async run<T>(operation: string, action: (client: RedisClient) => Promise<T>): Promise<T> {
    try {
      return await action(await this.connect());
    } catch (error) {
      throw new LocationError(`${this.location}: cannot ${operation} the size counter ${this.name}: ${(error as Error).message}`, this.location, { cause: error });
    }
  }

  private connect(): Promise<RedisClient> {
    this.client ??= importOptional<typeof import('ioredis')>('ioredis', "the size tool RedisSize of a lake's config.yml").then(({ Redis }) => {
      const client = new Redis({
        host: this.target.host,
        port: this.target.port,
        db: this.target.db,
        ...(this.target.password !== null ? { password: this.target.password } : {}),
        connectTimeout: 10_000,
        commandTimeout: 10_000,
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(times * 100, 500),
      });
      client.on('error', () => {}); // each failed command reports its own error
      return client;
    });
    this.client.catch(() => (this.client = null));
    return this.client;
  }
}

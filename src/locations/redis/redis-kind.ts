import { leafKind } from '../../config/kind.js';
import { RETRY_FIELDS } from '../../retry-kind.js';
import type { RedisLocationOptions } from './redis.js';

/** `redis: URL` or `redis: { url, …RedisLocationOptions }` in a config file; ioredis loads only when one is built. */
export const redisKind = leafKind<RedisLocationOptions>({
  name: 'redis',
  args: { url: 'string' },
  scalar: 'url',
  options: {
    layout: ['cairn', 'tarn'], prefix: 'string', ttl: 'number|null', keepLabels: 'boolean', keepUsage: 'boolean', maxSize: 'size', timeoutMs: 'number',
    retry: RETRY_FIELDS, redis: 'object', cluster: 'object', scanCount: 'number', batchSize: 'number', touchInterval: 'number',
  },
  async create({ args, options }) {
    const { RedisLocation } = await import('./redis.js');
    return new RedisLocation((args.url as string | undefined) ?? 'redis://127.0.0.1:6379', options);
  },
});

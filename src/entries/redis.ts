/**
 * `cairn-lake/redis`: a lake in Redis (a server, Sentinel or Cluster). Needs the optional peer
 * package `ioredis` (it ships its own types): `npm install ioredis`.
 */
export { RedisLocation, type RedisLocationOptions, type RedisTarget } from '../locations/redis/redis.js';
export type { RetryOptions } from '../retry.js';

/**
 * Locks in Redis, for processes on several machines: `<prefix>cairn:lock:<key>` set with NX and a
 * lease (PX) to the holder's token, renewed by the worker thread of lock-renewal.ts, released by a
 * compare-and-delete, so a holder never removes a lock that was taken over from it.
 */
import type { Release, ResolvedLock } from './lock.js';
import { holderIsGone, lockToken, sleep } from './lock-token.js';
import { prepareRedis, renew } from './lock-renewal.js';

/** Deletes the lock only while it holds `ARGV[1]`. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export async function acquireRedisLock(options: Extract<ResolvedLock, { kind: 'redis' }>, key: string, done: () => Promise<boolean>): Promise<Release | null> {
  const { redis, lease } = options;
  const name = `${redis.prefix}cairn:lock:${key}`;
  const token = lockToken();
  const deleteIf = (holder: string) => redis.command('unlock', (client) => client.eval(RELEASE_SCRIPT, 1, name, holder));
  const connection = redis.connectionTarget();
  await prepareRedis(connection).catch(async (error: unknown) => {
    // a server that is down is the location's typed error; else the thread alone cannot connect
    await redis.command('lock', (client) => client.ping());
    throw error;
  });
  for (;;) {
    const set = await redis.command('lock', (client) => client.set(name, token, 'PX', lease, 'NX'));
    // a SET retried after a lost reply finds our own token
    const holder = set === 'OK' ? token : await redis.command('lock', (client) => client.get(name));
    if (holder === token) {
      let renewal;
      try {
        renewal = await renew({ kind: 'redis', connection, name, token, ms: lease });
      } catch (error) {
        await deleteIf(token);
        throw error;
      }
      return async () => {
        await renewal.stop();
        await deleteIf(token);
      };
    }
    if (await done()) return null;
    // the holder's process is gone from this host: no need to wait for its lease
    if (holder !== null && holderIsGone(holder)) {
      await deleteIf(holder);
      continue;
    }
    await sleep(options.poll);
  }
}

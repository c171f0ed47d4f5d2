/**
 * The thread that renews the leases of the locks this process holds (see lock-renewal.ts): its
 * timers run while the main thread is busy, so a function that blocks the event loop for longer
 * than the lease keeps its lock.
 */
import { readFileSync, utimesSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { Redis, RedisOptions } from 'ioredis';
import type { LeaseMessage, RedisConnection } from './lock-renewal.js';

/** Extends a Redis lock's lease when it is still ours; 0 when it is gone or someone else's. */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

interface Held {
  timer: NodeJS.Timeout;
}

const held = new Map<number, Held>();
/** One client per server, kept for the life of the thread (it does not keep the process alive). */
const clients = new Map<string, Promise<Redis>>();

function clientFor(connection: RedisConnection): Promise<Redis> {
  const id = JSON.stringify(connection);
  let client = clients.get(id);
  if (client === undefined) {
    client = import('ioredis').then(async ({ Redis: Client }) => {
      const options: RedisOptions = { maxRetriesPerRequest: 1, ...connection.options };
      const made = connection.url === null ? new Client(options) : new Client(connection.url, options);
      made.on('error', () => {}); // renewal goes on at the next tick of its timer
      try {
        await made.ping();
      } catch (error) {
        made.disconnect();
        throw error;
      }
      return made;
    });
    // a failed connection is made again by the next lock
    client.catch(() => clients.delete(id));
    clients.set(id, client);
  }
  return client;
}

function hold(message: Extract<LeaseMessage, { type: 'hold' }>): void {
  const { id, lease } = message;
  const every = Math.max(10, Math.floor(lease.ms / 3));
  if (lease.kind === 'file') {
    const timer = setInterval(() => {
      try {
        // only while the file is still ours: after a takeover it belongs to someone else
        if (readFileSync(lease.file, 'utf8') !== lease.token) return drop(id, true);
        const now = new Date();
        utimesSync(lease.file, now, now);
      } catch {
        drop(id, true);
      }
    }, every);
    held.set(id, { timer });
    return;
  }
  const client = clientFor(lease.connection);
  const timer = setInterval(() => {
    void client
      .then((redis) => redis.eval(RENEW_SCRIPT, 1, lease.name, lease.token, String(lease.ms)))
      .then(
        (renewed) => {
          if (renewed === 0) drop(id, true);
        },
        () => {}, // a failed renewal is tried again; the lease covers two more
      );
  }, every);
  held.set(id, { timer });
}

function drop(id: number, lost: boolean): void {
  const lock = held.get(id);
  if (lock === undefined) return;
  held.delete(id);
  clearInterval(lock.timer);
  if (lost) parentPort!.postMessage({ type: 'lost', id });
}

parentPort!.on('message', (message: LeaseMessage) => {
  const ack = (error?: unknown) => parentPort!.postMessage({ type: 'ack', id: message.id, error: error === undefined ? undefined : String((error as Error).message ?? error) });
  if (message.type === 'connect') {
    // before a lock is taken: its first renewal must not wait for a connection
    clientFor(message.connection).then(() => ack(), ack);
    return;
  }
  if (message.type === 'hold') hold(message);
  else drop(message.id, false);
  ack();
});

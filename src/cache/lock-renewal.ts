/**
 * Renews the leases of the locks this process holds from one worker thread (lock-renewal-worker.ts),
 * shared by every lock: a renewal on the main thread would wait for the event loop, and a
 * synchronous function that blocks it for longer than the lease would let others in.
 */
import type { Worker } from 'node:worker_threads';
import type { RedisOptions } from 'ioredis';
import { LocationError } from '../errors.js';
import { startWorker } from '../workers.js';

/** How the worker reaches a Redis server: its own connection, made from these. */
export interface RedisConnection {
  url: string | null;
  options: RedisOptions;
}

export type Lease =
  | { kind: 'file'; file: string; token: string; ms: number }
  | { kind: 'redis'; connection: RedisConnection; name: string; token: string; ms: number };

export type LeaseMessage = { type: 'hold'; id: number; lease: Lease } | { type: 'drop'; id: number } | { type: 'connect'; id: number; connection: RedisConnection };
type Reply = { type: 'ack' | 'lost'; id: number; error?: string };

let worker: Worker | null = null;
let nextId = 0;
let holding = 0;
const connections = new Map<string, Promise<void>>();
const acks = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
const lost = new Set<number>();

function renewer(): Worker {
  if (worker !== null) return worker;
  const started = startWorker(import.meta.url, './lock-renewal-worker');
  started.unref();
  started.on('message', (reply: Reply) => {
    if (reply.type === 'lost') {
      lost.add(reply.id);
      return;
    }
    const waiting = acks.get(reply.id);
    acks.delete(reply.id);
    if (reply.error === undefined) waiting?.resolve();
    else waiting?.reject(new LocationError(`The lock renewal thread cannot reach Redis: ${reply.error}`, 'lock'));
  });
  started.on('error', (error) => fail(started, error));
  started.on('exit', (code) => fail(started, new Error(`the lock renewal thread exited with ${code}`)));
  worker = started;
  return started;
}

function fail(which: Worker, error: Error): void {
  if (worker !== which) return;
  worker = null;
  holding = 0;
  connections.clear();
  for (const { reject } of acks.values()) reject(new LocationError(`Cannot renew lock leases: ${error.message}`, 'lock', { cause: error }));
  acks.clear();
}

function send(message: LeaseMessage): Promise<void> {
  const thread = renewer();
  return new Promise<void>((resolve, reject) => {
    acks.set(message.id, { resolve, reject });
    thread.postMessage(message);
  });
}

/**
 * Opens the thread's connection to a Redis server, before a lock is taken there: the first renewal
 * of a short lease must not wait for it. Once per server and process.
 */
export function prepareRedis(connection: RedisConnection): Promise<void> {
  const id = JSON.stringify(connection);
  let ready = connections.get(id);
  if (ready === undefined) {
    renewer().ref();
    ready = send({ type: 'connect', id: ++nextId, connection }).finally(() => {
      if (holding === 0) worker?.unref();
    });
    ready.catch(() => connections.delete(id));
    connections.set(id, ready);
  }
  return ready;
}

/** A lease being renewed: `stop()` ends the renewal; `lost` is true once the lock was found to be someone else's. */
export interface Renewal {
  stop(): Promise<void>;
  readonly lost: boolean;
}

/** Starts renewing `lease` every third of it; resolves once the worker has it. */
export async function renew(lease: Lease): Promise<Renewal> {
  const id = ++nextId;
  // the thread keeps the process alive only while it holds leases (and is waited for)
  if (holding++ === 0) renewer().ref();
  try {
    await send({ type: 'hold', id, lease });
  } catch (error) {
    if (--holding === 0) worker?.unref();
    throw error;
  }
  let stopped: Promise<void> | null = null;
  return {
    get lost() {
      return lost.has(id);
    },
    stop: () => {
      stopped ??= send({ type: 'drop', id })
        .catch(() => undefined) // a dead thread renews nothing
        .finally(() => {
          lost.delete(id);
          if (--holding <= 0) {
            holding = 0;
            worker?.unref();
          }
        });
      return stopped;
    },
  };
}

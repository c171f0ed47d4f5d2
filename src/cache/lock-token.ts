/** The token a lock holds, and what a waiter can tell from it. */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { processAlive } from '../process-alive.js';

/** A new token for a lock held by this process. */
export function lockToken(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/**
 * True when `token` names a process of this host that is gone: its lock can be taken over at once.
 * A holder on another host, or a token that is not one of ours, waits for its lease.
 */
export function holderIsGone(token: string): boolean {
  const match = /^(.*):(\d+):[0-9a-f]+$/.exec(token);
  if (match === null || match[1] !== hostname()) return false;
  const pid = Number(match[2]);
  return pid !== process.pid && !processAlive(pid);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

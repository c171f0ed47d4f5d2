import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { processAlive } from '../../process-alive.js';

/**
 * Who left a file in a lake: temp files, staged copies and gc runs carry the process id and a
 * short hash of the host name, so that the next open or gc can tell the leftovers of a killed
 * process (same host, process gone) from the work of a live one.
 */

/**
 * A short hash of this host's name and pid namespace: lakes on a shared mount are written from
 * several hosts, and containers sharing a host name see each other's pids as free.
 */
export const HOST_TAG = createHash('sha256').update(`${hostname()}/${pidNamespace()}`).digest('hex').slice(0, 6);

function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return ''; // not Linux: the host name alone
  }
}

/**
 * `<pid in base 36>-<host tag>-<random>`: unique per process and thread (worker threads share
 * the pid, so a random part is added once per thread).
 */
export const PROCESS_TAG = `${process.pid.toString(36)}-${HOST_TAG}-${randomBytes(3).toString('hex')}`;

const TAG_PATTERN = /(?:^|\.)([0-9a-z]{1,8})-([0-9a-f]{6})-[0-9a-f]{6}(?:\.|$)/;

/** The pid and host tag found in a name made with PROCESS_TAG, or null. */
export function parseTag(name: string): { pid: number; host: string } | null {
  const match = TAG_PATTERN.exec(name);
  return match ? { pid: parseInt(match[1]!, 36), host: match[2]! } : null;
}

/**
 * True when the process that made a file named with PROCESS_TAG is known to be gone: it ran on
 * this host and no process has its pid. False when unknown (another host, a name without a tag):
 * those are left to the age rules.
 */
export function leftByDeadProcess(name: string): boolean {
  const tag = parseTag(name);
  return tag !== null && tag.host === HOST_TAG && !processAlive(tag.pid);
}

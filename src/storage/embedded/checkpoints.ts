import type { Worker } from 'node:worker_threads';
import { openSqlite } from '../../sqlite.js';
import { startWorker } from '../../workers.js';

/** What the checkpoint worker is asked: copy the WAL of the file at `path` into it. */
export interface CheckpointRequest {
  id: number;
  path: string;
}

/**
 * Runs a PASSIVE checkpoint of `path` on a connection of its own (opened for it, closed after:
 * no file stays open here between checkpoints). It never waits for readers or writers: what it
 * cannot copy now is copied by the next one. Returns an error message, or null.
 */
export function runCheckpoint({ path }: CheckpointRequest): string | null {
  try {
    const db = openSqlite(path, { timeout: 1000 });
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } finally {
      db.close();
    }
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

let thread: Worker | null = null;
let threadFailed = false;
let nextId = 0;
const inFlight = new Map<number, () => void>();

/**
 * Checkpoints `path` in the worker thread (started on first use); in this thread if the worker
 * cannot run. Resolves once it is done; a checkpoint that fails is left to the next one (and to
 * the connection's own automatic checkpoint, which stays on as a bound on the WAL).
 */
export function checkpointInWorker(path: string): Promise<void> {
  if (threadFailed) {
    runCheckpoint({ id: -1, path });
    return Promise.resolve();
  }
  const worker = (thread ??= startCheckpointWorker());
  const id = nextId++;
  return new Promise((done) => {
    inFlight.set(id, done);
    worker.ref(); // a checkpoint in flight keeps the process alive, as a pending fs call would
    worker.postMessage({ id, path } satisfies CheckpointRequest);
  });
}

function startCheckpointWorker(): Worker {
  const worker = startWorker(import.meta.url, './checkpoint-worker');
  worker.unref(); // an idle worker never keeps the process alive
  worker.on('message', ({ id }: { id: number }) => {
    inFlight.get(id)?.();
    inFlight.delete(id);
    if (inFlight.size === 0) worker.unref();
  });
  const stopped = () => {
    // later checkpoints run in this thread; the ones it had are left to the next
    threadFailed = true;
    thread = null;
    for (const [id, done] of inFlight) {
      inFlight.delete(id);
      done();
    }
  };
  worker.on('error', (error) => {
    process.emitWarning(`embedded stores checkpoint in the main thread: their worker thread failed (${error.message})`, { code: 'CAIRN_CHECKPOINT' });
    stopped();
  });
  worker.on('exit', stopped);
  return worker;
}

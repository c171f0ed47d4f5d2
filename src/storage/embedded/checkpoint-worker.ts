/**
 * The worker thread that copies embedded stores' WAL into their database files (checkpoints.ts):
 * a checkpoint syncs the files even with `synchronous=NORMAL`, and here that wait is off the
 * thread that acknowledges puts.
 */
import { parentPort } from 'node:worker_threads';
import { runCheckpoint, type CheckpointRequest } from './checkpoints.js';

parentPort!.on('message', (request: CheckpointRequest) => {
  parentPort!.postMessage({ id: request.id, error: runCheckpoint(request) });
});

/** The worker thread that applies the last-used marks queued by Disk reads (see disk-marks.ts). */
import { parentPort } from 'node:worker_threads';
import { applyMarks, type MarkBatch } from './disk-marks.js';

parentPort!.on('message', ({ id, batch }: { id: number; batch: MarkBatch }) => {
  parentPort!.postMessage({ id, failures: applyMarks(batch) });
});

/** A worker thread of `migrate({ threads })`: copies the chunks of keys it is sent between two Disk lakes. */
import { parentPort, workerData } from 'node:worker_threads';
import type { ThreadOpen } from '../../locations/admin.js';
import { Disk, type DiskOptions } from '../../locations/disk/disk.js';
import { copyItems, type Item, type ItemResult } from './migrate.js';

interface Task {
  from: ThreadOpen;
  to: ThreadOpen;
  jobs: number;
}

const task = workerData as Task;
const source = new Disk(task.from.root, task.from.options as DiskOptions);
const target = new Disk(task.to.root, task.to.options as DiskOptions);
// results go back in batches: a message per key would cost more than some copies
let batch: ItemResult[] = [];
let last = performance.now();
const flush = () => {
  if (batch.length > 0) parentPort!.postMessage({ results: batch });
  batch = [];
  last = performance.now();
};
// from the parent: chunks of items, 'end' (no more chunks), 'abort' (no new copy starts; those in flight finish and are reported)
const stop = new AbortController();
const chunks: Item[][] = [];
let ended = false;
let wake: (() => void) | null = null;
parentPort!.on('message', (message: unknown) => {
  if (message === 'abort') stop.abort();
  else if (message === 'end') ended = true;
  else chunks.push((message as { items: Item[] }).items);
  wake?.();
});
while (!stop.signal.aborted) {
  const chunk = chunks.shift();
  if (chunk === undefined) {
    if (ended) break;
    await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    continue;
  }
  await copyItems(source, target, chunk, task.jobs, (result) => {
    batch.push(result);
    if (batch.length >= 64 || performance.now() - last > 100) flush();
  }, stop.signal).catch((error: unknown) => {
    if (!stop.signal.aborted) throw error;
  });
  flush();
  parentPort!.postMessage({ chunkDone: true });
}
flush();
await Promise.all([source.close(), target.close()]);
parentPort!.close();

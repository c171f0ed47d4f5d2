/** A worker thread of `migrate({ threads })`: copies its share of the keys between two Disk lakes. */
import { parentPort, workerData } from 'node:worker_threads';
import { Disk, type DiskOptions } from '../../locations/disk.js';
import { copyItems, type Item, type ItemResult } from './migrate.js';

interface Task {
  from: { root: string; options: DiskOptions };
  to: { root: string; options: DiskOptions };
  items: Item[];
  jobs: number;
}

const task = workerData as Task;
const source = new Disk(task.from.root, task.from.options);
const target = new Disk(task.to.root, task.to.options);
// results go back in batches: a message per key would cost more than some copies
let batch: ItemResult[] = [];
let last = performance.now();
// 'abort' from the parent: no new copy starts, those in flight finish and are reported
const stop = new AbortController();
parentPort!.on('message', (message: unknown) => {
  if (message === 'abort') stop.abort();
});
parentPort!.unref();
await copyItems(source, target, task.items, task.jobs, (result) => {
  batch.push(result);
  if (batch.length >= 64 || performance.now() - last > 100) {
    parentPort!.postMessage(batch);
    batch = [];
    last = performance.now();
  }
}, stop.signal).catch((error: unknown) => {
  if (!stop.signal.aborted) throw error;
});
if (batch.length > 0) parentPort!.postMessage(batch);

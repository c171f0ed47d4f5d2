import { chmodSync, chownSync, closeSync, openSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Key } from '../../key.js';
import { startWorker } from '../../workers.js';
import { TOOL_MODE } from '../lake/layout.js';
import { Owner, type Ownership } from './disk-owner.js';

/**
 * tarn's last-used marks (`StatUsage`): an empty file per key under `tools/usage/ab/<rest>`, whose
 * mtime is the key's last use. Reads queue their keys here and a worker thread applies them a batch
 * at a time: the main thread only pushes a key into an array (a refresh in libuv's thread pool cost
 * it more than doing the syscall itself, and creating a mark costs a file creation).
 */


/** Keys queued beyond this make reads wait for the marks. */
const MAX_BACKLOG = 100_000;

/** The mark of `key` in a lake whose marks live in `usageRoot`. */
export function markPath(usageRoot: string, key: Key): string {
  return join(usageRoot, key.slice(0, 2), key.slice(2));
}

/**
 * Creates or refreshes a mark. `likelyNew` says which call to try first (a write's mark is usually
 * new, a read's usually exists): that spares a failing syscall and the cost of building its error.
 * Throws what is not "exists" or "missing".
 */
export function markSync(owner: Owner, mark: string, time: Date, likelyNew: boolean): void {
  if (likelyNew) {
    if (!createMark(owner, mark)) updateMark(mark, time);
  } else if (!updateMark(mark, time)) {
    createMark(owner, mark);
  }
}

/** Creates the mark (its time is now); false when it exists. */
function createMark(owner: Owner, mark: string, retry = true): boolean {
  try {
    ensureToolDir(owner, dirname(mark));
    // 'wx': only a mark this process created gets our group and mode
    closeSync(openSync(mark, 'wx', 0o666));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // a folder known to exist was removed meanwhile: make it again, once
    if (code === 'ENOENT' && retry) {
      owner.forget(dirname(mark));
      return createMark(owner, mark, false);
    }
    throw error;
  }
  ownToolFile(owner, mark);
  return true;
}

/** The group tarn gives the files of a tools folder (the folder's own), per folder; null when new files get it anyway. */
const toolGroups = new Map<string, number | null>();

/**
 * Creates a per-prefix folder of a tool (`tools/usage/ab`, `tools/labels/ab`) as tarn does: mode
 * 0777 and the group of the tool's folder. Its parents get the lake's folder mode.
 */
export function ensureToolDir(owner: Owner, dir: string): void {
  if (owner.ensureDirSync(dir) === undefined) return; // it was there
  // a shared lake's folders stay setgid, so that new marks get the lake's group without a chown
  chmodSync(dir, TOOL_MODE | (owner.ownership.shared ? 0o2000 : 0));
  owner.own(dir, null);
  if (owner.ownership.gid === null) chownIfMember(dir, statSync(dirname(dir)).gid);
}

/**
 * Gives a tool's file this process just created tarn's mode (0777) and the group of its folder
 * (`dir`: where it is, or where it is about to be renamed to).
 */
export function ownToolFile(owner: Owner, file: string, dir = dirname(file)): void {
  chmodSync(file, TOOL_MODE);
  if (owner.ownership.gid !== null) {
    owner.own(file, null);
    return;
  }
  let gid = toolGroups.get(dir);
  if (gid === undefined) {
    const stat = statSync(dir);
    // in a setgid folder (a shared lake) new files have its group already
    gid = (stat.mode & 0o2000) !== 0 || stat.gid === process.getegid?.() ? null : stat.gid;
    if (toolGroups.size > 10_000) toolGroups.clear();
    toolGroups.set(dir, gid);
  }
  if (gid !== null) chownIfMember(file, gid);
}

/** chown to `gid`, when this process may (a member of the group, or root); the mode already lets everyone in. */
function chownIfMember(path: string, gid: number): void {
  try {
    chownSync(path, -1, gid);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
}

/** Sets the mark's time; false when there is no mark. */
function updateMark(mark: string, time: Date): boolean {
  try {
    utimesSync(mark, time, time);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Marks to refresh in one lake: what the worker thread receives. */
export interface MarkBatch {
  ownership: Ownership;
  usageRoot: string;
  keys: Key[];
  /** ms since the epoch */
  time: number;
}

/** What a batch could not do: one entry per distinct error code (the rest of the batch still ran). */
export interface MarkFailure {
  code: string | undefined;
  message: string;
}

const owners = new Map<string, Owner>();

/** Applies a batch synchronously (in the worker thread, or in this one when no worker can run). */
export function applyMarks(batch: MarkBatch): MarkFailure[] {
  const id = JSON.stringify(batch.ownership);
  let owner = owners.get(id);
  if (owner === undefined) owners.set(id, (owner = new Owner(batch.ownership)));
  const time = new Date(batch.time);
  const failures = new Map<string | undefined, MarkFailure>();
  for (const key of batch.keys) {
    try {
      markSync(owner, markPath(batch.usageRoot, key), time, false);
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      if (!failures.has(code)) failures.set(code, { code, message });
    }
  }
  return [...failures.values()];
}

let thread: Worker | null = null;
let threadFailed = false;
let nextId = 0;
const inFlight = new Map<number, { batch: MarkBatch; done: (failures: MarkFailure[]) => void }>();

/** Applies a batch in the worker thread, started on first use; in this thread if the worker cannot run. */
function applyInWorker(batch: MarkBatch): Promise<MarkFailure[]> {
  if (threadFailed) return Promise.resolve(applyMarks(batch));
  const worker = (thread ??= startMarksWorker());
  const id = nextId++;
  return new Promise((done) => {
    inFlight.set(id, { batch, done });
    worker.ref(); // a batch in flight keeps the process alive, as a pending fs call would
    worker.postMessage({ id, batch });
  });
}

function startMarksWorker(): Worker {
  const worker = startWorker(import.meta.url, './disk-marks-worker');
  worker.unref(); // an idle worker never keeps the process alive
  worker.on('message', ({ id, failures }: { id: number; failures: MarkFailure[] }) => {
    inFlight.get(id)?.done(failures);
    inFlight.delete(id);
    if (inFlight.size === 0) worker.unref();
  });
  const stopped = () => {
    // the batches it had are applied here, and so are all later ones
    threadFailed = true;
    thread = null;
    for (const [id, { batch, done }] of inFlight) {
      inFlight.delete(id);
      done(applyMarks(batch));
    }
  };
  worker.on('error', (error) => {
    process.emitWarning(`last-used marks are kept by the main thread: their worker thread failed (${error.message})`, { code: 'CAIRN_USAGE_MARK' });
    stopped();
  });
  worker.on('exit', stopped);
  return worker;
}

/** The keys whose marks a Disk's reads want refreshed, sent to the worker thread a batch at a time. */
export class MarkQueue {
  private keys: Key[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly usageRoot: string,
    private readonly ownership: Ownership,
    private readonly failed: (error: NodeJS.ErrnoException) => void,
  ) {}

  /**
   * Queues `key`. Returns a promise to wait for when the backlog is long (marks fall behind the
   * reads: they then slow down to the marks' pace rather than hold ever more keys), else null.
   */
  add(key: Key): Promise<void> | null {
    this.keys.push(key);
    this.running ??= this.run();
    return this.keys.length > MAX_BACKLOG ? this.running : null;
  }

  /** Creates or refreshes the mark of `key` now, in the worker thread; throws what failed. */
  async now(key: Key): Promise<void> {
    const [failure] = await applyInWorker(this.batch([key]));
    if (failure) throw Object.assign(new Error(failure.message), { code: failure.code });
  }

  /** Resolves once every queued mark is applied. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    try {
      await new Promise((resolve) => setImmediate(resolve)); // the reads of this turn queue theirs first
      while (this.keys.length > 0) {
        const keys = this.keys;
        this.keys = [];
        const failures = await applyInWorker(this.batch(keys));
        for (const { code, message } of failures) this.failed(Object.assign(new Error(message), { code }));
      }
    } finally {
      this.running = null;
    }
  }

  private batch(keys: Key[]): MarkBatch {
    return { ownership: this.ownership, usageRoot: this.usageRoot, keys, time: Date.now() };
  }
}

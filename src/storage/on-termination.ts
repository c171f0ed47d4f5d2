/**
 * Work to do when the process ends: at exit, and on SIGINT / SIGTERM (Ctrl-C, `kill`), which end
 * a plain node process without an `exit` event. One listener per signal for all of cairn, so
 * that cairn can tell whether it is the only one listening: then it does the work and raises the
 * signal again, and the process ends as it would have without cairn (exit status of the signal).
 * When the program listens too, the program decides; the work is then done at `exit`, if it exits.
 * Only the main thread: signals are not delivered to worker threads, and a worker's `exit` is not
 * the process's.
 */
import { isMainThread } from 'node:worker_threads';

type Hook = () => void;

const hooks = new Set<Hook>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
let installed = false;

function runHooks(): void {
  for (const hook of [...hooks]) {
    try {
      hook();
    } catch {
      // the process is ending: one failed clean-up must not stop the others
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  runHooks();
  uninstall();
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed || !isMainThread) return;
  installed = true;
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.on('exit', runHooks);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const signal of SIGNALS) process.off(signal, onSignal);
  process.off('exit', runHooks);
}

/** Runs `hook` (synchronous) when the process ends, by exit, SIGINT or SIGTERM; returns a function that cancels it. */
export function onTermination(hook: Hook): () => void {
  hooks.add(hook);
  install();
  return () => {
    hooks.delete(hook);
    if (hooks.size === 0) uninstall();
  };
}

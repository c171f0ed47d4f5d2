/**
 * Durability 'exit' (the seed notebook's semantics): a tier's acknowledged sets wait in memory
 * and are saved when the store is closed, or when the process exits or gets SIGINT/SIGTERM with
 * the store still open. Lost on `kill -9` or a crash, as the seed's are.
 */

/** A tier that can save what it holds in memory, synchronously (exit handlers cannot wait). */
export interface SavesAtExit {
  saveNow(): void;
}

const open = new Set<SavesAtExit>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function saveAll(): void {
  for (const tier of open) {
    try {
      tier.saveNow();
    } catch {
      // the process is ending: the other tiers are still saved
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  saveAll();
  unhook();
  // our listener replaced Node's default action: with no other listener, end as the signal would
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function hook(): void {
  process.on('exit', saveAll);
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function unhook(): void {
  process.off('exit', saveAll);
  for (const signal of SIGNALS) process.off(signal, onSignal);
}

/** Saves `tier` at process exit and on SIGINT/SIGTERM until `forgetAtExit`. */
export function savedAtExit(tier: SavesAtExit): void {
  if (open.size === 0) hook();
  open.add(tier);
}

/** The tier was closed (and saved). */
export function forgetAtExit(tier: SavesAtExit): void {
  if (!open.delete(tier)) return;
  if (open.size === 0) unhook();
}

/**
 * Durability 'exit' (the seed notebook's semantics): a tier's acknowledged sets wait in memory
 * and are saved when the store is closed, or when the process exits or gets SIGINT/SIGTERM with
 * the store still open. Lost on `kill -9` or a crash, as the seed's are.
 */

import { onTermination } from '../on-termination.js';

/** A tier that can save what it holds in memory, synchronously (exit handlers cannot wait). */
export interface SavesAtExit {
  saveNow(): void;
}

const open = new Set<SavesAtExit>();
/** Cancels the one termination hook (on-termination.ts) that saves every open tier. */
let cancel: (() => void) | null = null;

function saveAll(): void {
  for (const tier of open) {
    try {
      tier.saveNow();
    } catch {
      // the process is ending: the other tiers are still saved
    }
  }
}

/** Saves `tier` at process exit and on SIGINT/SIGTERM until `forgetAtExit`. */
export function savedAtExit(tier: SavesAtExit): void {
  open.add(tier);
  // shared with cairn's other clean-ups: one listener per signal decides how the process ends
  cancel ??= onTermination(saveAll);
}

/** The tier was closed (and saved). */
export function forgetAtExit(tier: SavesAtExit): void {
  if (!open.delete(tier) || open.size > 0) return;
  cancel?.();
  cancel = null;
}

/**
 * Temp files this process is writing, removed when it is interrupted (Ctrl-C, SIGTERM) or exits:
 * otherwise a 351 MB half-written value waits in `.tmp/` until gc's `--tmp-age` (a day).
 * Only files this process made are removed: staged files it registered, and in a Disk's `.tmp/`
 * the names carrying this process's tag (see disk.ts).
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { onTermination } from './on-termination.js';

const files = new Set<string>();
const folders = new Map<string, RegExp>();
let cancel: (() => void) | null = null;

function removeAll(): void {
  for (const file of files) rmSync(file, { force: true });
  files.clear();
  for (const [folder, own] of folders) {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      continue;
    }
    for (const name of names) if (own.test(name)) rmSync(join(folder, name), { force: true });
  }
}

function watch(): void {
  cancel ??= onTermination(removeAll);
}

function unwatchIfIdle(): void {
  if (files.size === 0 && folders.size === 0 && cancel) {
    cancel();
    cancel = null;
  }
}

/** Registers a temp file being written; returns the function to call once it is moved or removed. */
export function trackTempFile(path: string): () => void {
  files.add(path);
  watch();
  return () => {
    files.delete(path);
    unwatchIfIdle();
  };
}

/** Registers a folder where this process's temp files are the names matching `own`. */
export function trackTempFolder(folder: string, own: RegExp): void {
  folders.set(folder, own);
  watch();
}

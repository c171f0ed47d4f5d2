import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts the worker module `name` (a path relative to the module at `base`, without extension):
 * its built `.js` file, or, when cairn runs from its TypeScript sources (tests, benchmarks, tsx),
 * its `.ts` file with tsx loaded first.
 */
export function startWorker(base: string, name: string, workerData?: unknown): Worker {
  const typescript = base.endsWith('.ts');
  const entry = new URL(`${name}.${typescript ? 'ts' : 'js'}`, base);
  if (!typescript) return new Worker(entry, { workerData });
  const loader = `import(${JSON.stringify(tsxApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(loader, { eval: true, workerData });
}

/**
 * The URL of tsx's ESM API (`tsx/esm/api`, import condition). Found from `tsx/esm`, which sits
 * beside it: vitest's import.meta has no resolve(), and require.resolve() gives the CommonJS build.
 */
function tsxApi(): string {
  return new URL('./api/index.mjs', pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm'))).href;
}

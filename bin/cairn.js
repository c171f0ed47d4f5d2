#!/usr/bin/env node
// Runs the `cairn` command in a checkout, without a build: the TypeScript sources through tsx
// (a dev dependency). Where the sources are absent, the built dist/cli/main.js (what the
// package's `bin` points at once installed). Sources first, so a stale dist/ is never run here.
import { existsSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';

const sources = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(fileURLToPath(sources))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href);
}

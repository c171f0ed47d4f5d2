import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../errors.js';
import { CONFIG_NAME, type LakeConfig, lakeConfigText, parseLakeConfig } from '../lake/config.js';

/** A local lake's config.yml (the format is the lake's: see lake/config.ts). */
export function readDiskConfig(root: string): LakeConfig | null {
  const file = join(root, CONFIG_NAME);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`Cannot read ${file}`, { cause: error });
  }
  return parseLakeConfig(text, file);
}

/**
 * Writes a new config.yml the way tarn does (keys sorted, defaults left out except levels),
 * atomically and only if none exists, so two processes creating the same lake agree.
 */
export function createDiskConfig(root: string, levels: number[], mode: number): void {
  const text = lakeConfigText(levels);
  const tmp = join(root, `.${CONFIG_NAME}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  writeFileSync(tmp, text, { mode: mode & 0o666 });
  try {
    // link fails with EEXIST when another process created the config first: theirs wins
    linkSync(tmp, join(root, CONFIG_NAME));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    rmSync(tmp, { force: true });
  }
}

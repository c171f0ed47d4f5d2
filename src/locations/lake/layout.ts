/**
 * Where things live in a tarn lake, as paths relative to the lake's root (POSIX separators): the
 * blob of a key under the `levels` of config.yml (`ab/cdef…` for [1, -1]), its last-used mark
 * (`tools/usage/ab/cdef…`), its labels (`tools/labels/ab/cdef….json`) and temp files (`.tmp/`).
 * Every transport resolves these against its own root (a remote folder, a URL).
 */
import { randomBytes } from 'node:crypto';
import { type Key, keyToParts } from '../../key.js';

/** The folder of temp files, at the root of a lake. */
export const TEMP_FOLDER = '.tmp';
/** What a folder blob of an old tarn lake (`<key>/data`) keeps its bytes in. */
export const LEGACY_DATA = 'data';
/**
 * tarn's mode for what its tools create (StatUsage's marks, JsonLabels' files, and the per-prefix
 * folders that hold them): tarn touches the mark on every read, so a mark that another user of
 * the group cannot update makes tarn's reads fail with PermissionError.
 */
export const TOOL_MODE = 0o777;
/** Blobs are read-only once published: a key's bytes never change. */
export const BLOB_MODE = 0o444;

export class LakeLayout {
  /** Hex characters of the last level (the rest of the key after the fixed ones). */
  private readonly restWidth: number;

  constructor(readonly levels: readonly number[]) {
    const fixed = levels.reduce((sum, level) => sum + (level === -1 ? 0 : level * 2), 0);
    this.restWidth = 64 - fixed;
  }

  /** The folder names and file name of a key's blob (`['ab', 'cdef…']` for [1, -1]). */
  parts(key: Key): string[] {
    return keyToParts(key, this.levels);
  }

  blob(key: Key): string {
    return this.parts(key).join('/');
  }

  mark(key: Key): string {
    return `tools/usage/${key.slice(0, 2)}/${key.slice(2)}`;
  }

  labels(key: Key): string {
    return `tools/labels/${key.slice(0, 2)}/${key.slice(2)}.json`;
  }

  /** A new temp file name under `.tmp/` (random, so that writers never share one). */
  tmp(name: string): string {
    return `${TEMP_FOLDER}/${name}.${randomBytes(6).toString('hex')}`;
  }

  /** The key a blob path's parts stand for, or null for anything else. */
  keyOf(parts: readonly string[]): string | null {
    if (parts.length !== this.levels.length) return null;
    for (let i = 0; i < parts.length; i++) if (!this.isPart(i, parts[i]!)) return null;
    return parts.join('');
  }

  /** True when `name` can be the `depth`-th part of a blob path: lowercase hex of that level's width. */
  isPart(depth: number, name: string): boolean {
    const level = this.levels[depth];
    if (level === undefined) return false;
    const length = level === -1 ? this.restWidth : level * 2;
    return name.length === length && /^[0-9a-f]+$/.test(name);
  }
}

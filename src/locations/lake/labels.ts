/**
 * tarn's JsonLabels format: a key's labels file holds a JSON list of strings, the union of the
 * labels of every write of the key.
 */
import { LocationError } from '../../errors.js';

/** The union of two label lists, or null when nothing is new. */
export function mergeLabels(old: readonly string[] | null, added: readonly string[]): string[] | null {
  const merged = [...new Set([...(old ?? []), ...added])];
  return merged.length === (old ?? []).length ? null : merged;
}

/** The text of a labels file. */
export function labelsText(labels: readonly string[]): string {
  return JSON.stringify(labels);
}

/** A labels file's list; `where` names the lake in the error for anything that is not a JSON list. */
export function parseLabels(text: string, where: string): string[] {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (Array.isArray(parsed)) return parsed.map(String);
  } catch {
    // reported below
  }
  throw new LocationError(`${where}: the labels file is not a JSON list`, where);
}

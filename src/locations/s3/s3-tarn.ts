/**
 * tarn's S3 layout (`layout: 'tarn'`), so that tarn's S3 location and cairn share one bucket: a
 * value is the object `abcd/<rest>` (tarn's levels [2, -1]); its labels and last use are tags of
 * that object, `_<label>` = `_<label>` and `usage_date` = seconds since the epoch. Nothing else is
 * written to the bucket (tarn's `contents()` fails on an object whose name is not a key).
 */

export const TARN_LEVELS: readonly number[] = [2, -1];
const USAGE_TAG = 'usage_date';
const LABEL_TAG = '_';

export type Tags = Map<string, string>;

export function tagsFrom(set: readonly { Key?: string; Value?: string }[] | undefined): Tags {
  return new Map((set ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? '']));
}

export function tagSet(tags: Tags): { Key: string; Value: string }[] {
  return [...tags].map(([Key, Value]) => ({ Key, Value }));
}

export function labelsOfTags(tags: Tags): string[] {
  return [...tags.keys()].filter((name) => name.startsWith(LABEL_TAG)).map((name) => name.slice(LABEL_TAG.length));
}

export function lastUsedOfTags(tags: Tags): Date | null {
  const seconds = Number(tags.get(USAGE_TAG));
  return tags.has(USAGE_TAG) && Number.isFinite(seconds) ? new Date(seconds * 1000) : null;
}

/** Adds labels (and a last use, ms since the epoch) to `tags`; true when something changed. */
export function addToTags(tags: Tags, labels: readonly string[], usedAt: number | null): boolean {
  let changed = false;
  for (const label of labels) {
    const name = LABEL_TAG + label;
    if (tags.get(name) !== name) {
      tags.set(name, name);
      changed = true;
    }
  }
  if (usedAt !== null) {
    tags.set(USAGE_TAG, String(usedAt / 1000));
    changed = true;
  }
  return changed;
}

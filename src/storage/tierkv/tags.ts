import { InvalidValueError } from '../../errors.js';

/** One tag or several, as the seed's `set('key1', …)` and `set(['BLUE', '1'], …)`. */
export type Tags = string | readonly string[];

/** The tags as a list (the caller's own array when it gave one: never changed here), each checked to be a string. */
export function tagList(tags: Tags): readonly string[] {
  const list = typeof tags === 'string' ? [tags] : tags;
  if (!Array.isArray(list)) throw new InvalidValueError(`Tags must be a string or an array of strings, not ${Object.prototype.toString.call(tags)}`);
  for (let at = 0; at < list.length; at++) {
    const tag: unknown = list[at];
    if (typeof tag !== 'string') throw new InvalidValueError(`A tag must be a string, not ${Object.prototype.toString.call(tag)}`);
  }
  return list;
}

/**
 * The entry id of a set of tags: its sorted, distinct tags as a JSON array. JSON quotes and
 * escapes each tag, so ['AB','C'] and ['A','BC'] give different ids (the seed joined them with no
 * separator and both became 'ABC'); the order of tags and repeats do not matter.
 */
export function entryId(tags: Tags): { id: string; tags: readonly string[] } {
  const list = tagList(tags);
  if (list.length === 0) throw new InvalidValueError('An entry needs at least one tag');
  let sorted: readonly string[];
  if (list.length === 1) sorted = list;
  else if (list.length === 2) sorted = list[0] === list[1] ? [list[0]!] : list[0]! < list[1]! ? list : [list[1]!, list[0]!];
  else sorted = [...new Set(list)].sort();
  return { id: jsonOf(sorted), tags: sorted };
}

/** A tag that JSON writes as it is between quotes: no quote, backslash, control character or lone surrogate half. */
function plain(tag: string): boolean {
  for (let i = 0; i < tag.length; i++) {
    const code = tag.charCodeAt(i);
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) return false;
  }
  return true;
}

/** JSON.stringify of a list of strings, with a shortcut for the common one or two plain tags (same output). */
function jsonOf(sorted: readonly string[]): string {
  if (sorted.length === 1 && plain(sorted[0]!)) return `["${sorted[0]!}"]`;
  if (sorted.length === 2 && plain(sorted[0]!) && plain(sorted[1]!)) return `["${sorted[0]!}","${sorted[1]!}"]`;
  return JSON.stringify(sorted);
}

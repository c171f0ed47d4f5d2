import type { Key } from '../../key.js';
import type { ValueKind } from './value-kinds.js';

/** One entry of a TierKV store, as the in-memory index knows it. */
export interface Rec {
  /** The entry id: its sorted tags as a JSON array. */
  readonly id: string;
  /**
   * The content key (sha256) of the value; null while a memory-only store holds the value in
   * `value` and has not hashed it yet (it is hashed when it is written to the Memory location).
   */
  key: Key | null;
  /**
   * Memory-only stores: the slab that holds the value (at `at`) until it is written to the
   * Memory location; null otherwise.
   */
  value: Slab | null;
  /** Offset of the value in `value`. */
  at: number;
  /** Bytes of the value. */
  readonly size: number;
  /** The type the value was given as, and is given back as. */
  readonly kind: ValueKind;
  /** Commit sequence number: the newer of two copies of an entry wins. */
  readonly seq: number;
  /** Index of the filesystem tier that holds the value durably, or -1 when only memory holds it. */
  readonly tier: number;
  /** Bytes the value takes in its tier (compressed), for byte limits. */
  readonly stored: number;
  /** The value is a Disk blob in its tier (not inline in SQLite). */
  readonly blob: boolean;
  /**
   * Position of this entry in the list of each of its tags (in the order of the id), for O(1)
   * removal: the first two inline (most entries have one or two tags), the others in `more`.
   */
  p0: number;
  p1: number;
  more: number[] | null;
}

/** Fields of a new entry that the index fills in (p0 and p1 are -1 until then). */
export const UNPLACED = { p0: -1, p1: -1, more: null } as const;

function posOf(rec: Rec, t: number): number {
  return t === 0 ? rec.p0 : t === 1 ? rec.p1 : rec.more![t - 2]!;
}

function setPos(rec: Rec, t: number, at: number): void {
  if (t === 0) rec.p0 = at;
  else if (t === 1) rec.p1 = at;
  else (rec.more ??= [])[t - 2] = at;
}

/**
 * Values of a memory-only store before they are hashed, packed one after the other into a
 * shared buffer: no object per value. `live` counts the bytes still in use, `recs` the entries
 * that were placed here (some since removed), so that a mostly free slab can be compacted.
 */
export class Slab {
  used = 0;
  live = 0;
  readonly recs: Rec[] = [];
  /** A plain Uint8Array, not a Buffer: its `subarray` is the engine's own, cheaper than Buffer's. */
  constructor(readonly bytes: Uint8Array) {}
}

/** The tags of an entry id. */
export function tagsOfId(id: string): string[] {
  // most ids are plain tags between quotes (no escapes): split them without the JSON parser
  // (opening a store parses every id); any backslash means escapes, and JSON.parse reads them
  if (id.indexOf('\\') === -1 && id.length >= 4 && id.startsWith('["') && id.endsWith('"]')) return id.slice(2, -2).split('","');
  return JSON.parse(id) as string[];
}

/**
 * The entries of one tag: the entry itself while it is the only one (a feature store's tags often
 * name one entry each, like the seed's ['BLUE', '1']: no array for those), an array from the
 * second on.
 */
type TagEntries = Rec | Rec[];

/**
 * Tag → entries, with one array per tag of several entries so that `sample` picks k entries in
 * O(k), and positions kept in each entry so that removal is a swap with the last element.
 */
export class TagIndex {
  readonly entries = new Map<string, Rec>();
  private readonly byTag = new Map<string, TagEntries>();
  /** How many entries share each content key (values are stored once per key). */
  private readonly refs = new Map<Key, number>();

  get size(): number {
    return this.entries.size;
  }

  get(id: string): Rec | undefined {
    return this.entries.get(id);
  }

  hasTag(tag: string): boolean {
    return this.byTag.has(tag);
  }

  refCount(key: Key): number {
    return this.refs.get(key) ?? 0;
  }

  /** Adds `rec` (its sorted, distinct `tags` are the ones its id names), replacing the entry with the same id; returns the replaced one. */
  put(rec: Rec, tags: readonly string[] = tagsOfId(rec.id), known?: Rec | null): Rec | undefined {
    // `known`: the caller looked the entry up already (null: there is none)
    const old = known === undefined ? this.entries.get(rec.id) : (known ?? undefined);
    if (old) this.remove(old);
    this.entries.set(rec.id, rec);
    if (rec.key !== null) this.refs.set(rec.key, (this.refs.get(rec.key) ?? 0) + 1);
    for (let t = 0; t < tags.length; t++) {
      const tag = tags[t]!;
      const list = this.byTag.get(tag);
      if (list === undefined) {
        this.byTag.set(tag, rec);
        setPos(rec, t, 0);
      } else if (Array.isArray(list)) {
        setPos(rec, t, list.push(rec) - 1);
      } else {
        // the tag's second entry: a literal, as a pushed-to empty array reserves room for 17
        this.byTag.set(tag, [list, rec]);
        setPos(rec, t, 1);
      }
    }
    return old;
  }

  /** Gives a hashed key to an entry that had none (its value was just written to memory). */
  setKey(rec: Rec, key: Key): void {
    if (rec.key !== null) return;
    rec.key = key;
    if (this.entries.get(rec.id) === rec) this.refs.set(key, (this.refs.get(key) ?? 0) + 1);
  }

  remove(rec: Rec): void {
    if (this.entries.get(rec.id) !== rec) return;
    this.entries.delete(rec.id);
    if (rec.key !== null) {
      const count = (this.refs.get(rec.key) ?? 1) - 1;
      if (count > 0) this.refs.set(rec.key, count);
      else this.refs.delete(rec.key);
    }
    const tags = tagsOfId(rec.id);
    for (let t = 0; t < tags.length; t++) {
      const tag = tags[t]!;
      const list = this.byTag.get(tag)!;
      if (!Array.isArray(list)) {
        this.byTag.delete(tag);
        continue;
      }
      const at = posOf(rec, t);
      const last = list.pop()!;
      if (last !== rec) {
        list[at] = last;
        setPos(last, tagsOfId(last.id).indexOf(tag), at);
      }
      if (list.length === 0) this.byTag.delete(tag);
    }
  }

  /** `k` distinct entries carrying any of `tags`, uniformly at random among them (all when fewer). */
  sampleAny(tags: readonly string[], k: number, random: () => number = Math.random): Rec[] {
    if (tags.length === 1) return this.sample(tags[0]!, k, random);
    const all = this.union(tags); // a fresh array: shuffled in place
    if (!(k > 0)) return [];
    const take = Math.min(Math.floor(k), all.length);
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (all.length - i));
      const chosen = all[j]!;
      all[j] = all[i]!;
      all[i] = chosen;
    }
    all.length = take;
    return all;
  }

  /** Entries carrying any of `tags`, each once. */
  union(tags: readonly string[]): Rec[] {
    if (tags.length === 1) return this.listOf(tags[0]!).slice();
    const seen = new Set<Rec>();
    for (const tag of tags) for (const rec of this.listOf(tag)) seen.add(rec);
    return [...seen];
  }

  /** The entries of `tag` (the index's own array: not to be changed). */
  private listOf(tag: string): Rec[] {
    const list = this.byTag.get(tag);
    return list === undefined ? [] : Array.isArray(list) ? list : [list];
  }

  /**
   * `k` distinct entries tagged `tag`, uniformly at random (all of them, shuffled, when fewer):
   * a partial Fisher–Yates shuffle done in place on the tag's list and then undone in reverse
   * order, so it costs O(k) whatever the number of entries and leaves the list as it was.
   */
  sample(tag: string, k: number, random: () => number = Math.random): Rec[] {
    const list = this.listOf(tag);
    if (!(k > 0)) return [];
    const n = list.length;
    const take = Math.min(Math.floor(k), n);
    const out: Rec[] = new Array(take);
    const picked: number[] = new Array(take);
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (n - i));
      picked[i] = j;
      const chosen = list[j]!;
      list[j] = list[i]!;
      list[i] = chosen;
      out[i] = chosen;
    }
    // undo the swaps, last first: positions kept in the entries stay right
    for (let i = take - 1; i >= 0; i--) {
      const j = picked[i]!;
      const atI = list[i]!;
      list[i] = list[j]!;
      list[j] = atI;
    }
    return out;
  }
}

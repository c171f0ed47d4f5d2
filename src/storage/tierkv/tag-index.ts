import type { Key } from '../../key.js';

/** One entry of a TierKV store, as the in-memory index knows it. */
export interface Rec {
  /** The entry id: its sorted tags as a JSON array. */
  readonly id: string;
  /** The content key (sha256) of the value. */
  readonly key: Key;
  /** Bytes of the value. */
  readonly size: number;
  /** Commit sequence number: the newer of two copies of an entry wins. */
  readonly seq: number;
  /** Index of the filesystem tier that holds the value durably, or -1 when only memory holds it. */
  readonly tier: number;
  /** Bytes the value takes in its tier (compressed), for byte limits. */
  readonly stored: number;
  /** The value is a Disk blob in its tier (not inline in SQLite). */
  readonly blob: boolean;
  /** Position of this entry in the list of each of its tags (in the order of the id): O(1) removal. */
  pos: number[];
}

/** The tags of an entry id (entries keep no tag array of their own: the id has them, and memory counts). */
export function tagsOfId(id: string): string[] {
  return JSON.parse(id) as string[];
}

/**
 * Tag → entries, with one array per tag so that `sample` picks k entries in O(k), and
 * positions kept in each entry so that removal is a swap with the last element.
 */
export class TagIndex {
  readonly entries = new Map<string, Rec>();
  private readonly byTag = new Map<string, Rec[]>();
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

  /** Adds `rec`, replacing the entry with the same id; returns the replaced one. */
  put(rec: Rec): Rec | undefined {
    const old = this.entries.get(rec.id);
    if (old) this.remove(old);
    this.entries.set(rec.id, rec);
    this.refs.set(rec.key, (this.refs.get(rec.key) ?? 0) + 1);
    rec.pos = tagsOfId(rec.id).map((tag) => {
      const list = this.byTag.get(tag);
      // a literal, not [] and push: most tags of a feature store name one entry, and a pushed-to
      // empty array reserves room for 17
      if (!list) this.byTag.set(tag, [rec]);
      else list.push(rec);
      return list ? list.length - 1 : 0;
    });
    return old;
  }

  remove(rec: Rec): void {
    if (this.entries.get(rec.id) !== rec) return;
    this.entries.delete(rec.id);
    const count = (this.refs.get(rec.key) ?? 1) - 1;
    if (count > 0) this.refs.set(rec.key, count);
    else this.refs.delete(rec.key);
    tagsOfId(rec.id).forEach((tag, t) => {
      const list = this.byTag.get(tag)!;
      const at = rec.pos[t]!;
      const last = list.pop()!;
      if (last !== rec) {
        list[at] = last;
        last.pos[tagsOfId(last.id).indexOf(tag)] = at;
      }
      if (list.length === 0) this.byTag.delete(tag);
    });
  }

  /** Entries carrying any of `tags`, each once. */
  union(tags: readonly string[]): Rec[] {
    if (tags.length === 1) return [...(this.byTag.get(tags[0]!) ?? [])];
    const seen = new Set<Rec>();
    for (const tag of tags) for (const rec of this.byTag.get(tag) ?? []) seen.add(rec);
    return [...seen];
  }

  /**
   * `k` distinct entries tagged `tag`, uniformly at random (all of them, shuffled, when fewer):
   * a partial Fisher–Yates shuffle that records only the swapped positions, so it costs O(k)
   * whatever the number of entries.
   */
  sample(tag: string, k: number, random: () => number = Math.random): Rec[] {
    const list = this.byTag.get(tag);
    if (!list || k <= 0) return [];
    const n = list.length;
    const take = Math.min(Math.floor(k), n);
    const swapped = new Map<number, number>();
    const out: Rec[] = new Array(take);
    for (let i = 0; i < take; i++) {
      const j = i + Math.floor(random() * (n - i));
      const atJ = swapped.get(j) ?? j;
      swapped.set(j, swapped.get(i) ?? i);
      out[i] = list[atJ]!;
    }
    return out;
  }
}

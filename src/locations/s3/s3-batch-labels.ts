import type { Key } from '../../key.js';

/** Keys of a readBatch whose labels one listing looks up together: bounds what a window holds. */
export const WINDOW = 1024;

/** A page of a listing that starts after `startAfter`: the object names, in order, and whether more follow. */
export type ListPage = (startAfter: string) => Promise<{ names: string[]; truncated: boolean }>;

/**
 * The labels of the values a readBatch found, looked up together when the first of them is asked:
 * the label markers of the keys, sorted, are read in one listing that skips from key to key
 * (`StartAfter`), so a window of keys costs a few pages where a listing per key cost one request
 * each (Levels asks every value's labels when it copies a batch up). Never more requests than keys.
 * Each value's labels are handed out once; a second ask is a fresh lookup of its own.
 */
export class BatchLabels {
  private readonly keys: Key[] = [];
  private lookup: Promise<Map<Key, string[]>> | null = null;

  /**
   * @param path the marker folder of a key (`<prefix>tools/labels/<path>`, no trailing '/')
   * @param page one page of the listing of every label marker
   * @param single the labels of one key, as asked alone
   */
  constructor(
    private readonly path: (key: Key) => string,
    private readonly page: ListPage,
    private readonly single: (key: Key) => Promise<string[] | null>,
  ) {}

  /** False once the window is full or looked up: the next values go into a new one. */
  get open(): boolean {
    return this.lookup === null && this.keys.length < WINDOW;
  }

  add(key: Key): void {
    this.keys.push(key);
  }

  async labels(key: Key): Promise<string[] | null> {
    this.lookup ??= this.listAll();
    const found = await this.lookup;
    const labels = found.get(key);
    if (labels === undefined) return this.single(key);
    found.delete(key);
    return labels;
  }

  private async listAll(): Promise<Map<Key, string[]>> {
    const folders = [...new Set(this.keys)].map((key) => ({ key, folder: this.path(key) + '/' })).sort((a, b) => (a.folder < b.folder ? -1 : 1));
    const found = new Map<Key, string[]>();
    let index = 0;
    let startAfter = folders[0] ? folders[0].folder.slice(0, -1) : '';
    while (index < folders.length) {
      const { names, truncated } = await this.page(startAfter);
      // a key is settled once the listing went past its folder: every marker it has was on a page
      const last = truncated ? names[names.length - 1]! : null;
      for (const name of names) {
        while (index < folders.length && folders[index]!.folder < name && !name.startsWith(folders[index]!.folder)) settle(found, folders[index++]!.key);
        const current = folders[index];
        if (current && name.startsWith(current.folder)) labelsOf(found, current.key).push(decodeURIComponent(name.slice(current.folder.length)));
      }
      if (last === null) break;
      while (index < folders.length && folders[index]!.folder < last && !last.startsWith(folders[index]!.folder)) settle(found, folders[index++]!.key);
      if (index >= folders.length) break;
      // go on inside the folder the page ended in, or skip to the next key's folder
      const next = folders[index]!.folder;
      startAfter = last.startsWith(next) ? last : next.slice(0, -1);
    }
    while (index < folders.length) settle(found, folders[index++]!.key);
    return found;
  }
}

function labelsOf(found: Map<Key, string[]>, key: Key): string[] {
  let labels = found.get(key);
  if (labels === undefined) found.set(key, (labels = []));
  return labels;
}

/** A key whose folder the listing passed: its labels are complete (none, when no marker was listed). */
function settle(found: Map<Key, string[]>, key: Key): void {
  labelsOf(found, key);
}

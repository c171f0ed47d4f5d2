import type { Key } from '../../key.js';
import type { JournalRecordBytes } from '../embedded/journal.js';
import type { ValueKind } from './value-kinds.js';

/** A put as the journal keeps it until SQLite holds it. */
export interface JournalRecord {
  id: string;
  key: Key;
  size: number;
  codec: string;
  kind: ValueKind;
  /** When the set was acknowledged, on the scale of commit sequence numbers (µs): a replay never overwrites a newer commit. */
  ver: number;
  encoded: Buffer;
}

type Header = [id: string, key: Key, size: number, codec: string, kind: ValueKind, ver: number];

/**
 * What a TierKV set says in the embedded store's journal (storage/embedded/journal.ts): a JSON
 * header `[id, key, size, codec, kind, ver]`; the encoded value follows. The layout of release
 * 0.1's journal, so that a journal a killed writer of 0.1 left is replayed by this one.
 */
export function tierRecordMeta(record: Omit<JournalRecord, 'encoded'>): string {
  return JSON.stringify([record.id, record.key, record.size, record.codec, record.kind, record.ver] satisfies Header);
}

/** A journal record as a set; null when its header is not whole (what follows was never acknowledged). */
export function decodeTierRecord({ meta, value }: JournalRecordBytes): JournalRecord | null {
  let header: Header;
  try {
    header = JSON.parse(meta.toString('utf8')) as Header;
  } catch {
    return null;
  }
  const [id, key, size, codec, kind, ver] = header;
  return { id, key, size, codec, kind, ver, encoded: value };
}

import { digestBytes } from '../../digest.js';
import type { Key } from '../../key.js';
import type { JournalRecordBytes } from '../../storage/embedded/journal.js';

/** A put kept in the journal until the database holds it. */
export interface PackedPut {
  key: Key;
  labels: readonly string[] | null;
  bytes: Buffer;
}

const KEY_BYTES = 32;

/**
 * What a Packed put says in the embedded store's journal (storage/embedded/journal.ts): the
 * 32-byte key, then the labels as JSON (nothing without labels); the value follows.
 */
export function packedRecordMeta(put: PackedPut): Buffer {
  const labels = put.labels === null ? '' : JSON.stringify(put.labels);
  const meta = Buffer.allocUnsafe(KEY_BYTES + Buffer.byteLength(labels));
  meta.write(put.key, 0, 'hex');
  meta.write(labels, KEY_BYTES);
  return meta;
}

/**
 * A journal record as a put; null for a record torn by the kill. The key is the sha256 of the
 * value, so damaged bytes are recognised (and end the replay: nothing after them was acknowledged).
 */
export function decodePackedRecord({ meta, value }: JournalRecordBytes): PackedPut | null {
  if (meta.length < KEY_BYTES) return null;
  const key = meta.toString('hex', 0, KEY_BYTES);
  if (digestBytes(value) !== key) return null;
  let labels: string[] | null = null;
  if (meta.length > KEY_BYTES) {
    try {
      labels = JSON.parse(meta.toString('utf8', KEY_BYTES)) as string[];
    } catch {
      return null;
    }
  }
  return { key, labels, bytes: value };
}

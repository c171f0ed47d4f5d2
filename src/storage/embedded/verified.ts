import { verifyBytes } from '../../digest.js';
import type { Key } from '../../key.js';
import { StorageCorruption } from '../../errors.js';

/** How a store encoded a value (a compression codec), to give its plain bytes back. */
export interface StoredEncoding {
  name: string;
  decode(encoded: Buffer): Buffer;
}

/**
 * The plain bytes of a stored value, checked against its content key: bytes that do not decode,
 * or that do not hash to `key`, are a StorageCorruption (never a wrong value). Without
 * `encoding` the stored bytes are the value.
 */
export function verifiedValue(key: Key, stored: Buffer, where: string, encoding?: StoredEncoding): Buffer {
  let plain = stored;
  if (encoding !== undefined) {
    try {
      plain = encoding.decode(stored);
    } catch (error) {
      throw new StorageCorruption(key, null, `${where} (it does not decode as ${encoding.name})`, { cause: error });
    }
  }
  verifyBytes(key, plain, where);
  return plain;
}

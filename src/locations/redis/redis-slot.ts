/**
 * The Redis Cluster hash slot of a key (CRC16/XMODEM of the key, or of its `{hash tag}`, mod
 * 16384): readBatch groups the keys of a batch by the node that serves them, one pipeline each.
 */

const TABLE = new Uint16Array(256);
for (let byte = 0; byte < 256; byte++) {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
  TABLE[byte] = crc & 0xffff;
}

export const SLOT_COUNT = 16384;

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }

export function keySlot(name: string): number {
  // a name of ASCII characters (every cairn key, most prefixes) is its own UTF-8: no Buffer per key
  let ascii = true;
  for (let index = 0; index < name.length; index++) {
    if (name.charCodeAt(index) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (!ascii) return bytesSlot(Buffer.from(name, 'utf8'));
  let start = 0;
  let end = name.length;
  // only the part inside the first {...} counts, when it is not empty
  const open = name.indexOf('{');
  if (open !== -1) {
    const close = name.indexOf('}', open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  for (let index = start; index < end; index++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ name.charCodeAt(index)) & 0xff]!;
  return crc % SLOT_COUNT;
}

function bytesSlot(name: Buffer): number {
  let bytes = name;
  const open = bytes.indexOf(OPEN);
  if (open !== -1) {
    const close = bytes.indexOf(CLOSE, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc % SLOT_COUNT;
}

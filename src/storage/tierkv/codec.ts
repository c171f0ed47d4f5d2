import { brotliCompressSync, brotliDecompressSync, constants as zlib, gunzipSync, gzipSync } from 'node:zlib';
import { compressSync as lz4Compress, uncompressSync as lz4Uncompress } from 'lz4-napi';
import { ConfigError } from '../../errors.js';

/** Codecs by name; `true` means lz4 (the seed's choice, through blosc), `false` means none. */
export type CodecName = 'none' | 'lz4' | 'gzip' | 'brotli';
export type Compression = boolean | CodecName;

export interface Codec {
  readonly name: CodecName;
  encode(bytes: Buffer): Buffer;
  decode(bytes: Buffer): Buffer;
}

const CODECS: Record<CodecName, Codec> = {
  none: { name: 'none', encode: (bytes) => bytes, decode: (bytes) => bytes },
  lz4: { name: 'lz4', encode: (bytes) => lz4Compress(bytes), decode: (bytes) => lz4Uncompress(bytes) },
  // level 6 / quality 4: a middle ground; values of a feature store are written once, read often
  gzip: { name: 'gzip', encode: (bytes) => gzipSync(bytes, { level: 6 }), decode: (bytes) => gunzipSync(bytes) },
  brotli: {
    name: 'brotli',
    encode: (bytes) => brotliCompressSync(bytes, { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } }),
    decode: (bytes) => brotliDecompressSync(bytes),
  },
};

export function codecFor(compression: Compression | undefined): Codec {
  if (compression === undefined || compression === false) return CODECS.none;
  if (compression === true) return CODECS.lz4;
  const codec = CODECS[compression];
  if (!codec) throw new ConfigError(`Unknown compression ${JSON.stringify(compression)}: expected true, false, ${Object.keys(CODECS).join(', ')}`);
  return codec;
}

/** The codec a stored row names (a store written with another codec stays readable). */
export function codecNamed(name: string): Codec {
  const codec = CODECS[name as CodecName];
  if (!codec) throw new ConfigError(`Stored value uses an unknown codec ${JSON.stringify(name)}`);
  return codec;
}

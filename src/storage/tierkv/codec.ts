import { brotliCompressSync, brotliDecompressSync, constants as zlib, gunzipSync, gzipSync } from 'node:zlib';
import { ConfigError } from '../../errors.js';
import { requireOptional } from '../../optional.js';

type Lz4 = typeof import('lz4-napi');
let lz4: Lz4 | null = null;
/** lz4-napi is a native addon: loaded the first time an lz4 tier is used, not when cairn is imported. */
function loadLz4(): Lz4 {
  lz4 ??= requireOptional<Lz4>('lz4-napi', 'lz4 compression');
  return lz4;
}

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
  lz4: { name: 'lz4', encode: (bytes) => loadLz4().compressSync(bytes), decode: (bytes) => loadLz4().uncompressSync(bytes) },
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

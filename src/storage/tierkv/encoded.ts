import { bufferBlob, type Source, type Value } from '../../blob.js';
import { verifyBytes } from '../../digest.js';
import type { Key } from '../../key.js';
import type { Memory } from '../../locations/memory.js';
import type { Entry, Location } from '../../locations/interface.js';
import type { Codec } from './codec.js';

/**
 * The memory tier with compression: a Memory location that holds each value encoded with `codec`
 * under the key of its plain bytes, and gives the plain bytes back on every read.
 */
export class EncodedMemory implements Location {
  readonly name: string;

  constructor(
    readonly memory: Memory,
    readonly codec: Codec,
  ) {
    this.name = `${memory.name}[${codec.name}]`;
  }

  /** Bytes held (encoded). */
  get size(): number {
    return this.memory.size;
  }

  /** The plain bytes of `key`; without a codec these are the stored bytes themselves (never modify them). */
  peek(key: Key): Buffer | null {
    const stored = this.memory.peek(key);
    return stored === null || this.codec.name === 'none' ? stored : this.codec.decode(stored);
  }

  /** Synchronous write of plain `bytes` whose sha256 is `key` (the caller computed it): see `Memory.putSync`. */
  putSync(key: Key, bytes: Buffer): boolean {
    return this.memory.putSync(key, this.codec.name === 'none' ? bytes : this.codec.encode(bytes));
  }

  async read(key: Key): Promise<Value | null> {
    const bytes = await this.readBytes(key);
    return bytes === null ? null : { key, ...bufferBlob(bytes), labels: async () => null };
  }

  async readBytes(key: Key): Promise<Buffer | null> {
    const stored = await this.memory.readBytes(key);
    return stored === null ? null : this.codec.decode(stored);
  }

  async *readBatch(keys: Iterable<Key>): AsyncIterable<[Key, Value | null]> {
    for (const key of keys) yield [key, await this.read(key)];
  }

  async write(key: Key, source: Source, labels?: readonly string[] | null): Promise<Value | null> {
    if (this.codec.name === 'none') return this.memory.write(key, source, labels);
    const plain = await source.bytes();
    // verify the plain bytes before they are encoded: the Memory below cannot
    if (!source.verified) verifyBytes(key, plain, `a copy into ${this.name}`);
    const stored = await this.memory.write(key, { ...bufferBlob(this.codec.encode(plain)), verified: true }, labels);
    // the Memory holds the encoded bytes: the value written is the plain ones
    return stored === null ? null : { key, ...bufferBlob(plain), labels: () => stored.labels() };
  }

  delete(key: Key): Promise<boolean> {
    return this.memory.delete(key);
  }

  touch(key: Key): Promise<boolean> {
    return this.memory.touch(key);
  }

  contents(): AsyncIterable<Entry> {
    return this.memory.contents();
  }
}

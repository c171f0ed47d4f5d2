import { createHash } from 'node:crypto';

/** A deterministic value for entry `i` of `prefix`: mostly small, every 50th one larger than the inline limit. */
export function valueFor(prefix: string, i: number): Buffer {
  const size = i % 50 === 7 ? 100_000 : 200 + (i % 300);
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`${prefix}/${i}`).digest();
  for (let offset = 0; offset < size; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** A value of 80 KiB (above the inline limit) for entry `j`, version `version`: its first 32 bytes name the version. */
export function replacement(j: number, version: string): Buffer {
  const out = Buffer.alloc(80 * 1024);
  out.write(version.padEnd(32), 0, 'utf8');
  let block = createHash('sha256').update(`${j}/${version}`).digest();
  for (let offset = 32; offset < out.length; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

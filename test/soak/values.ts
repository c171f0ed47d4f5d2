import { createHash } from 'node:crypto';

/**
 * Deterministic values for the soak: every process derives value `name` of `size` bytes alike,
 * so that processes can rewrite each other's values (and seeded ones) without sharing files.
 */
export function valueOf(name: string, size: number): Buffer {
  const bytes = Buffer.alloc(size);
  // a 32-byte block per 64 KiB, the rest repeats it: cheap to make, distinct per name and size
  let block = createHash('sha256').update(`${name}/${size}`).digest();
  for (let offset = 0; offset < size; offset += block.length) {
    if (offset % 65_536 === 0) block = createHash('sha256').update(block).digest();
    block.copy(bytes, offset);
  }
  return bytes;
}

/** Sizes that take each write path: synchronous small, async in memory, staged/streamed large. */
export const SIZES = [200, 3_000, 40_000, 300_000, 2_500_000];

/** The size of seeded value i (what gc evicts and writers rewrite): every sixth is 8 MB, slow to verify in place. */
export function seedSize(i: number): number {
  return i % 6 === 5 ? 8_000_000 : SIZES[i % SIZES.length]!;
}

export function keyOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The counts of a soak run, as docs/reliability.md reports them. */
export interface Tally {
  runs: number;
  acknowledged: number;
  lost: number;
  corrupt: number;
  labelsMissing: number;
  leftOver: number;
  /** Files a killed gc held in its folder (moved aside, not yet removed or put back), before the next open. */
  heldByKilledGc: number;
}

export function newTally(): Tally {
  return { runs: 0, acknowledged: 0, lost: 0, corrupt: 0, labelsMissing: 0, leftOver: 0, heldByKilledGc: 0 };
}

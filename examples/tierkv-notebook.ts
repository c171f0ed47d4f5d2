/**
 * The seed notebook's three TierKV use cases, with the same shape, in cairn.
 * Run: npx tsx examples/tierkv-notebook.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResourceFilesystem, ResourceMemory, TierKV } from '../src/storage/tierkv/index.js';

const show = (values: Buffer[]) => JSON.stringify(values.map((value) => value.toString('utf8')));

// 1. simple usage: memory only, nothing persisted
await TierKV.with({ name: 'storename' }, async (store1) => {
  await store1.set('key1', Buffer.from('data1'));
  await store1.set('key2', Buffer.from('data2'));
  const x = await store1.get('key1');
  const y = await store1.get('key2');
  const z = await store1.get('key3'); // [] (the seed returned an empty list too)
  const l = await store1.get(['key1', 'key2', 'key3']);
  console.log('1: x', show(x), 'y', show(y), 'z', show(z));
  console.log('1: l is', show(l.sort(Buffer.compare)));
});

// 2. tags: BLUE and RED, get and sample (memory only)
async function colours(store: TierKV, step: string): Promise<void> {
  for (let i = 1; i <= 7; i++) await store.set(['BLUE', String(i)], Buffer.from(`BLUE ${i}`));
  await store.set(['RED', '1'], Buffer.from('RED 1'));
  const blues = await store.get('BLUE');
  console.log(`${step}: blues`, show(blues.sort(Buffer.compare)));
  const all = await store.sample('BLUE', 30000); // all of them, when fewer
  console.log(`${step}: sample 30000 gave`, all.length, 'values');
  const blues3 = await store.sample('BLUE', 3);
  console.log(`${step}: blues 3`, blues3.length, 'distinct:', new Set(blues3.map(String)).size === 3);
  console.log(`${step}: reds`, show(await store.get('RED')));
}
await TierKV.with({ name: 'sample_store' }, (store2) => colours(store2, '2'));

// 3. three tiers: memory, then a fast and a slow filesystem (temp folders here), compressed;
// every acknowledged set survives the process being killed; reopening gives every entry back
const fast = mkdtempSync(join(tmpdir(), 'tierkv-fast-'));
const slow = mkdtempSync(join(tmpdir(), 'tierkv-slow-'));
const resources = () => [
  new ResourceMemory({ limit: 0.9, compression: false }),
  new ResourceFilesystem({ path: fast, limit: 0.9, compression: true }),
  new ResourceFilesystem({ path: slow, limit: 0.9, compression: true }),
];
try {
  const store3 = await TierKV.open({ name: 'mystore', resources: resources(), cache: true });
  try {
    await colours(store3, '3');
  } finally {
    await store3.close();
  }
  {
    // `await using` closes the store when the block is left
    await using again = await TierKV.open({ name: 'mystore', resources: resources() });
    console.log('3: reopened with', (await again.keys()).length, 'entries; blues', (await again.get('BLUE')).length);
    // features as Float32Arrays come back as Float32Arrays, aligned, from any tier
    await again.set(['embedding', 'BLUE 1'], Float32Array.from([0.25, -1.5, 3]));
    const [embedding] = await again.get('embedding');
    console.log('3: embedding', embedding instanceof Float32Array, Array.from(embedding as unknown as Float32Array));
    console.log('3: tiers', (await again.stats()).map((tier) => `${tier.tier}: ${tier.entries}`).join(', '));
  }
} finally {
  rmSync(fast, { recursive: true, force: true });
  rmSync(slow, { recursive: true, force: true });
}

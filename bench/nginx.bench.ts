/**
 * Nginx benchmark: reads through `Nginx.readBytes` and `read().stream()` (bounded bodies, a
 * whole-transfer deadline, hashing) against a bare undici GET loop that hashes the same bytes,
 * at the same concurrency, from the same nginx (started here on a free loopback port).
 *
 *   npm run bench -- nginx
 *
 * The machine is shared: each round runs every variant once, in alternating order, and a ratio is
 * the median of the per-round ratios against the bare loop of the same round.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Agent } from 'undici';
import { Disk, type Source } from '../src/index.js';
import { Nginx } from '../src/locations/http/nginx.js';
import { startNginx } from '../test/servers/nginx.js';

const ROUNDS = 7;
const CONCURRENCY = 16;
const CASES = [
  { label: '4 KiB', size: 4096, values: 500, reads: 4000 },
  { label: '4 MiB', size: 4 * 1024 * 1024, values: 8, reads: 64 },
];

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const bytesSource = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function rate(count: number, task: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < count) await task(next++); }));
  return count / ((performance.now() - start) / 1000);
}

const root = mkdtempSync(join(tmpdir(), 'cairn-bench-nginx-'));
const server = await startNginx(root);
const lake = new Disk(root);
const nginx = new Nginx(server.url);
const agent = new Agent({ connections: 16 });
try {
  for (const { label, size, values, reads } of CASES) {
    const keys: string[] = [];
    for (let i = 0; i < values; i++) {
      const bytes = randomBytes(size);
      keys.push(sha256(bytes));
      await lake.write(keys[i]!, bytesSource(bytes));
    }
    const origin = new URL(server.url).origin;
    const path = (key: string) => `${new URL(server.url).pathname}${key.slice(0, 2)}/${key.slice(2)}`;
    let check = 0;
    const variants: Record<string, () => Promise<number>> = {
      'bare undici GET + sha256': () => rate(reads, async (i) => {
        const key = keys[i % values]!;
        const response = await agent.request({ origin, path: path(key), method: 'GET' });
        const bytes = Buffer.from(await response.body.arrayBuffer());
        if (sha256(bytes) !== key) throw new Error('bad bytes');
        check += bytes.length;
      }),
      'Nginx.readBytes': () => rate(reads, async (i) => { check += (await nginx.readBytes(keys[i % values]!))!.length; }),
      'Nginx.read + stream()': () => rate(reads, async (i) => {
        const value = (await nginx.read(keys[i % values]!))!;
        for await (const chunk of value.stream()) check += (chunk as Buffer).length;
      }),
    };
    const names = Object.keys(variants);
    const rates: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
    await variants['Nginx.readBytes']!(); // warm-up: connections, config.yml
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const name of order) rates[name]!.push(await variants[name]!());
    }
    console.log(`\n${label} values, ${CONCURRENCY} reads in flight, median of ${ROUNDS} rounds (check ${check > 0 ? 'ok' : '?'})`);
    for (const name of names) {
      const ratios = rates[name]!.map((value, round) => value / rates[names[0]!]![round]!);
      console.log(`  ${name.padEnd(28)} ${median(rates[name]!).toFixed(0).padStart(8)} reads/s   ${median(ratios).toFixed(2)}x of bare`);
    }
  }
} finally {
  await nginx.close();
  await agent.close();
  await server.close();
  rmSync(root, { recursive: true, force: true });
}

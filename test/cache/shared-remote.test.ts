/**
 * Two processes standing for two machines share one smartCache on Redis, then on S3: the second
 * one hits what the first stored and gets a result equal to it.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/tmp.js';
import { type RedisServer, startRedis } from '../servers/redis.js';
import { S3_CREDENTIALS, type S3Server, startS3 } from '../servers/s3.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const module = (path: string) => JSON.stringify(pathToFileURL(join(root, path)).href);

let redis: RedisServer;
let s3: S3Server;
let script: string;

beforeAll(async () => {
  [redis, s3] = await Promise.all([startRedis(), startS3()]);
  script = join(tempDir('cairn-sc-shared-'), 'machine.mjs');
  // a machine: opens the shared location as its user would, calls the cached function, prints what it got
  writeFileSync(
    script,
    `import { smartCache } from ${module('src/cache/index.ts')};
import { RedisLocation } from ${module('src/locations/redis/redis.ts')};
import { S3 } from ${module('src/locations/s3/s3.ts')};
const [kind, target, bucket, prefix] = process.argv.slice(2);
const location = kind === 'redis'
  ? new RedisLocation(target, { prefix })
  : new S3(target, bucket, { prefix, credentials: ${JSON.stringify(S3_CREDENTIALS)} });
const features = smartCache({ index: location, storage: location })(async function features(scan, opts) {
  return { pid: process.pid, sigma: opts.sigma, blurred: scan.map((v) => v * opts.sigma), names: ['a', 'b'], big: new Float64Array(2048).fill(opts.sigma) };
});
const result = await features(new Float32Array([1, 2, 3]), { sigma: 2 });
await location.close();
console.log(JSON.stringify({
  stats: features.stats,
  result: { ...result, blurred: [result.blurred.constructor.name, ...result.blurred], big: [result.big.constructor.name, result.big.length, result.big[2047]] },
}));
`,
  );
});
afterAll(async () => {
  await Promise.all([redis?.destroy(), s3?.destroy()]);
  cleanup();
});

interface Machine {
  stats: { hits: number; misses: number; repaired: number; errors: number };
  result: { pid: number; sigma: number; blurred: unknown[]; names: string[]; big: unknown[] };
}

function machine(...args: string[]): Promise<Machine> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as Machine) : reject(new Error(`machine exited with ${code}`))));
  });
}

describe('one smartCache shared by two machines', () => {
  for (const kind of ['redis', 's3'] as const) {
    it(`on ${kind}: the second process hits what the first stored, with an equal result`, async () => {
      const args = kind === 'redis' ? [redis.url, '', 'team:'] : [s3.endpoint, s3.bucket, 'team'];
      const first = await machine(kind, ...args);
      expect(first.stats).toEqual({ hits: 0, misses: 1, repaired: 0, errors: 0, unstored: 0 });
      expect(first.result).toMatchObject({ sigma: 2, blurred: ['Float32Array', 2, 4, 6], names: ['a', 'b'], big: ['Float64Array', 2048, 2] });
      const second = await machine(kind, ...args);
      expect(second.stats).toEqual({ hits: 1, misses: 0, repaired: 0, errors: 0, unstored: 0 });
      // the pid inside the result is the first process's: the second one did not compute it
      expect(second.result).toEqual(first.result);
    });
  }
});

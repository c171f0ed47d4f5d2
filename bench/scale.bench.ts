/**
 * Many keys, bounded memory (issue 15): peak RSS and time of `cairn ls --json | wc -l`, `cairn ls`
 * (the table), `du`, `verify` and `gc --dry-run` over lakes of 10⁴, 10⁵ and 10⁶ tiny values,
 * against the 200 MB target, with the time per key at each size (the same at every size: linear).
 *
 *   npx tsx bench/run.ts scale
 *   CAIRN_BENCH_KEYS=10000,100000 CAIRN_BENCH_LAKES=disk,redis npx tsx bench/run.ts scale
 *
 * The lakes (`CAIRN_BENCH_LAKES`, default all four):
 * - `disk`: one Disk, written straight into tarn's layout (see cli-measure.ts);
 * - `levels`: Levels(Disk, Disk) from a config file, the upper level holding half of the keys and
 *   the lower one all of them: `ls` lists each key once, so it de-duplicates across levels;
 * - `redis`: a RedisLocation on a redis-server started here, filled by cairn's own writes;
 * - `s3`: an S3 location on radosgw (Ceph's gateway over a one-node in-memory cluster, as the
 *   tests start it; `CAIRN_BENCH_S3_SERVER=s3rver` for the test server, which stores two files per
 *   object and takes tens of minutes for a million), filled in cairn's layout by bare PUTs, 64 in
 *   flight (a write through the location adds a HEAD per key); `CAIRN_BENCH_S3_KEYS` (default:
 *   those of the other lakes on radosgw, 10⁴ and 10⁵ on s3rver); `CAIRN_BENCH_S3_VERIFY_MAX`: S3
 *   lakes larger than this skip `verify` (a GET per value: about an hour for 10⁶ on radosgw here).
 *
 * Each command runs as users run it once installed (compiled JavaScript, under /usr/bin/time for
 * its peak RSS). Its output is checked (`ls --json` prints one line per key plus the two brackets, `du`
 * counts every key), and three values are read back with `cairn read` afterwards. The time per
 * key is also given from one size to the next (the difference of the times over the difference of
 * the counts), which leaves out the start of the process: linear when it stays the same.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type Location, type Source } from '../src/index.js';
import { RedisLocation } from '../src/locations/redis/redis.js';
import { S3 } from '../src/locations/s3/s3.js';
import { startRadosgw } from '../test/servers/radosgw.js';
import { startRedis } from '../test/servers/redis.js';
import { buildCli, loadAverage, measure, scratchFolder, tinyDiskLake, tinyValue } from './cli-measure.js';
import { startS3Process } from './s3-process.js';

const TARGET_MB = 200;
const counts = (process.env.CAIRN_BENCH_KEYS ?? '10000,100000,1000000').split(',').map(Number);
const s3Server = process.env.CAIRN_BENCH_S3_SERVER ?? 'radosgw';
const s3Counts = (process.env.CAIRN_BENCH_S3_KEYS ?? (s3Server === 's3rver' ? '10000,100000' : counts.join(','))).split(',').map(Number);
const lakes = (process.env.CAIRN_BENCH_LAKES ?? 'disk,levels,redis,s3').split(',');
/** S3 `verify` GETs every value (4 at a time): past this many keys it is left out. */
const s3VerifyMax = Number(process.env.CAIRN_BENCH_S3_VERIFY_MAX ?? Infinity);
const work = scratchFolder('scale');
const cli = buildCli(work);
const S3_SECRET = 'S3RVER'; // s3rver's fixed credentials
const env: NodeJS.ProcessEnv = { ...process.env };
const keyOf = (index: number) => createHash('sha256').update(tinyValue(index)).digest('hex');
/** A source as HashKeyStorage hands it over (hashed already). */
const source = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });

/** Writes the tiny values 0 ≤ index < count through the location's own write, `inFlight` at a time. */
async function fill(location: Location, count: number, inFlight: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const index = next++;
        if ((await location.write(keyOf(index), source(tinyValue(index)))) === null) throw new Error(`${location.name} declined a write`);
      }
    }),
  );
}

interface Bucket {
  endpoint: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  destroy(): Promise<void>;
}

async function s3rver(): Promise<Bucket> {
  const server = await startS3Process();
  return { ...server, credentials: { accessKeyId: S3_SECRET, secretAccessKey: S3_SECRET }, destroy: () => server.stop() };
}

/** Puts the tiny values 0 ≤ index < count where an S3 location in cairn's layout keeps them (no marks: a value's last use is its mtime). */
async function fillBucket({ endpoint, bucket, credentials }: Bucket, count: number, inFlight: number): Promise<void> {
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 5, requestHandler: { httpAgent: { keepAlive: true, maxSockets: inFlight } } });
  const names = new S3(endpoint, bucket);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const index = next++;
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: names.objectKey(keyOf(index)), Body: tinyValue(index) }));
      }
    }),
  );
  client.destroy();
}

interface Lake {
  /** The option that names the lake: `--lake DIR` or `--config FILE`. */
  option: string;
  /** Keys `du` counts (summed over its locations). */
  stored: number;
  /** What is not in `work` to remove afterwards. */
  cleanup: () => Promise<void>;
}

function configFile(name: string, yaml: string): string {
  const path = join(work, `${name}.cairn.config.yaml`);
  writeFileSync(path, yaml);
  return `--config ${path}`;
}

async function makeLake(kind: string, count: number): Promise<Lake> {
  const none = async () => {};
  if (kind === 'disk') return { option: `--lake ${tinyDiskLake(join(work, `disk-${count}`), 0, count)}`, stored: count, cleanup: none };
  if (kind === 'levels') {
    const upper = tinyDiskLake(join(work, `upper-${count}`), 0, count / 2);
    const lower = tinyDiskLake(join(work, `lower-${count}`), 0, count);
    return { option: configFile(`levels-${count}`, `storage:\n  levels:\n    - disk: ${upper}\n    - disk: ${lower}\n`), stored: count + count / 2, cleanup: none };
  }
  if (kind === 'redis') {
    const server = await startRedis();
    const location = new RedisLocation(server.url);
    await fill(location, count, 64);
    await location.close();
    return { option: configFile(`redis-${count}`, `storage:\n  redis: "${server.url}"\n`), stored: count, cleanup: () => server.destroy() };
  }
  if (kind === 's3') {
    const server = s3Server === 's3rver' ? await s3rver() : await startRadosgw({ buckets: ['scale'] });
    env.CAIRN_BENCH_S3_SECRET = server.credentials.secretAccessKey;
    await fillBucket(server, count, 64);
    const yaml =
      `storage:\n  s3:\n    endpoint: "${server.endpoint}"\n    bucket: ${server.bucket}\n    forcePathStyle: true\n` +
      `    credentials: { accessKeyId: ${server.credentials.accessKeyId}, secretAccessKey: "\${env:CAIRN_BENCH_S3_SECRET}" }\n`;
    return { option: configFile(`s3-${count}`, yaml), stored: count, cleanup: () => server.destroy() };
  }
  throw new Error(`no lake kind ${kind} (disk, levels, redis, s3)`);
}


/** `cairn read` of a few keys gives their values back: the lake holds what cairn writes. */
function checkReads(option: string, count: number): void {
  for (const index of [0, Math.floor(count / 2), count - 1]) {
    const result = spawnSync('sh', ['-c', `${process.execPath} ${cli} read ${keyOf(index)} ${option}`], { env });
    if (result.stdout.toString() !== tinyValue(index).toString()) throw new Error(`cairn read of value ${index} gave ${JSON.stringify(result.stdout.toString())}: ${result.stderr.toString()}`);
  }
}

interface Row {
  kind: string;
  count: number;
  command: string;
  seconds: number;
  rssMb: number;
  right: boolean;
}

const rows: Row[] = [];
console.log(`load average at start: ${loadAverage()}`);
for (const kind of lakes) {
  for (const count of kind === 's3' ? s3Counts : counts) {
    const started = performance.now();
    const lake = await makeLake(kind, count);
    console.log(`${kind}, ${count.toLocaleString('en')} keys: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    try {
      const commands: [string, string, (stdout: string) => boolean][] = [
        ['ls --json | wc -l', `CAIRN ${cli} ls --json ${lake.option} | wc -l`, (stdout) => Number(stdout) === count + 2],
        ['ls | wc -l (table)', `CAIRN ${cli} ls ${lake.option} | wc -l`, (stdout) => Number(stdout) === count + 1],
        ['du --json', `CAIRN ${cli} du --json ${lake.option}`, (stdout) => (JSON.parse(stdout) as { count: number }[]).reduce((sum, usage) => sum + usage.count, 0) === lake.stored],
        ['verify', `CAIRN ${cli} verify -q ${lake.option} > /dev/null`, () => true],
        ['gc --dry-run', `CAIRN ${cli} gc -q --dry-run --max-count ${count / 2} --keep-recent 0 ${lake.option} > /dev/null`, () => true],
      ];
      // what gc keeps alive, apart from V8 letting its heap grow before it collects: the same run
      // with V8's old generation capped at 40 MB (a run that needed more would fail)
      if (kind === 'disk' || kind === 'levels') {
        commands.push(['gc --dry-run, old space capped at 40 MB', `CAIRN --max-old-space-size=40 ${cli} gc -q --dry-run --max-count ${count / 2} --keep-recent 0 ${lake.option} > /dev/null`, () => true]);
      }
      for (const [command, line, check] of commands) {
        if (kind === 's3' && command === 'verify' && count > s3VerifyMax) continue;
        const result = measure(work, line, env);
        const row = { kind, count, command, seconds: result.seconds, rssMb: result.rssMb, right: check(result.stdout) };
        rows.push(row);
        console.log(`  ${command}: ${row.seconds.toFixed(2)} s, ${row.rssMb.toFixed(0)} MB${row.right ? '' : `: WRONG OUTPUT ${result.stdout.slice(0, 200)}`}`);
      }
      checkReads(lake.option, count); // last: a read through Levels copies the value into its upper level
    } finally {
      await lake.cleanup();
      for (const name of [`disk-${count}`, `upper-${count}`, `lower-${count}`]) rmSync(join(work, name), { recursive: true, force: true });
    }
  }
}
console.log(`load average at end: ${loadAverage()}\n`);
console.log('| lake | command | keys | time | µs per key | µs per key since the size before | peak RSS | vs 200 MB |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |');
for (const [index, row] of rows.entries()) {
  const before = rows.slice(0, index).findLast((other) => other.kind === row.kind && other.command === row.command);
  const perKey = (r: Row) => (r.seconds * 1e6) / r.count;
  const step = before ? (((row.seconds - before.seconds) * 1e6) / (row.count - before.count)).toFixed(1) : '';
  const verdict = row.rssMb < TARGET_MB ? `${(row.rssMb / TARGET_MB).toFixed(2)}×: met` : `${(row.rssMb / TARGET_MB).toFixed(2)}×: **missed**`;
  console.log(
    `| ${row.kind} | ${row.command}${row.right ? '' : ' (WRONG OUTPUT)'} | ${row.count.toLocaleString('en')} | ${row.seconds.toFixed(2)} s | ${perKey(row).toFixed(1)} | ` +
      `${step} | ${row.rssMb.toFixed(0)} MB | ${verdict} |`,
  );
}
rmSync(work, { recursive: true, force: true });
process.exit(rows.every((row) => row.right) ? 0 : 1);

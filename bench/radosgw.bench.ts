/**
 * S3 on a production server (issue 15): Ceph's radosgw over a one-node cluster with an in-memory
 * OSD, started here on loopback (~15 s), as the tests start it.
 * - upload and download of a 256 MiB file: the S3 location vs the bare SDK;
 * - 10,000 values of 4 KiB: readBatch and HashKeyStorage.fetch vs one read after another (what
 *   fetch did before readBatch kept GETs in flight), with the bare SDK's requests at the same
 *   concurrency as the ceiling;
 * - has() of 10,000 keys: HashKeyStorage.hasBatch vs has() before (a read) and an awaited loop of has().
 *
 *   npm run bench -- radosgw       (CAIRN_BENCH_MIB=64 for a quicker, smaller run)
 *
 * Every small-value variant reads through a new location each round, as a new process would:
 * each key's first read writes its usage mark, as it does for a user. Medians of the rounds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { HashKeyStorage, Memory, type Source } from '../src/index.js';
import { S3, type S3Options } from '../src/locations/s3/s3.js';
import { startRadosgw } from '../test/servers/radosgw.js';
import { bigTransfers, median, timed } from './s3-transfers.js';

const MIB = 1024 * 1024;
const bigSize = Number(process.env.CAIRN_BENCH_MIB ?? 256) * MIB;
const BIG_ROUNDS = 3;
const COUNT = Number(process.env.CAIRN_BENCH_SMALL ?? 10_000);
const ROUNDS = 3;
/** The loops one at a time are slow: each round times a different slice of the keys, and rates are compared. */
const ONE_BY_ONE = Math.floor(COUNT / 20);
const IN_FLIGHT = 16;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const source = (bytes: Buffer): Source => ({ size: bytes.length, path: null, verified: true, stream: () => Readable.from([bytes]), bytes: async () => bytes });
const rate = (perSecond: number[]) => Math.round(median(perSecond)).toLocaleString('en-US');

async function pool(count: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await task(next++); }));
}

const work = mkdtempSync(join(tmpdir(), 'cairn-bench-radosgw-'));
const server = await startRadosgw({ buckets: ['bench'] });
const { endpoint, bucket, credentials } = server;
const rows: string[] = [];
try {
  rows.push(...(await bigTransfers({ endpoint, bucket, credentials, work, size: bigSize, rounds: BIG_ROUNDS })));

  const options: S3Options = { credentials, prefix: 'small' };
  const values = Array.from({ length: COUNT }, () => randomBytes(4096));
  const keys = values.map(sha256);
  const missing = Array.from({ length: COUNT }, () => sha256(randomBytes(8)));
  const filler = new S3(endpoint, bucket, options);
  await pool(COUNT, 32, (i) => filler.write(keys[i]!, source(values[i]!)));
  await filler.close();
  const bare = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });

  const rates = {
    before: [] as number[], batch: [] as number[], batchClosed: [] as number[], fetchClosed: [] as number[], batchWide: [] as number[], batchNoMarks: [] as number[], fetch: [] as number[],
    bareGetPut: [] as number[], bareGets: [] as number[], hasBefore: [] as number[], hasOneByOne: [] as number[], hasBatch: [] as number[],
  };
  let check = 0;
  /**
   * Values per second of `count` values read by `fn` through a new location; with `closed`, also
   * the rate counted until close() returned, which waits for the usage marks the reads queued.
   */
  const perSecond = async (count: number, fn: (s3: S3) => Promise<void>, more: S3Options = {}, closed?: number[]): Promise<number> => {
    const s3 = new S3(endpoint, bucket, { ...options, ...more });
    const start = performance.now();
    try {
      return count / (await timed(() => fn(s3)));
    } finally {
      await s3.close();
      closed?.push(count / ((performance.now() - start) / 1000));
    }
  };
  const objectKey = (key: string) => `small/${key.slice(0, 2)}/${key.slice(2)}`;
  const batch = (s3: S3) => async () => {
    for await (const [, value] of s3.readBatch(keys)) check += (await value!.bytes()).length;
  };
  for (let round = 0; round < ROUNDS; round++) {
    const slice = keys.slice(round * ONE_BY_ONE, (round + 1) * ONE_BY_ONE);
    // what fetch did before issue 15: one read after another (its GET, then its usage mark)
    rates.before.push(await perSecond(slice.length, async (s3) => {
      for (const key of slice) check += (await (await s3.read(key))!.bytes()).length;
    }));
    rates.batch.push(await perSecond(COUNT, (s3) => batch(s3)(), {}, rates.batchClosed));
    rates.batchWide.push(await perSecond(COUNT, (s3) => batch(s3)(), { readAhead: 32 }));
    rates.batchNoMarks.push(await perSecond(COUNT, (s3) => batch(s3)(), { keepUsage: false }));
    rates.fetch.push(await perSecond(COUNT, async (s3) => {
      const storage = new HashKeyStorage(new Memory(), { remote: s3 });
      for await (const [, found] of storage.fetch(keys)) if (found) check++;
    }, {}, rates.fetchClosed));
    // the requests a read with its usage mark makes, bare, at the same concurrency: the ceiling of readBatch
    rates.bareGetPut.push(COUNT / (await timed(() => pool(COUNT, IN_FLIGHT, async (i) => {
      const reply = await bare.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(keys[i]!) }));
      check += (await reply.Body!.transformToByteArray()).length;
      await bare.send(new PutObjectCommand({ Bucket: bucket, Key: `bare-usage/${keys[i]!}`, Body: '', ContentLength: 0 }));
    }))));
    rates.bareGets.push(COUNT / (await timed(() => pool(COUNT, IN_FLIGHT, async (i) => {
      const reply = await bare.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(keys[i]!) }));
      check += (await reply.Body!.transformToByteArray()).length;
    }))));
    // has(): half the keys present, half missing
    const asked = keys.slice(0, COUNT / 2).concat(missing.slice(0, COUNT / 2));
    const askedSlice = asked.filter((_, index) => index % 20 === round);
    // has() before issue 15: HashKeyStorage read the value (and so marked it used)
    rates.hasBefore.push(await perSecond(askedSlice.length, async (s3) => {
      for (const key of askedSlice) if ((await s3.read(key)) !== null) check++;
    }));
    rates.hasOneByOne.push(await perSecond(askedSlice.length, async (s3) => {
      for (const key of askedSlice) if (await s3.has(key)) check++;
    }));
    rates.hasBatch.push(await perSecond(asked.length, async (s3) => {
      let found = 0;
      for await (const [, present] of new HashKeyStorage(s3).hasBatch(asked)) if (present) found++;
      if (found !== COUNT / 2) throw new Error(`hasBatch found ${found} of ${COUNT / 2}`);
    }));
  }
  if (check === 0) throw new Error('nothing read');
  bare.destroy();
  const ratio = (ours: number[], reference: number[]) => `${(median(ours) / median(reference)).toFixed(1)}x`;
  const fetchRow = (label: string, figures: number[]) => `| ${label} | ${rate(figures)} values/s | ${ratio(figures, rates.before)} |`;
  rows.push(fetchRow(`4 KiB, before: one S3.read after another (GET, then its usage mark), ${ONE_BY_ONE} keys per round`, rates.before));
  rows.push(fetchRow(`4 KiB S3.readBatch of ${COUNT} keys (defaults: readAhead ${IN_FLIGHT}, verified, usage marks)`, rates.batch));
  rows.push(fetchRow(`4 KiB S3.readBatch, the same counted until close() returned (every usage mark written)`, rates.batchClosed));
  rows.push(fetchRow(`4 KiB S3.readBatch, readAhead 32`, rates.batchWide));
  rows.push(fetchRow(`4 KiB S3.readBatch, keepUsage: false (GETs only)`, rates.batchNoMarks));
  rows.push(fetchRow(`4 KiB HashKeyStorage(Memory, { remote: S3 }).fetch of ${COUNT} keys (copies labels too)`, rates.fetch));
  rows.push(fetchRow(`4 KiB fetch, the same counted until close() returned (every usage mark written)`, rates.fetchClosed));
  rows.push(fetchRow(`4 KiB bare SDK GET + mark PUT per key, ${IN_FLIGHT} in flight (readBatch's ceiling)`, rates.bareGetPut));
  rows.push(fetchRow(`4 KiB bare SDK GET, ${IN_FLIGHT} in flight, not verified, no marks`, rates.bareGets));
  const hasRow = (label: string, figures: number[]) => `| ${label} | ${rate(figures)} keys/s | ${ratio(figures, rates.hasBefore)} | ${ratio(figures, rates.hasOneByOne)} |`;
  rows.push('');
  rows.push('| has() of keys, half missing | rate | vs before | vs has() one at a time |');
  rows.push('| --- | ---: | ---: | ---: |');
  rows.push(hasRow(`before: HashKeyStorage.has read the value (GET, usage mark), one at a time, ${ONE_BY_ONE} keys per round`, rates.hasBefore));
  rows.push(hasRow(`S3.has one at a time (one HEAD each), ${ONE_BY_ONE} keys per round`, rates.hasOneByOne));
  rows.push(hasRow(`HashKeyStorage.hasBatch of ${COUNT} keys (16 HEADs in flight)`, rates.hasBatch));
  console.log(`S3 on radosgw (one-node Ceph, memstore OSD, loopback), medians of ${BIG_ROUNDS} (big) / ${ROUNDS} (small) rounds`);
  console.log('targets: transfers >= 0.9x the bare SDK; fetch and has() of many keys >= 5x before (one read after another)');
  console.log('| what | rate | ratio to the bare SDK / to before |');
  console.log('| --- | ---: | ---: |');
  for (const row of rows) console.log(row);
} finally {
  await server.destroy();
  rmSync(work, { recursive: true, force: true });
}

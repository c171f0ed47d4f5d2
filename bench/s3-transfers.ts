/**
 * Large transfers through the S3 location against the bare SDK on the same server, for the S3
 * benchmarks (s3rver and radosgw): upload of a file (lib-storage `Upload` with the same part size
 * and queue vs S3.write of a hashed and of an unverified source) and download (`GetObject` read
 * to the end vs S3.read streamed, verified). Returns table rows: rate and ratio to the bare SDK.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeleteObjectsCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Source } from '../src/index.js';
import { S3 } from '../src/locations/s3/s3.js';

const MIB = 1024 * 1024;
const PART = 8 * MIB;
const QUEUE = 4;

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

/** A writable that throws the bytes away. */
const sink = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });

/** A file source as HashKeyStorage hands it to a location (hashed already, known size). */
function fileSource(path: string, size: number, verified: boolean): Source {
  return { size, path, verified, stream: () => createReadStream(path, { highWaterMark: MIB }), bytes: async () => { throw new Error('not for big files'); } };
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface TransferTarget {
  endpoint: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** A folder for the file uploaded. */
  work: string;
  size: number;
  rounds: number;
}

export async function bigTransfers({ endpoint, bucket, credentials, work, size, rounds }: TransferTarget): Promise<string[]> {
  const path = join(work, 'big.bin');
  const block = randomBytes(16 * MIB);
  const out = createWriteStream(path);
  for (let written = 0; written < size; written += block.length) {
    if (!out.write(block.subarray(0, Math.min(block.length, size - written)))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve) => out.end(() => resolve()));
  const vary = (round: number) => {
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from(`${round}:${Date.now()}:${Math.random()}`), 0, undefined, 0);
    closeSync(fd);
  };
  // the same client settings for both: cairn checks sha256 itself, so neither adds SDK checksums
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const s3 = new S3(endpoint, bucket, { credentials, partSize: PART, queueSize: QUEUE, multipartThreshold: 16 * MIB });
  const times = { bareUp: [] as number[], up: [] as number[], upUnverified: [] as number[], bareDown: [] as number[], bareHashed: [] as number[], down: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    vary(round);
    const bareKey = `bare/${round}`;
    times.bareUp.push(await timed(() => new Upload({ client, params: { Bucket: bucket, Key: bareKey, Body: createReadStream(path, { highWaterMark: MIB }) }, partSize: PART, queueSize: QUEUE }).done()));
    const key = await hashFile(path);
    times.up.push(await timed(() => s3.write(key, fileSource(path, size, true))));
    vary(round + 100);
    const copyKey = await hashFile(path);
    times.upUnverified.push(await timed(() => s3.write(copyKey, fileSource(path, size, false))));

    const bareDown = () => timed(async () => {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: bareKey }));
      await pipeline(response.Body as Readable, sink());
    });
    const down = () => timed(async () => {
      const value = await s3.read(key);
      await pipeline(value!.stream(), sink());
    });
    // the floor of a verified download in one process: the bare GET, each chunk hashed as it comes
    const bareHashed = () => timed(async () => {
      const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: bareKey }));
      const hash = createHash('sha256');
      for await (const chunk of response.Body as Readable) hash.update(chunk as Buffer);
      hash.digest();
    });
    // alternate who goes first: on a shared machine the order matters more than it should
    const downloads: [number[], () => Promise<number>][] = [[times.bareDown, bareDown], [times.bareHashed, bareHashed], [times.down, down]];
    for (const [figures, run] of round % 2 === 0 ? downloads : [...downloads].reverse()) figures.push(await run());
    // a server that keeps objects in memory (radosgw's memstore) would otherwise hold every round's
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: bareKey }, { Key: s3.objectKey(key) }, { Key: s3.objectKey(copyKey) }] } }));
  }
  const mbps = (seconds: number[]) => size / MIB / median(seconds);
  const ratio = (ours: number[], bare: number[]) => `${(median(bare) / median(ours)).toFixed(2)}x`;
  const mib = size / MIB;
  client.destroy();
  await s3.close();
  rmSync(path, { force: true });
  return [
    `| upload ${mib} MiB: bare lib-storage Upload | ${mbps(times.bareUp).toFixed(0)} MiB/s | 1.00x |`,
    `| upload ${mib} MiB: S3.write (hashed source, as HashKeyStorage gives it) | ${mbps(times.up).toFixed(0)} MiB/s | ${ratio(times.up, times.bareUp)} |`,
    `| upload ${mib} MiB: S3.write (unverified source, hashed while uploading) | ${mbps(times.upUnverified).toFixed(0)} MiB/s | ${ratio(times.upUnverified, times.bareUp)} |`,
    `| download ${mib} MiB: bare GetObject read to the end | ${mbps(times.bareDown).toFixed(0)} MiB/s | 1.00x |`,
    `| download ${mib} MiB: bare GetObject, each chunk hashed (sha256) as it comes: the floor | ${mbps(times.bareHashed).toFixed(0)} MiB/s | ${ratio(times.bareHashed, times.bareDown)} |`,
    `| download ${mib} MiB: S3.read stream (sha256 verified while streaming) | ${mbps(times.down).toFixed(0)} MiB/s | ${ratio(times.down, times.bareDown)} |`,
  ];
}

import crypto from 'node:crypto';
import { mkdtempSync, promises as fsp, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from './ports.js';

/**
 * s3rver makes ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node >= 17) no
 * longer offers: every truncated listing fails with a 500. Triple DES with three equal keys is
 * exactly single DES, so 'des' is mapped onto it, for the s3rver in this test process only.
 */
function shimSingleDes(): void {
  const marked = crypto as unknown as { cairnDesShim?: boolean };
  if (marked.cairnDesShim) return;
  marked.cairnDesShim = true;
  const { createCipheriv, createDecipheriv } = crypto;
  const triple = (key: crypto.BinaryLike): Buffer => {
    const bytes = Buffer.from(key as Buffer);
    return Buffer.concat([bytes, bytes, bytes]);
  };
  type Factory = (algorithm: string, key: crypto.CipherKey, iv: crypto.BinaryLike | null) => unknown;
  (crypto as unknown as { createCipheriv: Factory }).createCipheriv = (algorithm, key, iv) =>
    algorithm === 'des' ? createCipheriv('des-ede3-cbc', triple(key as Buffer), iv) : createCipheriv(algorithm, key, iv);
  (crypto as unknown as { createDecipheriv: Factory }).createDecipheriv = (algorithm, key, iv) =>
    algorithm === 'des' ? createDecipheriv('des-ede3-cbc', triple(key as Buffer), iv) : createDecipheriv(algorithm, key, iv);
}

/** The parts of s3rver's file store that awaitFileWrites wraps. */
interface FileStore {
  getResourcePath(bucket: string, key: string | undefined, kind: string): string;
  putObject(object: { bucket: string; key: string }): Promise<{ size: number }>;
  putPart(bucket: string, uploadId: string, partNumber: number, content: unknown): Promise<{ size: number }>;
}

/** Waits until `file` holds `size` bytes (for at most 10 s: a file that never does is the test's to find). */
async function fileReaches(file: string, size: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const stat = await fsp.stat(file).catch(() => null);
    if (stat !== null && stat.size >= size) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * s3rver answers a PUT (of an object or of a part) once the bytes went through its hashing stage,
 * before its file write has landed: a GET right after could read a short file, and completing a
 * multipart upload could join a short part. Its answer now waits until the file has the size.
 */
function awaitFileWrites(instance: S3rver): void {
  const store = (instance as unknown as { store: FileStore }).store;
  const prototype = Object.getPrototypeOf(store) as FileStore & { cairnAwaitsWrites?: boolean };
  if (prototype.cairnAwaitsWrites) return;
  prototype.cairnAwaitsWrites = true;
  const { putObject, putPart } = prototype;
  prototype.putObject = async function (this: FileStore, object) {
    const stored = await putObject.call(this, object);
    await fileReaches(this.getResourcePath(object.bucket, object.key, 'object'), stored.size);
    return stored;
  };
  prototype.putPart = async function (this: FileStore, bucket, uploadId, partNumber, content) {
    const stored = await putPart.call(this, bucket, uploadId, partNumber, content);
    await fileReaches(join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber)), stored.size);
    return stored;
  };
}

/** s3rver's fixed credentials. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** An S3-protocol server (s3rver) in this process, on a free loopback port, storing in a temp folder. */
export interface S3Server {
  readonly port: number;
  readonly endpoint: string;
  /** The folder s3rver keeps its objects in (`<dir>/<bucket>/<key>._S3rver_object`). */
  readonly dir: string;
  readonly bucket: string;
  /** The file holding the bytes of an object, to change them behind a location's back. */
  objectFile(objectKey: string, bucket?: string): string;
  /** Stops serving (open connections are cut); `start()` serves the same folder again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its folder. */
  destroy(): Promise<void>;
}

export async function startS3(options: { buckets?: string[] } = {}): Promise<S3Server> {
  shimSingleDes();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cairn-s3-'));
  const buckets = options.buckets ?? ['lake'];
  let server: S3rver | null = null;

  const start = async (): Promise<void> => {
    const instance = new S3rver({
      address: '127.0.0.1',
      port,
      directory: dir,
      silent: true,
      vhostBuckets: false,
      configureBuckets: buckets.map((name) => ({ name })),
    });
    awaitFileWrites(instance);
    await instance.run();
    server = instance;
  };

  const stop = async (): Promise<void> => {
    const running = server;
    server = null;
    if (running === null) return;
    const closed = running.close();
    // keep-alive connections would keep it serving: cut them, as a crash would
    running.httpServer?.closeAllConnections();
    await closed;
  };

  await start();
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    dir,
    bucket: buckets[0]!,
    objectFile: (objectKey, bucket = buckets[0]!) => join(dir, bucket, `${objectKey}._S3rver_object`),
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

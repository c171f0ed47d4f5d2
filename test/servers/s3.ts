import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
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

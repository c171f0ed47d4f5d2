import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startRadosgw } from './radosgw.js';
import { S3_CREDENTIALS, startS3 } from './s3.js';

/**
 * An S3 server the S3 location's suites run against: s3rver in the test process (quick, lenient)
 * or Ceph's radosgw (a production implementation: checks signatures, content lengths, checksums).
 */
export interface S3TestServer {
  readonly kind: 's3rver' | 'radosgw';
  readonly endpoint: string;
  readonly bucket: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** False for s3rver, which checks only that the access key exists, not the request's signature. */
  readonly checksSignatures: boolean;
  /** The bytes the server keeps for an object (what any client reading it would get). */
  storedBytes(objectKey: string, expectedSize: number): Promise<Buffer>;
  /** Flips one byte of a stored object, behind every location's back. */
  corrupt(objectKey: string, at?: number): Promise<void>;
  /** Stops serving (as a crash); `start()` serves the same objects again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

/** A client that sends and reads bodies as they are (no SDK checksums): to look at or change stored objects. */
function plainClient(endpoint: string, credentials: S3TestServer['credentials']): S3Client {
  return new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function startS3rverServer(): Promise<S3TestServer> {
  const server = await startS3();
  return {
    kind: 's3rver',
    endpoint: server.endpoint,
    bucket: server.bucket,
    credentials: S3_CREDENTIALS,
    checksSignatures: false,
    // s3rver may answer a PUT before its file write lands: read again until the file has the size, for at most 5 s
    storedBytes: async (objectKey, expectedSize) => {
      const file = server.objectFile(objectKey);
      const deadline = Date.now() + 5000;
      for (;;) {
        const bytes = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
        if (bytes.length === expectedSize || Date.now() > deadline) return bytes;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    corrupt: async (objectKey, at = 0) => {
      const file = server.objectFile(objectKey);
      const bytes = await fsp.readFile(file);
      bytes[at] ^= 0xff;
      await fsp.writeFile(file, bytes);
    },
    stop: () => server.stop(),
    start: () => server.start(),
    destroy: () => server.destroy(),
  };
}

async function startRadosgwServer(): Promise<S3TestServer> {
  const server = await startRadosgw();
  const client = plainClient(server.endpoint, server.credentials);
  const storedBytes = async (objectKey: string): Promise<Buffer> => {
    const reply = await client.send(new GetObjectCommand({ Bucket: server.bucket, Key: objectKey }));
    return Buffer.from(await reply.Body!.transformToByteArray());
  };
  return {
    kind: 'radosgw',
    endpoint: server.endpoint,
    bucket: server.bucket,
    credentials: server.credentials,
    checksSignatures: true,
    storedBytes,
    // the objects live in the OSD's memory: the changed bytes are written over the object with a plain PUT
    corrupt: async (objectKey, at = 0) => {
      const bytes = await storedBytes(objectKey);
      bytes[at] ^= 0xff;
      await client.send(new PutObjectCommand({ Bucket: server.bucket, Key: objectKey, Body: bytes, ContentLength: bytes.length }));
    },
    stop: () => server.stop(),
    start: () => server.start(),
    destroy: async () => {
      client.destroy();
      await server.destroy();
    },
  };
}

/** The servers every S3 suite runs against; a test file starts each once and reuses it. */
export const s3Servers: readonly { name: S3TestServer['kind']; start: () => Promise<S3TestServer> }[] = [
  { name: 's3rver', start: startS3rverServer },
  { name: 'radosgw', start: startRadosgwServer },
];

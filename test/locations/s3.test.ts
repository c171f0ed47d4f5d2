import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, LocationError } from '../../src/errors.js';
import type { Location } from '../../src/index.js';
import { S3 } from '../../src/locations/s3/s3.js';
import { bytesSource, locationConformance, sha256, streamSource, expectStored } from '../conformance.js';
import { s3Servers, type S3TestServer } from '../servers/s3-servers.js';

// each server is started once for this file and shared by its tests (radosgw takes ~15 s to start)
for (const kind of s3Servers) {
  describe(`S3 on ${kind.name}`, () => {
    let server: S3TestServer;
    let lakes = 0;

    beforeAll(async () => {
      server = await kind.start();
    });
    afterAll(async () => {
      await server?.destroy();
    });

    function fresh(options: ConstructorParameters<typeof S3>[2] = {}): S3 {
      return new S3(server.endpoint, server.bucket, { credentials: server.credentials, prefix: `lake${++lakes}`, ...options });
    }

    /** Flips one byte of the stored object on the server. */
    async function corrupt(location: Location, key: string): Promise<void> {
      await server.corrupt((location as S3).objectKey(key));
    }

    function rawClient(): S3Client {
      return new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: server.credentials });
    }

    locationConformance({
      name: 'S3',
      create: () => fresh(),
      destroy: (location) => location.close?.(),
      corrupt,
    });

    locationConformance({
      name: 'S3 (small pages, 2-level layout, no prefix)',
      create: () => new S3(server.endpoint, server.bucket, { credentials: server.credentials, pageSize: 2, levels: [2, -1], prefix: '' }),
      destroy: (location) => location.close?.(),
      corrupt,
    });

    describe('S3', () => {
      it("lays values out as tarn does, under the prefix, with labels and usage beside them", async () => {
        const location = fresh();
        const bytes = randomBytes(100);
        const key = sha256(bytes);
        await location.write(key, bytesSource(bytes), ['ct', 'a/b c']);
        await location.touch(key);
        const client = rawClient();
        const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: location.prefix }));
        const names = (listed.Contents ?? []).map((item) => item.Key).sort();
        const path = `${key.slice(0, 2)}/${key.slice(2)}`;
        expect(names).toEqual(
          [`${location.prefix}${path}`, `${location.prefix}tools/labels/${path}/a%2Fb%20c`, `${location.prefix}tools/labels/${path}/ct`, `${location.prefix}tools/usage/${path}`].sort(),
        );
        const object = await client.send(new GetObjectCommand({ Bucket: server.bucket, Key: `${location.prefix}${path}` }));
        expect(Buffer.from(await object.Body!.transformToByteArray()).equals(bytes)).toBe(true);
        expect((await (await location.read(key))!.labels())!.sort()).toEqual(['a/b c', 'ct']);
        client.destroy();
        await location.close();
      });

      /** A client of our own that records the name of every command it sends. */
      function countingClient(): { client: S3Client; commands: string[] } {
        const client = rawClient();
        const commands: string[] = [];
        client.middlewareStack.add(
          (next, context) => (args) => {
            commands.push(context.commandName as string);
            return next(args);
          },
          { step: 'initialize' },
        );
        return { client, commands };
      }

      it('uploads a value above the threshold in parts and streams it back verified', async () => {
        const { client, commands } = countingClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}`, multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024, queueSize: 2 });
        const bytes = randomBytes(12 * 1024 * 1024 + 5);
        const key = sha256(bytes);
        await expectStored(location.write(key, bytesSource(bytes, true)), key);
        expect(commands.filter((name) => name === 'UploadPartCommand').length).toBe(3);
        expect(commands).toContain('CompleteMultipartUploadCommand');
        const value = await location.read(key);
        expect(value!.size).toBe(bytes.length);
        const parts: Buffer[] = [];
        for await (const part of value!.stream()) parts.push(part as Buffer);
        expect(Buffer.concat(parts).equals(bytes)).toBe(true);
        // a second stream of the same value opens a new download
        expect(sha256(await value!.bytes())).toBe(key);
        // below the threshold: one PUT
        commands.length = 0;
        const small = randomBytes(1024 * 1024);
        await expectStored(location.write(sha256(small), bytesSource(small, true)), sha256(small));
        expect(commands.filter((name) => name.includes('Upload') || name === 'PutObjectCommand')).toEqual(['PutObjectCommand']);
        await location.close();
        client.destroy();
      });

      it('refuses a multipart copy that does not match its key: the upload is aborted, no object is left', async () => {
        const { client, commands } = countingClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}`, partSize: 5 * 1024 * 1024 });
        const bytes = randomBytes(11 * 1024 * 1024);
        const key = sha256(randomBytes(32));
        await expect(location.write(key, streamSource(bytes, false, 256 * 1024))).rejects.toMatchObject({ code: 'ERR_STORAGE_CORRUPTION' });
        expect(commands).toContain('AbortMultipartUploadCommand');
        expect(commands).not.toContain('CompleteMultipartUploadCommand');
        expect(await location.read(key)).toBeNull();
        const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: location.prefix }));
        expect(listed.KeyCount).toBe(0);
        await location.close();
        client.destroy();
      });

      it('lists many values through small pages, each once, with its size', async () => {
        const location = fresh({ pageSize: 3 });
        const keys = new Set<string>();
        for (let index = 0; index < 10; index++) {
          const bytes = randomBytes(10 + index);
          keys.add(sha256(bytes));
          await location.write(sha256(bytes), bytesSource(bytes), index % 2 ? ['odd'] : null);
        }
        const seen = new Map<string, { size: number | null; labels: string[] | null }>();
        for await (const entry of location.contents()) {
          expect(seen.has(entry.key)).toBe(false);
          seen.set(entry.key, entry.meta);
        }
        expect(new Set(seen.keys())).toEqual(keys);
        expect([...seen.values()].filter((meta) => meta.labels?.includes('odd')).length).toBe(5);
        await location.close();
      });

      it('looks the labels of a readBatch up in a few listings, each value with exactly its own labels', async () => {
        const writer = fresh();
        const labelsOf = new Map<string, string[]>();
        for (let index = 0; index < 24; index++) {
          const bytes = randomBytes(20 + index);
          const labels = Array.from({ length: index % 4 }, (_, n) => `l${index}-${n}${n === 1 ? '/x y' : ''}`);
          labelsOf.set(sha256(bytes), labels);
          await writer.write(sha256(bytes), bytesSource(bytes), labels);
        }
        await writer.close();
        // keys with labels but not asked for lie between those asked: their markers are passed over
        const asked = [...labelsOf.keys()].filter((_, index) => index % 3 !== 2);
        const missing = sha256(randomBytes(8));
        // pages of 2 markers end inside a key's markers and between keys; pages of 1000 hold them all
        for (const pageSize of [2, 1000]) {
          const { client, commands } = countingClient();
          const location = new S3(client, server.bucket, { prefix: writer.prefix, pageSize });
          const values: [string, Awaited<ReturnType<S3['read']>>][] = [];
          for await (const pair of location.readBatch([...asked, missing])) values.push(pair);
          expect(values.map(([key]) => key)).toEqual([...asked, missing]);
          expect(values.at(-1)![1]).toBeNull();
          for (const [key, value] of values.slice(0, -1)) expect((await value!.labels())!.sort()).toEqual(labelsOf.get(key)!.sort());
          const listings = commands.filter((name) => name === 'ListObjectsV2Command').length;
          // a page passes at least one key's folder or takes pageSize of one key's markers (a key
          // with 3 markers takes two pages of 2): never more than that; one page when it holds every marker
          const askedMarkers = asked.reduce((sum, key) => sum + labelsOf.get(key)!.length, 0);
          if (pageSize === 2) expect(listings).toBeLessThanOrEqual(asked.length + Math.ceil(askedMarkers / pageSize));
          else expect(listings).toBe(1);
          // a second ask is a lookup of its own, and gives the same
          expect((await values[1]![1]!.labels())!.sort()).toEqual(labelsOf.get(asked[1]!)!.sort());
          await location.close();
          client.destroy();
        }
      });

      it('writes the last-used marks of reads beside them, all of them by close(), and none after a delete', async () => {
        const client = rawClient();
        const puts: string[] = [];
        client.middlewareStack.add(
          (next, context) => (args) => {
            if (context.commandName === 'PutObjectCommand') puts.push((args as { input: { Key: string } }).input.Key);
            return next(args);
          },
          { step: 'initialize' },
        );
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const values = Array.from({ length: 12 }, (_, index) => randomBytes(30 + index));
        const keys = values.map((bytes) => sha256(bytes));
        for (const [index, bytes] of values.entries()) await location.write(keys[index]!, bytesSource(bytes));
        const usage = (key: string) => `${location.prefix}tools/usage/${key.slice(0, 2)}/${key.slice(2)}`;
        puts.length = 0;
        let read = 0;
        for await (const [, value] of location.readBatch(keys)) read += (await value!.bytes()).length;
        expect(read).toBe(values.reduce((sum, bytes) => sum + bytes.length, 0));
        // read again: within touchInterval, no second mark
        for (const key of keys.slice(0, 4)) await location.read(key);
        // a key read and deleted at once: the mark its read queued is not written after the delete
        const gone = randomBytes(9);
        await location.write(sha256(gone), bytesSource(gone));
        await location.read(sha256(gone));
        expect(await location.delete(sha256(gone))).toBe(true);
        await location.close();
        // one mark per key read, however often it was read
        expect(puts.filter((name) => keys.some((key) => usage(key) === name)).sort()).toEqual(keys.map(usage).sort());
        const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `${location.prefix}tools/usage/` }));
        expect((listed.Contents ?? []).map((item) => item.Key).sort()).toEqual(keys.map(usage).sort());
        client.destroy();
      });

      it('reports a last-used mark that could not be written as a warning; the read still gives its value', async () => {
        const client = rawClient();
        // the server refuses the marks (a policy, a full quota…): here the client fails their PUTs
        client.middlewareStack.add(
          (next, context) => async (args) => {
            const input = (args as { input: { Key?: string } }).input;
            if (context.commandName === 'PutObjectCommand' && input.Key?.includes('/tools/usage/')) {
              throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
            }
            return next(args);
          },
          { step: 'initialize' },
        );
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const bytes = randomBytes(40);
        const key = sha256(bytes);
        const writer = fresh({ prefix: location.prefix });
        await writer.write(key, bytesSource(bytes));
        await writer.close();
        const warnings: Error[] = [];
        const onWarning = (warning: Error) => warnings.push(warning);
        process.on('warning', onWarning);
        try {
          expect((await (await location.read(key))!.bytes()).equals(bytes)).toBe(true);
          await location.close();
          await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
        } finally {
          process.off('warning', onWarning);
        }
        const warning = warnings.find((item) => (item as { code?: string }).code === 'CAIRN_USAGE_MARK');
        expect(warning?.message).toContain(key);
        expect((warning as unknown as { detail: string }).detail).toBe('AuthenticationError');
        client.destroy();
      });

      it('answers an unknown access key or a wrong secret with AuthenticationError and a missing bucket with a LocationError, never a miss', async () => {
        const unknown = new S3(server.endpoint, server.bucket, { credentials: { accessKeyId: 'NOBODY', secretAccessKey: 'wrong' } });
        await expect(unknown.read(sha256(Buffer.from('x')))).rejects.toBeInstanceOf(AuthenticationError);
        await unknown.close();
        // s3rver does not check v4 signatures, only that the access key exists
        if (server.checksSignatures) {
          const wrongSecret = new S3(server.endpoint, server.bucket, { credentials: { ...server.credentials, secretAccessKey: 'not-the-secret' } });
          const key = sha256(Buffer.from('written with a wrong secret'));
          await expect(wrongSecret.read(key)).rejects.toBeInstanceOf(AuthenticationError);
          await expect(wrongSecret.has(key)).rejects.toBeInstanceOf(AuthenticationError);
          await expect(wrongSecret.write(key, bytesSource(Buffer.from('written with a wrong secret')))).rejects.toBeInstanceOf(AuthenticationError);
          await expect(wrongSecret.delete(key)).rejects.toBeInstanceOf(AuthenticationError);
          await wrongSecret.close();
          const check = new S3(server.endpoint, server.bucket, { credentials: server.credentials });
          expect(await check.has(key)).toBe(false);
          await check.close();
        }
        const missing = new S3(server.endpoint, 'no-such-bucket', { credentials: server.credentials });
        await expect(missing.read(sha256(Buffer.from('x')))).rejects.toMatchObject({ code: 'ERR_NO_BUCKET' });
        await expect(missing.read(sha256(Buffer.from('x')))).rejects.toBeInstanceOf(LocationError);
        await missing.close();
      });

      it('leaves a client given by the user open on close', async () => {
        const client = rawClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const bytes = randomBytes(10);
        await expectStored(location.write(sha256(bytes), bytesSource(bytes)), sha256(bytes));
        await location.close();
        const listed = await client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: location.prefix }));
        expect(listed.KeyCount).toBe(1);
        expect((await client.send(new HeadBucketCommand({ Bucket: server.bucket }))).$metadata.httpStatusCode).toBe(200);
        client.destroy();
      });
    });
  });
}

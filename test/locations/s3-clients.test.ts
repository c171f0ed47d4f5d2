import { randomBytes } from 'node:crypto';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashKeyStorage, Memory } from '../../src/index.js';
import { S3 } from '../../src/locations/s3/s3.js';
import { migrate, verify } from '../../src/storage/maintenance/index.js';
import { bytesSource, sha256, streamSource, expectStored } from '../conformance.js';
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

    /** A client as a user builds one: the SDK's defaults, plus `config`; it records every command and the most of each kind in flight at once. */
    function userClient(config: Partial<S3ClientConfig> = {}): { client: S3Client; commands: string[]; mostGets: () => number; mostHeads: () => number } {
      const client = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: server.credentials, ...config });
      const commands: string[] = [];
      const running = new Map<string, number>();
      const most = new Map<string, number>();
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const name = context.commandName as string;
          commands.push(name);
          running.set(name, (running.get(name) ?? 0) + 1);
          most.set(name, Math.max(most.get(name) ?? 0, running.get(name)!));
          try {
            return await next(args);
          } finally {
            running.set(name, running.get(name)! - 1);
          }
        },
        { step: 'initialize' },
      );
      return { client, commands, mostGets: () => most.get('GetObjectCommand') ?? 0, mostHeads: () => most.get('HeadObjectCommand') ?? 0 };
    }

    const settings: [string, Partial<S3ClientConfig>][] = [
      ['the SDK defaults', {}],
      ['requestChecksumCalculation WHEN_SUPPORTED', { requestChecksumCalculation: 'WHEN_SUPPORTED' }],
      ['requestChecksumCalculation WHEN_REQUIRED', { requestChecksumCalculation: 'WHEN_REQUIRED' }],
      ['responseChecksumValidation WHEN_SUPPORTED', { responseChecksumValidation: 'WHEN_SUPPORTED' }],
      ['responseChecksumValidation WHEN_REQUIRED', { responseChecksumValidation: 'WHEN_REQUIRED' }],
      ['both WHEN_SUPPORTED', { requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED' }],
    ];

    describe('S3 with a client of the user', () => {
      for (const [label, config] of settings) {
        it(`stores exactly the bytes, read back intact, with ${label}`, async () => {
          const { client } = userClient(config);
          const location = new S3(client, server.bucket, { prefix: `lake${++lakes}`, multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
          const cases = [
            { bytes: randomBytes(1000), source: (bytes: Buffer) => bytesSource(bytes, false) }, // one PUT, streamed, known size
            { bytes: randomBytes(3000), source: (bytes: Buffer) => streamSource(bytes, false, 512) }, // unknown size: in parts
            { bytes: randomBytes(6 * 1024 * 1024 + 3), source: (bytes: Buffer) => bytesSource(bytes, false) }, // known size above the threshold
          ];
          for (const { bytes, source } of cases) {
            const key = sha256(bytes);
            await expectStored(location.write(key, source(bytes)), key);
            // on the server, the object is the value itself (not an aws-chunked body with a trailer)
            expect(sha256(await server.storedBytes(location.objectKey(key), bytes.length))).toBe(key);
            expect(sha256((await location.readBytes(key))!)).toBe(key);
            expect(sha256(await (await location.read(key))!.bytes())).toBe(key);
          }
          await location.close(); // waits for the usage marks its reads queued
          client.destroy();
        });
      }

      it('does every operation through a client at the SDK defaults: write, read, readBatch, has, contents, delete, a large upload', async () => {
        const { client, commands } = userClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const values = Array.from({ length: 20 }, (_, index) => randomBytes(100 + index));
        const keys = values.map((bytes) => sha256(bytes));
        for (const [index, bytes] of values.entries()) await expectStored(location.write(keys[index]!, bytesSource(bytes, false), index % 2 ? ['odd'] : ['even']), keys[index]!, bytes);
        const missing = sha256(randomBytes(5));
        const batch: [string, Buffer | null][] = [];
        for await (const [key, value] of location.readBatch([...keys, missing])) batch.push([key, value && (await value.bytes())]);
        expect(batch).toEqual([...keys.map((key, index) => [key, values[index]]), [missing, null]]);
        expect(await location.has(keys[3]!)).toBe(true);
        expect(await location.has(missing)).toBe(false);
        const listed = new Map<string, string[] | null>();
        for await (const entry of location.contents()) listed.set(entry.key, entry.meta.labels);
        expect(new Set(listed.keys())).toEqual(new Set(keys));
        expect(listed.get(keys[1]!)).toEqual(['odd']);
        expect(await location.delete(keys[0]!)).toBe(true);
        expect(await location.has(keys[0]!)).toBe(false);
        expect(await location.read(keys[0]!)).toBeNull();
        // above the default multipart threshold (16 MiB), of known and of unknown size: uploaded in parts
        for (const source of [(bytes: Buffer) => bytesSource(bytes, false), (bytes: Buffer) => streamSource(bytes, false, 1024 * 1024)]) {
          const big = randomBytes(20 * 1024 * 1024 + 7);
          const key = sha256(big);
          commands.length = 0;
          await location.write(key, source(big));
          expect(commands).toContain('CompleteMultipartUploadCommand');
          const value = await location.read(key);
          expect(value!.size).toBe(big.length);
          const parts: Buffer[] = [];
          for await (const part of value!.stream()) parts.push(part as Buffer);
          expect(Buffer.concat(parts).equals(big)).toBe(true);
          expect(sha256(await server.storedBytes(location.objectKey(key), big.length))).toBe(key);
        }
        await location.close(); // waits for the usage marks its reads queued
        client.destroy();
      });
    });

    describe('S3 requests', () => {
      it('answers has() with one HEAD, and a miss with false', async () => {
        const { client, commands } = userClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const bytes = randomBytes(100);
        await location.write(sha256(bytes), bytesSource(bytes));
        const storage = new HashKeyStorage(location);
        commands.length = 0;
        expect(await storage.has(sha256(bytes))).toBe(true);
        expect(await storage.has(sha256(randomBytes(4)))).toBe(false);
        expect(commands).toEqual(['HeadObjectCommand', 'HeadObjectCommand']);
        await location.close(); // waits for the usage marks its reads queued
        client.destroy();
      });

      it('answers hasBatch with HEADs in flight, in the order asked, each key once, from local or with fetch from remote', async () => {
        const { client, commands, mostHeads } = userClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const values = Array.from({ length: 30 }, () => randomBytes(50));
        const keys = values.map((bytes) => sha256(bytes));
        for (const bytes of values.slice(0, 20)) await location.write(sha256(bytes), bytesSource(bytes));
        commands.length = 0;
        const answered: [string, boolean][] = [];
        for await (const answer of new HashKeyStorage(location).hasBatch([...keys, keys[0]!], { inFlight: 6 })) answered.push(answer);
        expect(answered).toEqual(keys.map((key, index) => [key, index < 20]));
        expect(commands.every((name) => name === 'HeadObjectCommand')).toBe(true);
        expect(commands.length).toBe(30);
        expect(mostHeads()).toBeGreaterThan(1);
        expect(mostHeads()).toBeLessThanOrEqual(6);
        // a storage whose local copy is empty: the keys are found remotely only when asked to fetch
        const storage = new HashKeyStorage(new Memory(), { remote: location });
        const local: boolean[] = [];
        for await (const [, present] of storage.hasBatch(keys.slice(0, 3))) local.push(present);
        expect(local).toEqual([false, false, false]);
        const remote: boolean[] = [];
        for await (const [, present] of storage.hasBatch(keys.slice(18, 22), { fetch: true })) remote.push(present);
        expect(remote).toEqual([true, true, false, false]);
        await expect(async () => {
          for await (const answer of storage.hasBatch(['not a key'])) void answer;
        }).rejects.toMatchObject({ code: 'ERR_INVALID_KEY' });
        await location.close(); // waits for the usage marks its reads queued
        client.destroy();
      });

      it('does not count verify as a use: GETs only, no usage mark written', async () => {
        const { client, commands } = userClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const values = Array.from({ length: 5 }, () => randomBytes(200));
        for (const bytes of values) await location.write(sha256(bytes), bytesSource(bytes));
        commands.length = 0;
        const report = await verify(location);
        expect(report.checked).toBe(5);
        expect(report.bad).toEqual([]);
        expect(commands.filter((name) => name === 'PutObjectCommand')).toEqual([]);
        expect(commands.filter((name) => name === 'GetObjectCommand').length).toBe(5);
        await location.close(); // waits for the usage marks its reads queued
        client.destroy();
      });

      it('migrates into S3: keys already there are skipped after a HEAD, the others copied, nothing read back', async () => {
        const { client, commands } = userClient();
        const target = new S3(client, server.bucket, { prefix: `lake${++lakes}` });
        const source = new Memory();
        const values = Array.from({ length: 6 }, () => randomBytes(300));
        for (const bytes of values) await source.write(sha256(bytes), bytesSource(bytes));
        for (const bytes of values.slice(0, 2)) await target.write(sha256(bytes), bytesSource(bytes));
        commands.length = 0;
        const report = await migrate(source, target);
        expect(report.copied).toBe(4);
        expect(report.skipped).toBe(2);
        expect(commands).not.toContain('GetObjectCommand');
        for (const bytes of values) expect(await target.has(sha256(bytes))).toBe(true);
        await target.close(); // waits for the usage marks its reads queued
        client.destroy();
      });

      it('keeps several GETs in flight in readBatch, answering every key once and in order', async () => {
        const { client, mostGets } = userClient();
        const location = new S3(client, server.bucket, { prefix: `lake${++lakes}`, readAhead: 4 });
        const values = Array.from({ length: 12 }, () => randomBytes(64));
        const keys = values.map((bytes) => sha256(bytes));
        for (const bytes of values) await location.write(sha256(bytes), bytesSource(bytes));
        const missing = sha256(randomBytes(3));
        const answered: [string, string | null][] = [];
        for await (const [key, value] of location.readBatch([...keys, missing, keys[0]!])) answered.push([key, value && sha256(await value.bytes())]);
        expect(answered).toEqual([...keys.map((key) => [key, key]), [missing, null]]);
        expect(mostGets()).toBeGreaterThan(1);
        expect(mostGets()).toBeLessThanOrEqual(4);
        await location.close(); // waits for the usage marks its reads queued
        client.destroy();
      });
    });
  });
}

/**
 * A child process of the compositions tests, standing for one machine: its own local Disk above an
 * S3 bucket that every machine shares, `Levels(Disk(<local>), Level(S3, { writeThrough }))`.
 * Arguments: `<local folder> <S3 endpoint> <bucket> <prefix> <writeThrough: true|false>`.
 * Reads one JSON command per line on stdin and answers one JSON line each:
 * `{"write": text}` → `{"key"}`; `{"read": key}` → `{"text": text | null, "local": held locally now}`;
 * `{"exit": true}` closes the locations and exits.
 */
import { createInterface } from 'node:readline';
import { Disk, HashKeyStorage, Level, Levels } from '../../src/index.js';
import { S3 } from '../../src/entries/s3.js';
import { S3_CREDENTIALS } from '../servers/s3.js';

const [localDir, endpoint, bucket, prefix, writeThrough] = process.argv.slice(2) as [string, string, string, string, string];
const local = new Disk(localDir);
const shared = new S3(endpoint, bucket, { credentials: S3_CREDENTIALS, prefix });
const storage = new HashKeyStorage(new Levels(local, new Level(shared, { writeThrough: writeThrough === 'true' })));

const answer = (reply: unknown) => process.stdout.write(JSON.stringify(reply) + '\n');

for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as { write?: string; read?: string; exit?: boolean };
  if (command.write !== undefined) {
    answer({ key: await storage.write(Buffer.from(command.write), { labels: ['machine'] }) });
  } else if (command.read !== undefined) {
    const bytes = await storage.readBytes(command.read, { error: false });
    answer({ text: bytes === null ? null : bytes.toString(), local: (await local.read(command.read)) !== null });
  } else if (command.exit) {
    await storage.close();
    break;
  }
}

/**
 * Labels of a remote lake are the union of every acknowledged write, across processes: two
 * processes (one over SFTP, one over SCP) write the same keys to one lake on one sshd at once,
 * each write with its own label, and no label is lost (the labels file's read-merge-write holds
 * a lock on the server). The labels file stays tarn's JSON list, and no lock is left behind.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SFTP } from '../../src/locations/ssh/sftp.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

const run = promisify(execFile);
const KEYS = 10;
const ROUNDS = 3;

let server: Sshd;
beforeAll(async () => {
  server = await startSshd();
});
afterAll(async () => {
  await server?.close();
});

describe('labels of a remote lake written by two processes at once', () => {
  it(`an SFTP and an SCP process write the same ${KEYS} keys ${ROUNDS} times each, a label per write: all kept`, { timeout: 240_000 }, async () => {
    const root = join(server.dir, 'labelled');
    const options = { host: server.host, port: server.port, username: server.username, privateKey: server.privateKey, hostKeyFingerprint: server.fingerprint };
    const agent = join(import.meta.dirname, 'remote-labeller.ts');
    const env = { ...process.env, CAIRN_TEST_REMOTE: JSON.stringify(options) };
    const outputs = await Promise.all(
      ['SFTP', 'SCP'].map((kind) => run(process.execPath, ['--import', 'tsx', agent, kind, root, kind, String(KEYS), String(ROUNDS)], { env, maxBuffer: 1 << 20 })),
    );
    const acknowledged = new Map<string, string[]>();
    for (const { stdout } of outputs) {
      for (const line of stdout.trim().split('\n')) {
        const [key, label] = line.split(' ') as [string, string];
        acknowledged.set(key, [...(acknowledged.get(key) ?? []), label]);
      }
    }
    expect([...acknowledged.values()].flat()).toHaveLength(2 * KEYS * ROUNDS);
    const remote = new SFTP(server.host, root, { port: server.port, username: server.username, privateKey: server.privateKey, hostKeyFingerprint: server.fingerprint });
    try {
      for (const [key, labels] of acknowledged) {
        expect((await (await remote.read(key))!.labels())?.sort(), key).toEqual(labels.sort());
        // tarn's format: a JSON list in tools/labels/ab/<rest>.json
        const file = join(root, 'tools', 'labels', key.slice(0, 2), `${key.slice(2)}.json`);
        expect((JSON.parse(readFileSync(file, 'utf8')) as string[]).sort()).toEqual(labels.sort());
      }
    } finally {
      await remote.close();
    }
    const leftovers = readdirSync(join(root, 'tools', 'labels'), { recursive: true, encoding: 'utf8' }).filter((name) => name.includes('.lock'));
    expect(leftovers).toEqual([]);
    expect(readdirSync(join(root, '.tmp'))).toEqual([]);
  });
});

/**
 * A labeller process for the remote labels test: writes every one of `keys` values through SFTP
 * or SCP, `rounds` times, all of the writes at once, each with a label of its own, and prints
 * `<key> <label>` once a write is acknowledged. The server comes as JSON in CAIRN_TEST_REMOTE.
 */
import { bufferBlob } from '../../src/blob.js';
import { digestBytes as sha256 } from '../../src/key.js';
import { SCP } from '../../src/locations/ssh/scp.js';
import { SFTP } from '../../src/locations/ssh/sftp.js';

const [kind, root, id, keys, rounds] = process.argv.slice(2) as [string, string, string, string, string];
const { host, ...options } = JSON.parse(process.env.CAIRN_TEST_REMOTE!) as { host: string; port: number; username: string; privateKey: string; hostKeyFingerprint: string };
const remote = kind === 'SCP' ? new SCP(host, root, options) : new SFTP(host, root, options);
const values = Array.from({ length: Number(keys) }, (_, n) => Buffer.from(`labelled value ${n}`));
// every write at once: the same key is labelled by this process and the other at the same time
await Promise.all(
  Array.from({ length: Number(rounds) }, (_, round) =>
    values.map(async (bytes, n) => {
      const label = `${id}-${n}-${round}`;
      await remote.write(sha256(bytes), { ...bufferBlob(bytes), verified: false }, [label]);
      process.stdout.write(`${sha256(bytes)} ${label}\n`);
    }),
  ).flat(),
);
await remote.close();

import type { OptionTable } from '../../config/values.js';
import { RETRY_FIELDS } from '../net/retry-kind.js';
import type { SSHOptions } from './ssh-common.js';

/** The connection options SFTP and SCP share, in a config file (`privateKey` is a path, or key text from `${env:NAME}`). */
export const SSH_FIELDS = {
  port: 'number', username: 'string', privateKey: 'string', passphrase: 'string', password: 'string', agent: 'string',
  knownHosts: 'string', hostKeyFingerprint: 'string', acceptUnknownHostKey: 'boolean', timeoutMs: 'number', retry: RETRY_FIELDS,
  maxChannels: 'number',
} as const satisfies OptionTable<SSHOptions>;

/** The two arguments of `new SFTP(host, root)` and `new SCP(host, root)`. */
export const SSH_ARGS = { host: 'string', root: 'string' } as const;

export function hostAndRoot(args: Record<string, unknown>, fail: (message: string) => never, kind: string): { host: string; root: string } {
  const { host, root } = args as { host?: string; root?: string };
  if (!host || !root) fail(`an ${kind} location needs \`host\` and \`root\``);
  return { host, root };
}

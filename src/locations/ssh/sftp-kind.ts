import { leafKind } from '../../config/kind.js';
import type { SFTPOptions } from './sftp.js';
import { hostAndRoot, SSH_ARGS, SSH_FIELDS } from './ssh-kind.js';

/** `sftp: { host, root, …SFTPOptions }` in a config file; ssh2 loads only when one is built. */
export const sftpKind = leafKind<SFTPOptions>({
  name: 'sftp',
  args: SSH_ARGS,
  options: { ...SSH_FIELDS, levels: 'numbers', chunkSize: 'number', concurrency: 'number', readConcurrency: 'number', fsync: 'boolean', touchInterval: 'number' },
  async create({ args, options }, node) {
    const { host, root } = hostAndRoot(args, (message) => node.fail(message), 'SFTP');
    const { SFTP } = await import('./sftp.js');
    return new SFTP(host, root, options);
  },
});

import { leafKind } from '../../config/kind.js';
import type { SCPOptions } from './scp.js';
import { hostAndRoot, SSH_ARGS, SSH_FIELDS } from './ssh-kind.js';

/** `scp: { host, root, …SCPOptions }` in a config file; ssh2 loads only when one is built. */
export const scpKind = leafKind<SCPOptions>({
  name: 'scp',
  args: SSH_ARGS,
  options: { ...SSH_FIELDS, levels: 'numbers', touchInterval: 'number', spoolDir: 'string' },
  async create({ args, options }, node) {
    const { host, root } = hostAndRoot(args, (message) => node.fail(message), 'SCP');
    const { SCP } = await import('./scp.js');
    return new SCP(host, root, options);
  },
});

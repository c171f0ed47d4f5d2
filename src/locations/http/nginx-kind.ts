import { leafKind } from '../../config/kind.js';
import { CODE_ONLY } from '../../config/values.js';
import { RETRY_FIELDS } from '../net/retry-kind.js';
import type { NginxOptions } from './nginx.js';

/** `nginx: URL` or `nginx: { url, …NginxOptions }` in a config file; undici loads only when one is built. */
export const nginxKind = leafKind<NginxOptions>({
  name: 'nginx',
  args: { url: 'string' },
  scalar: 'url',
  options: {
    timeoutMs: 'number', minBytesPerSecond: 'number', retry: RETRY_FIELDS, headers: 'object', connections: 'number',
    dispatcher: CODE_ONLY,
  },
  async create({ args, options }, node) {
    const url = args.url as string | undefined;
    if (!url) return node.fail('an Nginx location needs a URL: `nginx: http://host/lake/`');
    const { Nginx } = await import('./nginx.js');
    return new Nginx(url, options);
  },
});

import { leafKind } from '../../config/kind.js';
import { RETRY_FIELDS } from '../../retry-kind.js';
import type { S3Options } from './s3.js';

/** `s3: { endpoint, bucket, …S3Options }` in a config file; the AWS SDK loads only when one is built. */
export const s3Kind = leafKind<S3Options>({
  name: 's3',
  args: { endpoint: 'string', bucket: 'string' },
  options: {
    layout: ['cairn', 'tarn'], prefix: 'string', region: 'string', credentials: { accessKeyId: 'string', secretAccessKey: 'string', sessionToken: 'string' },
    forcePathStyle: 'boolean', levels: 'numbers', partSize: 'size', queueSize: 'number', multipartThreshold: 'size', timeoutMs: 'number',
    keepLabels: 'boolean', keepUsage: 'boolean', touchInterval: 'number', pageSize: 'number', readAhead: 'number', retry: RETRY_FIELDS,
    client: 'object',
  },
  async create({ args, options }, node) {
    const bucket = args.bucket as string | undefined;
    if (!bucket) return node.fail('an S3 location needs `bucket`');
    const { S3 } = await import('./s3.js');
    return new S3((args.endpoint as string | undefined) ?? null, bucket, options);
  },
});

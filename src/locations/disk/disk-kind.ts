import { localPath, leafKind } from '../../config/kind.js';
import { Disk, type DiskOptions } from './disk.js';

/** `disk: PATH` or `disk: { path, …DiskOptions }` in a config file. */
export const diskKind = leafKind<DiskOptions>({
  name: 'disk',
  args: { path: 'string' },
  scalar: 'path',
  options: {
    levels: 'numbers', maxSize: 'size', minFree: 'size', maxUsage: 'number', fsync: 'boolean', verifyReads: 'boolean',
    touchInterval: 'number', syncSmallIo: 'boolean', group: 'string|number', groupWritable: 'boolean', markOnWrite: 'boolean',
  },
  create({ args, options }, node, context) {
    const path = args.path as string | undefined;
    if (path === undefined) return node.fail('a Disk needs a folder: `disk: /path/to/lake` or `disk: { path: … }`');
    return new Disk(localPath(path, context), options);
  },
});

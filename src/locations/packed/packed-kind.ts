import { localPath, leafKind } from '../../config/kind.js';
import { Packed, type PackedOptions } from './packed.js';

/** `packed: PATH` or `packed: { path, …PackedOptions }` in a config file. */
export const packedKind = leafKind<PackedOptions>({
  name: 'packed',
  args: { path: 'string' },
  scalar: 'path',
  options: { fsync: 'boolean', maxSize: 'size', lockTimeout: 'number' },
  create({ args, options }, node, context) {
    const path = args.path as string | undefined;
    if (path === undefined) return node.fail('a Packed location needs a folder: `packed: /path/to/folder` or `packed: { path: … }`');
    return new Packed(localPath(path, context), options);
  },
});

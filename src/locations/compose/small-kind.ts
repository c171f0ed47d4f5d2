import type { LocationKind } from '../../config/kind.js';
import { building, fieldValue, type OptionTable } from '../../config/values.js';
import { Small, type SmallOptions } from './small.js';

const SMALL_FIELDS = { maxSize: 'size' } as const satisfies OptionTable<SmallOptions>;

/** `small: location` with `maxSize` beside it in a config file. */
export const smallKind: LocationKind = {
  name: 'small',
  siblings: SMALL_FIELDS,
  async build(node, context) {
    const maxSize = context.siblings.get('maxSize');
    if (!maxSize) return node.fail('`small` needs `maxSize` beside it, e.g. `{ small: { memory: {} }, maxSize: 100KiB }`');
    const inner = await context.build(node);
    const size = fieldValue(maxSize, SMALL_FIELDS.maxSize, context.env) as SmallOptions['maxSize'];
    return building(maxSize, () => new Small(inner, { maxSize: size }));
  },
};

import type { LocationKind } from '../../config/kind.js';
import { Fanout } from './fanout.js';

/** `fanout: [location, …]` in a config file (a bare list is a Fanout too). */
export const fanoutKind: LocationKind = {
  name: 'fanout',
  async build(node, context) {
    const items = await Promise.all(node.items().map((item) => context.build(item)));
    return new Fanout(...items);
  },
};

import type { LocationKind } from '../../config/kind.js';
import { fieldValue, type OptionTable, readOptions } from '../../config/values.js';
import { Level, type LevelOptions, Levels, type LevelsOptions } from './levels.js';

/** A level's options, beside its kind: `- { disk: /mnt/ssd, write: false }`. */
const LEVEL_FIELDS = { write: 'boolean', replicate: 'boolean', touch: 'boolean', writeThrough: 'boolean', name: 'string' } as const satisfies OptionTable<LevelOptions>;
const LEVELS_FIELDS = { skipFailing: 'boolean', batchSize: 'number' } as const satisfies OptionTable<LevelsOptions>;

/** `levels: [level, …]` with `skipFailing` beside it in a config file. */
export const levelsKind: LocationKind = {
  name: 'levels',
  siblings: LEVELS_FIELDS,
  itemFields: LEVEL_FIELDS,
  async build(node, context) {
    const levels: Level[] = [];
    const own = Object.keys(LEVEL_FIELDS);
    for (const item of node.items()) {
      const location = await context.build(item, own);
      const options = item.isMap ? readOptions(item, LEVEL_FIELDS, context.env, item.entries().map(([key]) => key).filter((key) => !own.includes(key))) : {};
      levels.push(new Level(location, options as LevelOptions));
    }
    const options: LevelsOptions = {};
    for (const [key, type] of Object.entries(LEVELS_FIELDS)) {
      const sibling = context.siblings.get(key);
      if (sibling) Object.assign(options, { [key]: fieldValue(sibling, type, context.env) });
    }
    return new Levels(...levels, options);
  },
};

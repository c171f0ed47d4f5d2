import { leafKind } from '../config/kind.js';
import { Memory, type MemoryOptions } from './memory.js';

/** `memory: {}` or `memory: { …MemoryOptions }` in a config file. */
export const memoryKind = leafKind<MemoryOptions>({
  name: 'memory',
  args: {},
  options: { maxSize: 'size', maxUsage: 'number' },
  create: ({ options }) => new Memory(options),
});

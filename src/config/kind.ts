import { isAbsolute, resolve } from 'node:path';
import type { Location } from '../locations/interface.js';
import type { ConfigNode } from './node.js';
import { building, type FieldType, type OptionTable, readOptions, stringValue } from './values.js';

/** What a factory gets: the node of its kind (`disk: …`), and how to build nested locations. */
export interface BuildContext {
  /** The folder of the config file: relative paths are relative to it. */
  dir: string;
  env: NodeJS.ProcessEnv;
  /**
   * Builds a nested location node. `extra` names the fields its parent reads beside the kind key
   * (a level's `write`, `touch`…); any other field there is an error.
   */
  build(node: ConfigNode, extra?: readonly string[]): Promise<Location>;
  /** Siblings of the kind key in the same mapping (e.g. `maxSize` beside `small`). */
  siblings: Map<string, ConfigNode>;
}

/** Builds one kind of location from its config node. */
export type LocationFactory = (node: ConfigNode, context: BuildContext) => Promise<Location>;

/**
 * One kind of location in config files (`<name>: …`): the schema of what its node and the mapping
 * around it may hold, and how to build it. Each lives in a `*-kind.ts` file beside its location.
 */
export interface LocationKind {
  readonly name: string;
  /** What the kind's own node may hold (its options and constructor arguments); none: the node holds locations. */
  readonly fields?: Readonly<Record<string, FieldType>>;
  /** Fields this kind reads beside its key in the same mapping (`maxSize` beside `small`). */
  readonly siblings?: Readonly<Record<string, FieldType>>;
  /** Fields each item of its list reads beside the item's kind (a level's `write`). */
  readonly itemFields?: Readonly<Record<string, FieldType>>;
  readonly build: LocationFactory;
}

/** What a location's kind reads from its node before it builds the location. */
export interface LeafInput<Options> {
  /** Constructor arguments (`path`, `url`, `host`…), converted. */
  args: Record<string, unknown>;
  options: Options;
}

/** A location whose node holds options (and constructor arguments) rather than other locations. */
export interface LeafKindSpec<Options> {
  name: string;
  /** Constructor arguments, read from the kind's mapping beside the options. */
  args: Readonly<Record<string, FieldType>>;
  /** The argument a bare string stands for (`disk: /lake`, `redis: URL`); none: the kind needs a mapping. */
  scalar?: string;
  /** Every option of the location's options interface (checked at compile time by `satisfies OptionTable<…>`). */
  options: OptionTable<Options>;
  create(input: LeafInput<Options>, node: ConfigNode, context: BuildContext): Location | Promise<Location>;
}

export interface LeafKind<Options> extends LocationKind {
  readonly fields: Readonly<Record<string, FieldType>>;
  readonly args: Readonly<Record<string, FieldType>>;
  readonly options: OptionTable<Options>;
  /** Reads and checks the node without building anything (what `build` hands to the constructor). */
  read(node: ConfigNode, env: NodeJS.ProcessEnv): LeafInput<Options>;
}

export function leafKind<Options>(spec: LeafKindSpec<Options>): LeafKind<Options> {
  const fields: Record<string, FieldType> = { ...spec.args, ...(spec.options as Record<string, FieldType>) };
  const read = (node: ConfigNode, env: NodeJS.ProcessEnv): LeafInput<Options> => {
    if (node.isScalar && !node.isNull && spec.scalar !== undefined) return { args: { [spec.scalar]: stringValue(node, env) }, options: {} as Options };
    if (node.isScalar && !node.isNull) node.fail(`${spec.name} takes a mapping of options, e.g. \`${spec.name}: { ${Object.keys(spec.args).join(', ')} }\``);
    const all = node.isNull ? {} : readOptions(node, fields, env);
    const args: Record<string, unknown> = {};
    for (const name of Object.keys(spec.args)) {
      if (name in all) args[name] = all[name];
      delete all[name];
    }
    return { args, options: all as Options };
  };
  return {
    name: spec.name,
    fields,
    args: spec.args,
    options: spec.options,
    read,
    build: async (node, context) => {
      const input = read(node, context.env);
      return building(node, () => spec.create(input, node, context));
    },
  };
}

/** A path from a config file: relative to the file's folder. */
export function localPath(value: string, context: BuildContext): string {
  return isAbsolute(value) ? value : resolve(context.dir, value);
}

import { isMap, isScalar, isSeq, LineCounter, type Node as YamlNode, parseDocument } from 'yaml';
import { ConfigFileError } from '../errors.js';

export { ConfigFileError };

/**
 * One node of a parsed config file, with where it is (line) and what it is (a field path such as
 * `storage.levels[1].disk.maxSize`), so that every error can name both.
 */
export class ConfigNode {
  constructor(
    readonly file: string,
    private readonly node: YamlNode | null,
    private readonly lines: LineCounter,
    readonly field: string,
    private readonly parentLine = 1,
  ) {}

  get line(): number {
    const offset = this.node?.range?.[0];
    return offset === undefined ? this.parentLine : this.lines.linePos(offset).line;
  }

  fail(message: string, cause?: unknown): never {
    throw new ConfigFileError(this.file, this.line, this.field, message, cause === undefined ? undefined : { cause });
  }

  get isNull(): boolean {
    return this.node === null || (isScalar(this.node) && this.node.value === null);
  }
  get isMap(): boolean {
    return isMap(this.node);
  }
  get isSeq(): boolean {
    return isSeq(this.node);
  }
  get isScalar(): boolean {
    return isScalar(this.node);
  }

  /** The scalar's value (a string, number, boolean or null). */
  get scalar(): unknown {
    if (!isScalar(this.node)) this.fail(`expected a single value, got a ${isMap(this.node) ? 'mapping' : 'list'}`);
    return this.node.value;
  }

  /** The keys of a mapping and their nodes, in file order. */
  entries(): [string, ConfigNode][] {
    if (!isMap(this.node)) this.fail('expected a mapping (key: value)');
    return this.node.items.map((pair) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const keyLine = isScalar(pair.key) && pair.key.range ? this.lines.linePos(pair.key.range[0]).line : this.line;
      return [key, new ConfigNode(this.file, (pair.value as YamlNode | null) ?? null, this.lines, this.join(key), keyLine)];
    });
  }

  /** The items of a list. */
  items(): ConfigNode[] {
    if (!isSeq(this.node)) this.fail('expected a list');
    return this.node.items.map(
      (item, index) => new ConfigNode(this.file, item as YamlNode, this.lines, `${this.field}[${index}]`, this.line),
    );
  }

  private join(key: string): string {
    return this.field ? `${this.field}.${key}` : key;
  }
}

/** Parses YAML (or JSON, a subset of YAML) keeping positions. */
export function parseConfigText(text: string, file: string): ConfigNode {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const line = first.pos?.[0] !== undefined ? lines.linePos(first.pos[0]).line : 1;
    throw new ConfigFileError(file, line, '', `not valid YAML or JSON: ${first.message.split('\n')[0]}`, { cause: first });
  }
  return new ConfigNode(file, (doc.contents as YamlNode | null) ?? null, lines, '');
}

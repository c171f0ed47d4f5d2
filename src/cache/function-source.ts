/**
 * What a function's source says about what it can observe: its normalised code and the names it
 * takes from outside (free names), with how each is used.
 *
 * - Code is hashed as its acorn AST without positions, raw text or the function's own name, with
 *   every free name replaced by its rank of first appearance (`$0`, `$1`…): what a free name
 *   stands for is hashed from its value instead, so a bundler's renaming (`helper` → `helper2`)
 *   or a compiler's import alias (tsc's `dep_1`, esbuild's `import_dep`) does not change a key,
 *   and two sources that differ only in names bound to the same values are the same code.
 * - Each free name records the member chains used on it (`ns.blur`, `CFG.sigma`), whether it is
 *   used bare (passed, called, spread: its whole value counts), and whether the function assigns
 *   it (then it is the function's own state, as `model ??= load()`, not an input).
 * - Chains on `this` and `super`, literal `import('…')` and `require('…')` specifiers are listed
 *   so the digest can follow them.
 */
import { createHash } from 'node:crypto';
import * as acorn from 'acorn';
import { analyze } from 'eslint-scope';

export interface FreeName {
  name: string;
  /** Member chains read on the name (`a.b.c` gives ['b', 'c']). */
  chains: string[][];
  /** Used other than as the base of a static member chain. */
  bare: boolean;
  /** Assigned or changed by the function (`x = …`, `x.n++`, `delete x.k`): its own state, not an input. */
  written: boolean;
  /** A method that changes its object is called on it (`seen.add(x)`): state, unless it is a namespace. */
  mutated: boolean;
}

export interface ParsedFunction {
  /** sha256 (hex) of the normalised code. */
  code: string;
  /** Free names in order of first appearance (the order of their placeholders). */
  free: FreeName[];
  /** Member chains on `this`. */
  self: string[][];
  /** Member chains on `super`. */
  parent: string[][];
  /** Specifiers of `import('…')` with a literal. */
  imports: string[];
  /** Specifiers of `require('…')` with a literal, when `require` is a free name. */
  requires: string[];
  /** The source has `import()` of a computed specifier, `eval` or `with`: what it reads cannot be listed. */
  opaque: string[];
}

type Node = acorn.Node & Record<string, unknown>;

/** Methods that change the object they are called on (arrays, Maps, Sets, typed arrays). */
const MUTATORS = new Set(['push', 'pop', 'shift', 'unshift', 'splice', 'sort', 'reverse', 'fill', 'copyWithin', 'set', 'add', 'delete', 'clear']);

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

const parsed = new Map<string, ParsedFunction | Error>();
const PARSED_LIMIT = 2000;

function tryParse(source: string): { program: Node; picked: Node } | null {
  const attempts: [string, (program: Node) => Node | undefined][] = [
    [`(${source})`, (p) => (p.body as Node[])[0]!.expression as Node],
    // a method or accessor: `name(x) { … }`, `get x() { … }`, `async *gen() { … }`
    [`({${source}})`, (p) => (((p.body as Node[])[0]!.expression as Node).properties as Node[])[0]],
    // a class member that an object literal cannot hold (`static m() {}`, `#private() {}`)
    [`(class{${source}})`, (p) => ((((p.body as Node[])[0]!.expression as Node).body as Node).body as Node[])[0]],
  ];
  for (const [text, pick] of attempts) {
    let program: Node;
    try {
      program = acorn.parse(text, { ecmaVersion: 'latest', sourceType: 'script', ranges: true }) as unknown as Node;
    } catch {
      continue;
    }
    if ((program.body as Node[]).length !== 1) continue;
    const picked = pick(program);
    if (picked) return { program, picked };
  }
  return null;
}

/** A static member chain rooted at an identifier, `this` or `super`. */
function memberChain(node: Node): { base: Node; chain: string[] } | null {
  const chain: string[] = [];
  let current = node;
  while (current.type === 'MemberExpression') {
    const property = current.property as Node;
    if (!current.computed && property.type === 'Identifier') chain.unshift(property.name as string);
    else if (current.computed && property.type === 'Literal' && typeof property.value === 'string') chain.unshift(property.value);
    else return null;
    current = current.object as Node;
  }
  return current.type === 'Identifier' || current.type === 'ThisExpression' || current.type === 'Super' ? { base: current, chain } : null;
}

function children(node: Node): Node[] {
  const out: Node[] = [];
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (item && typeof (item as Node).type === 'string') out.push(item as Node);
    } else if (value && typeof (value as Node).type === 'string') {
      out.push(value as Node);
    }
  }
  return out;
}

function analyse(source: string): ParsedFunction | Error {
  const found = tryParse(source);
  if (found === null) return new Error('its source could not be parsed');
  const { program, picked } = found;
  // eslint-scope's types lag behind its version; the AST is plain ESTree from acorn
  const manager = analyze(program as never, { ecmaVersion: 2022 as never, sourceType: 'script' });
  const byName = new Map<string, FreeName>();
  const freeNodes = new Map<Node, FreeName>();
  const order: FreeName[] = [];
  for (const reference of manager.globalScope!.through) {
    const name = reference.identifier.name;
    let free = byName.get(name);
    if (free === undefined) {
      free = { name, chains: [], bare: false, written: false, mutated: false };
      byName.set(name, free);
    }
    if (reference.isWrite()) free.written = true;
    freeNodes.set(reference.identifier as unknown as Node, free);
  }
  const self: string[][] = [];
  const parent: string[][] = [];
  const imports: string[] = [];
  const requires: string[] = [];
  const opaque: string[] = [];
  const chainBases = new Set<Node>();
  // the function changes what a free name holds (`seen.add(x)`, `counter.runs++`, `cache[k] = v`)
  const mutates = (target: Node, how: 'written' | 'mutated'): void => {
    let base = target;
    while (base.type === 'MemberExpression') base = base.object as Node;
    const free = freeNodes.get(base);
    if (free !== undefined) free[how] = true;
  };
  const visit = (node: Node): void => {
    if ((node.type === 'AssignmentExpression' && (node.left as Node).type === 'MemberExpression') || (node.type === 'UpdateExpression' && (node.argument as Node).type === 'MemberExpression')) {
      mutates((node.left ?? node.argument) as Node, 'written');
    } else if (node.type === 'UnaryExpression' && node.operator === 'delete') {
      mutates(node.argument as Node, 'written');
    } else if (node.type === 'CallExpression' && (node.callee as Node).type === 'MemberExpression') {
      const callee = node.callee as Node;
      const property = callee.property as Node;
      if (!callee.computed && property.type === 'Identifier' && MUTATORS.has(property.name as string)) mutates(callee.object as Node, 'mutated');
    }
    if (node.type === 'MemberExpression') {
      const found = memberChain(node);
      if (found) {
        const { base, chain } = found;
        chainBases.add(base);
        if (base.type === 'ThisExpression') self.push(chain);
        else if (base.type === 'Super') parent.push(chain);
        else freeNodes.get(base)?.chains.push(chain);
      }
    } else if (node.type === 'ImportExpression') {
      const source = node.source as Node;
      if (source.type === 'Literal' && typeof source.value === 'string') imports.push(source.value);
      else opaque.push('import() of a computed specifier');
    } else if (node.type === 'CallExpression') {
      const callee = node.callee as Node;
      const [first] = node.arguments as Node[];
      if (callee.type === 'Identifier' && freeNodes.has(callee)) {
        if (callee.name === 'require' && first?.type === 'Literal' && typeof first.value === 'string') requires.push(first.value);
        if (callee.name === 'eval') opaque.push('eval()');
      }
    } else if (node.type === 'WithStatement') {
      opaque.push('a with statement');
    }
    for (const child of children(node)) visit(child);
  };
  visit(picked);
  // first appearance in source order fixes each free name's placeholder
  const seen = new Set<FreeName>();
  const ranks = new Map<FreeName, number>();
  const rank = (node: Node): void => {
    const free = freeNodes.get(node);
    if (free !== undefined && !seen.has(free)) {
      seen.add(free);
      ranks.set(free, order.length);
      order.push(free);
    }
    if (free !== undefined && !chainBases.has(node)) free.bare = true;
    for (const child of children(node)) rank(child);
  };
  rank(picked);
  const ownName = (picked.id as Node | undefined) ?? null;
  const code = JSON.stringify(picked, function (this: Record<string, unknown>, key, value: unknown) {
    if (key === 'start' || key === 'end' || key === 'loc' || key === 'range') return undefined;
    if (key === 'raw' && this.type === 'Literal') return undefined;
    if (typeof value === 'bigint') return `${value}n`;
    if (value !== null && typeof value === 'object') {
      if (value === ownName) return null;
      const free = freeNodes.get(value as Node);
      if (free !== undefined) return { type: 'Free', rank: ranks.get(free) };
    }
    return value;
  });
  return { code: sha(code), free: order, self, parent, imports, requires, opaque };
}

/** The analysis of a function's source (memoised by source text). */
export function parseFunction(source: string): ParsedFunction | Error {
  const known = parsed.get(source);
  if (known) return known;
  const result = analyse(source);
  if (parsed.size >= PARSED_LIMIT) parsed.delete(parsed.keys().next().value!);
  parsed.set(source, result);
  return result;
}

/**
 * The digest of a function's code and of the unstable code it reaches.
 *
 * - Code is hashed as its acorn AST without positions or raw text, so comments, whitespace and
 *   the function's place in its file do not count.
 * - Free names (eslint-scope's unresolved references) are looked up in the function's real
 *   scopes through the in-process inspector (`[[Scopes]]`): closures, module scope, imports.
 *   A function or class marked unstable is hashed by its code, transitively; a pinned one by its
 *   name; a primitive constant by its value; anything else by reference (not at all).
 * - Member chains on a free name are followed, so `ns.helper(x)` and compiled imports
 *   `(0, dep_1.helper)(x)` reach `helper`.
 * Digests are memoised per function object in a WeakMap, except while a dependency is still
 * unresolved (a module binding in its temporal dead zone).
 */
import { createHash } from 'node:crypto';
import { Session } from 'node:inspector';
import * as acorn from 'acorn';
import { analyze } from 'eslint-scope';
import { markOf } from './mark.js';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type AnyFunction = Function;

export interface FunctionDigest {
  /** sha256 (hex) of the function's normalised code and everything it depends on. */
  readonly digest: string;
  /** sha256 (hex) of the function's own normalised code. */
  readonly code: string;
  /** Every dependency that took part, by path (`helper`, `ns.blur`, `blur > kernel`), with its digest. */
  readonly deps: ReadonlyMap<string, string>;
  /** False when a free name could not be resolved (the digest is then not memoised). */
  readonly complete: boolean;
  /** Why dependencies could not be tracked (no inspector, a native or bound function, unparsable code). */
  readonly warnings: readonly string[];
}

interface Parsed {
  code: string;
  /** Free names, each with the member chains used on it (an empty chain: the name itself). */
  free: Map<string, string[][]>;
  /** Member chains used on `this`. */
  self: string[][];
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

// ---------------------------------------------------------------- parsing

const parsedCache = new Map<string, Parsed | Error>();
const PARSED_CACHE_LIMIT = 2000;

type Node = acorn.Node & Record<string, unknown>;

function tryParse(source: string): Node | null {
  const attempts: [string, (program: Node) => Node][] = [
    [`(${source})`, (p) => ((p.body as Node[])[0]!.expression as Node)],
    [`({${source}})`, (p) => (((p.body as Node[])[0]!.expression as Node).properties as Node[])[0]!],
    [`(class{${source}})`, (p) => ((((p.body as Node[])[0]!.expression as Node).body as Node).body as Node[])[0]!],
  ];
  for (const [text, pick] of attempts) {
    let program: Node;
    try {
      program = acorn.parse(text, { ecmaVersion: 'latest', sourceType: 'script', ranges: true }) as unknown as Node;
    } catch {
      continue;
    }
    if ((program.body as Node[]).length !== 1) continue;
    const node = pick(program);
    if (node) return Object.assign(program, { picked: node });
  }
  return null;
}

/** The AST as JSON without positions or raw text: comments, whitespace and location do not count. */
function canonical(node: Node): string {
  return JSON.stringify(node, function (this: Record<string, unknown>, key, value: unknown) {
    if (key === 'start' || key === 'end' || key === 'loc' || key === 'range') return undefined;
    if (key === 'raw' && this.type === 'Literal') return undefined;
    if (typeof value === 'bigint') return `${value}n`;
    return value;
  });
}

/** Member chains rooted at an identifier or `this`: `a.b.c` gives ['a', 'b', 'c']. */
function memberChain(node: Node): { base: string | null; chain: string[] } | null {
  const chain: string[] = [];
  let current = node;
  while (current.type === 'MemberExpression') {
    const property = current.property as Node;
    if (!current.computed && property.type === 'Identifier') chain.unshift(property.name as string);
    else if (current.computed && property.type === 'Literal' && typeof property.value === 'string') chain.unshift(property.value);
    else return null;
    current = current.object as Node;
  }
  if (current.type === 'Identifier') return { base: current.name as string, chain };
  if (current.type === 'ThisExpression') return { base: null, chain };
  return null;
}

function collectChains(root: Node, into: (base: string | null, chain: string[]) => void): void {
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (typeof node !== 'object' || node === null || typeof (node as Node).type !== 'string') return;
    const n = node as Node;
    if (n.type === 'MemberExpression') {
      const found = memberChain(n);
      if (found && found.chain.length > 0) into(found.base, found.chain);
    }
    for (const key of Object.keys(n)) {
      if (key !== 'type' && key !== 'start' && key !== 'end') visit(n[key]);
    }
  };
  visit(root);
}

function parse(source: string): Parsed | Error {
  const known = parsedCache.get(source);
  if (known) return known;
  let result: Parsed | Error;
  const program = tryParse(source);
  if (program === null) {
    result = new Error('its source could not be parsed');
  } else {
    const picked = (program as Node & { picked: Node }).picked;
    const free = new Map<string, string[][]>();
    // eslint-scope's types lag behind its version; the AST is plain ESTree from acorn
    const manager = analyze(program as never, { ecmaVersion: 2022 as never, sourceType: 'script' });
    for (const reference of manager.globalScope!.through) free.set(reference.identifier.name, [[]]);
    const self: string[][] = [];
    collectChains(picked, (base, chain) => {
      if (base === null) self.push(chain);
      else free.get(base)?.push(chain);
    });
    result = { code: sha(canonical(picked)), free, self };
  }
  if (parsedCache.size >= PARSED_CACHE_LIMIT) parsedCache.delete(parsedCache.keys().next().value!);
  parsedCache.set(source, result);
  return result;
}

// ---------------------------------------------------------------- inspector

interface RemoteObject {
  type: string;
  subtype?: string;
  value?: unknown;
  unserializableValue?: string;
  description?: string;
  objectId?: string;
}

interface PropertyDescriptor {
  name: string;
  value?: RemoteObject;
}

const INSPECT = Symbol.for('cairn.smartCache.inspect');
const OUT = Symbol.for('cairn.smartCache.out');
let groups = 0;

/** A synchronous view of the function scopes V8 keeps, through an in-process inspector session. */
class ScopeReader {
  private static instance: ScopeReader | null | undefined;
  static failure: string | null = null;

  static get(): ScopeReader | null {
    if (ScopeReader.instance === undefined) {
      try {
        const session = new Session();
        session.connect();
        ScopeReader.instance = new ScopeReader(session);
      } catch (error) {
        ScopeReader.failure = `the inspector is not available (${(error as Error).message})`;
        ScopeReader.instance = null;
      }
    }
    return ScopeReader.instance;
  }

  private constructor(private readonly session: Session) {}

  private post<T>(method: string, params: object): T {
    let result: T | undefined;
    let failure: Error | null = null;
    let answered = false;
    // with connect() (same thread) the callback runs before post() returns
    this.session.post(method as 'Runtime.evaluate', params as never, (error, answer) => {
      answered = true;
      failure = error;
      result = answer as T;
    });
    if (!answered) throw new Error(`the inspector did not answer ${method} synchronously`);
    if (failure) throw failure;
    return result as T;
  }

  /** Runs `body` with the function's variables by name (innermost scope first), then releases every remote object. */
  withScopes<T>(fn: AnyFunction, body: (variables: Map<string, RemoteObject>, fetch: (remote: RemoteObject) => unknown) => T): T {
    const global = globalThis as Record<symbol, unknown>;
    // one group per call: a nested call (a dependency's scopes) must not release ours
    const GROUP = `cairn.smartCache.${groups++}`;
    try {
      global[INSPECT] = fn;
      const { result: target } = this.post<{ result: RemoteObject }>('Runtime.evaluate', {
        expression: 'globalThis[Symbol.for("cairn.smartCache.inspect")]',
        objectGroup: GROUP,
        silent: true,
      });
      delete global[INSPECT];
      const { internalProperties } = this.post<{ internalProperties?: PropertyDescriptor[] }>('Runtime.getProperties', {
        objectId: target.objectId,
        ownProperties: true,
        objectGroup: GROUP,
      });
      const scopes = internalProperties?.find((property) => property.name === '[[Scopes]]')?.value;
      const variables = new Map<string, RemoteObject>();
      if (scopes?.objectId) {
        const list = this.post<{ result: PropertyDescriptor[] }>('Runtime.getProperties', {
          objectId: scopes.objectId,
          ownProperties: true,
          objectGroup: GROUP,
        }).result;
        for (const scope of list) {
          // the global object is read directly, never listed (thousands of properties)
          if (!scope.value?.objectId || !/^\d+$/.test(scope.name) || scope.value.description === 'Global') continue;
          const vars = this.post<{ result: PropertyDescriptor[] }>('Runtime.getProperties', {
            objectId: scope.value.objectId,
            ownProperties: true,
            objectGroup: GROUP,
          }).result;
          for (const variable of vars) {
            if (variable.value && !variables.has(variable.name)) variables.set(variable.name, variable.value);
          }
        }
      }
      const fetch = (remote: RemoteObject): unknown => {
        if (!remote.objectId) return primitive(remote);
        this.post('Runtime.callFunctionOn', {
          objectId: target.objectId,
          functionDeclaration: 'function (value) { globalThis[Symbol.for("cairn.smartCache.out")] = value; }',
          arguments: [{ objectId: remote.objectId }],
          silent: true,
        });
        const value = global[OUT];
        delete global[OUT];
        return value;
      };
      return body(variables, fetch);
    } finally {
      delete global[INSPECT];
      // without this every inspected closure stays alive
      this.post('Runtime.releaseObjectGroup', { objectGroup: GROUP });
    }
  }
}

function primitive(remote: RemoteObject): unknown {
  if (remote.unserializableValue !== undefined) {
    const text = remote.unserializableValue;
    if (remote.type === 'bigint') return BigInt(text.slice(0, -1));
    return text === '-0' ? -0 : Number(text);
  }
  if (remote.type === 'undefined') return undefined;
  if (remote.subtype === 'null') return null;
  return remote.value;
}

function primitiveText(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return `string:${value}`;
    case 'number':
      return `number:${Object.is(value, -0) ? '-0' : String(value)}`;
    case 'bigint':
      return `bigint:${value}`;
    case 'boolean':
      return `boolean:${value}`;
    default:
      return value === null ? 'null' : null;
  }
}

// ---------------------------------------------------------------- digests

const memo = new WeakMap<AnyFunction, FunctionDigest>();

interface Work extends FunctionDigest {
  /** Functions still being hashed that this digest refers to by name only (a cycle). */
  cycles: Set<AnyFunction>;
}

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

function isNamespace(value: unknown): boolean {
  return Object.prototype.toString.call(value) === '[object Module]';
}

/**
 * The digest of `fn` (memoised). `self` is the `this` of a method call: chains on `this`
 * (`this.tokenize(x)`) are followed on it.
 */
export function functionDigest(fn: AnyFunction, self?: object): FunctionDigest {
  const known = memo.get(fn);
  if (known) return known;
  const { cycles: _cycles, ...result } = compute(fn, new Set(), self);
  return result;
}

function compute(fn: AnyFunction, stack: Set<AnyFunction>, self: object | undefined): Work {
  const known = memo.get(fn);
  if (known) return { ...known, cycles: new Set() };
  const mark = markOf(fn);
  if (mark?.kind === 'stable') {
    const digest = sha(`stable:${mark.name}`);
    return done(fn, { digest, code: digest, deps: new Map(), complete: true, warnings: [], cycles: new Set() });
  }
  const name = fn.name || '(anonymous)';
  const source = Function.prototype.toString.call(fn);
  if (NATIVE.test(source)) {
    const kind = name.startsWith('bound ') ? 'a bound function' : 'a native function';
    const digest = sha(`native:${name}`);
    return done(fn, {
      digest,
      code: digest,
      deps: new Map(),
      complete: true,
      warnings: [`${name} is ${kind}: its code and dependencies cannot be read; list them in the deps or version option`],
      cycles: new Set(),
    });
  }
  const parsed = parse(source);
  if (parsed instanceof Error) {
    const digest = sha(`source:${source}`);
    return done(fn, {
      digest,
      code: digest,
      deps: new Map(),
      complete: true,
      warnings: [`${name}: ${parsed.message}; its raw source is hashed and its dependencies are not tracked`],
      cycles: new Set(),
    });
  }

  const warnings: string[] = [];
  const deps = new Map<string, string>();
  const lines: string[] = [];
  const cycles = new Set<AnyFunction>();
  let complete = true;

  const addFunction = (path: string, value: AnyFunction): boolean => {
    const mark = markOf(value);
    if (mark === null) return false;
    if (stack.has(value)) {
      cycles.add(value);
      lines.push(`${path}=cycle:${value.name}`);
      return true;
    }
    const sub = compute(value, stack, undefined);
    for (const c of sub.cycles) if (c !== value) cycles.add(c);
    if (!sub.complete) complete = false;
    warnings.push(...sub.warnings);
    lines.push(`${path}=fn:${sub.digest}`);
    deps.set(path, sub.code);
    for (const [subPath, digest] of sub.deps) deps.set(`${path} > ${subPath}`, digest);
    return true;
  };

  const follow = (path: string, base: unknown, chains: string[][], primitives: boolean): void => {
    for (const chain of chains) {
      let value = base;
      let at = path;
      for (const segment of chain) {
        if ((typeof value !== 'object' && typeof value !== 'function') || value === null) break;
        try {
          value = (value as Record<string, unknown>)[segment];
        } catch {
          // a module binding not initialised yet
          complete = false;
          lines.push(`${at}.${segment}=unresolved`);
          break;
        }
        at = `${at}.${segment}`;
        if (typeof value === 'function' && addFunction(at, value)) break;
        const text = primitives && segment === chain[chain.length - 1] ? primitiveText(value) : null;
        if (text !== null) {
          lines.push(`${at}=${text}`);
          deps.set(at, sha(text));
        }
      }
    }
  };

  stack.add(fn);
  try {
    const reader = parsed.free.size > 0 || parsed.self.length > 0 ? ScopeReader.get() : null;
    if (parsed.free.size > 0 && reader === null) {
      warnings.push(`${name}: ${ScopeReader.failure}; its dependencies are not tracked, list them in the deps or version option`);
    }
    if (reader !== null && parsed.free.size > 0) {
      reader.withScopes(fn, (variables, fetch) => {
        for (const [free, chains] of [...parsed.free].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
          const remote = variables.get(free);
          if (remote === undefined) {
            if (free in globalThis) {
              // builtins and globals count only when someone marked them
              const value = (globalThis as Record<string, unknown>)[free];
              if (typeof value === 'function' && addFunction(free, value)) continue;
              if ((typeof value === 'object' || typeof value === 'function') && value !== null) follow(free, value, chains.slice(1), false);
              continue;
            }
            complete = false;
            lines.push(`${free}=unresolved`);
            continue;
          }
          if (remote.type === 'undefined') {
            // possibly a binding in its temporal dead zone: counted, but the digest is not memoised
            complete = false;
            lines.push(`${free}=undefined`);
            continue;
          }
          if (remote.objectId === undefined) {
            const text = primitiveText(primitive(remote));
            if (text !== null) {
              lines.push(`${free}=${text}`);
              deps.set(free, sha(text));
            }
            continue;
          }
          if (remote.type !== 'function' && remote.type !== 'object') continue;
          const value = fetch(remote);
          if (typeof value === 'function' && addFunction(free, value)) continue;
          // constants read through a module namespace (`ns.SCALE`) or a compiled import (`dep_1.SCALE`)
          follow(free, value, chains.slice(1), isNamespace(value) || /_\d+$/.test(free));
        }
      });
    }
    if (self !== undefined && parsed.self.length > 0) follow('this', self, parsed.self, false);
  } catch (error) {
    warnings.push(`${name}: its dependencies could not be read (${(error as Error).message}); list them in the deps or version option`);
  } finally {
    stack.delete(fn);
  }
  cycles.delete(fn);
  lines.sort();
  const digest = sha(`${parsed.code}\n${lines.join('\n')}`);
  const result: Work = { digest, code: parsed.code, deps, complete, warnings: [...new Set(warnings)], cycles };
  // a digest that refers to a function still being hashed elsewhere depends on where we started
  if (complete && cycles.size === 0) memo.set(fn, result);
  return result;
}

function done(fn: AnyFunction, work: Work): Work {
  memo.set(fn, work);
  return work;
}

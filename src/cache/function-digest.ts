/**
 * The digest of what a function can observe, as tarn (through cloudpickle) pickles a function:
 *
 * - its own code (function-source.ts: the AST without positions, comments or names of free
 *   variables);
 * - every free name, looked up in the function's real scopes through the inspector
 *   (inspector.ts), by what it holds:
 *   - a primitive: its value;
 *   - a function: pinned (`markStable`) by its name; marked (`markUnstable`, or a method of a
 *     marked class), or defined inside another function (a closure), **by value**: its code and,
 *     recursively, what it observes; an unmarked function at the top level of a module **by
 *     reference**: its module's identity (module-identity.ts) and its own code, not what it reaches
 *     (tarn's rule for importable functions); a bound function by its target, `this` and arguments;
 *     a native one by its name;
 *   - an object (data, a class instance, a JSON module, an enum, a Map): its value, canonically
 *     (hash-args.ts), read again at every call (see `Live`), so mutating it invalidates;
 *   - a module namespace or a compiled import (`dep_1`, `import_dep`): the members the function
 *     reads from it (`dep.blur`, `dep.SIGMA`), each by the rules above;
 *   - a name the function assigns (`model ??= load()`): its own state, not an input.
 * - chains on `this` (a method) and `super`, `import('./literal.js')` and `require('./literal')`.
 *
 * What cannot be read (no inspector, eval, computed imports, values that cannot be keyed) is a
 * warning (CAIRN_SMARTCACHE_UNTRACKED), never silence.
 */
import { createHash, type Hash } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { encodeInto } from './hash-args.js';
import { type FunctionFacts, Inspector } from './inspector.js';
import { markOf } from './mark.js';
import { moduleIdentity } from './module-identity.js';
import { parseFunction, type ParsedFunction } from './function-source.js';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type AnyFunction = Function;

/** A value read again at every call: its canonical hash goes into the key of that call. */
export interface Live {
  /** Where it was found (`CFG`, `dep.SIGMA`, `helper > table`). */
  readonly path: string;
  readonly read: () => unknown;
  /** Set when its encoding is large: hashed once per process, then frozen (see LIVE_LIMIT). */
  frozen?: string;
}

export interface FunctionDigest {
  /** sha256 (hex) of the function's code and everything it observes, but for the live values. */
  readonly digest: string;
  /** sha256 (hex) of the function's own normalised code. */
  readonly code: string;
  /** Every dependency that took part, by path (`helper`, `ns.blur`, `blur > kernel`), with its digest. */
  readonly deps: ReadonlyMap<string, string>;
  /** Values read again at every call (captured data), transitively. */
  readonly live: readonly Live[];
  /** False while a free name is not initialised yet (the digest is then not memoised). */
  readonly complete: boolean;
  /** Modules named by `import('…')` that are not loaded yet: load them, then compute again. */
  readonly pending: readonly string[];
  /** Why something could not be tracked. */
  readonly warnings: readonly string[];
}

interface Work extends Omit<FunctionDigest, 'warnings'> {
  warnings: readonly string[];
  /** Functions still being hashed that this digest refers to by name only (a cycle). */
  cycles: Set<AnyFunction>;
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Captured data whose encoding is larger than this is hashed once per process, not at every call. */
export const LIVE_LIMIT = 1024 * 1024;

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

/** Globals of the platform (present when cairn loads): by name. Globals a program adds are data. */
const PLATFORM = new Set(Object.getOwnPropertyNames(globalThis));

/** Modules loaded for `import('…')` inside cached code, by URL. */
const loaded = new Map<string, unknown>();

const memo = new WeakMap<AnyFunction, FunctionDigest>();
const inProgress = new Set<AnyFunction>();

function isNamespace(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  if (Object.prototype.toString.call(value) === '[object Module]') return true;
  // what compilers make of an import: tsc's `exports`, esbuild's `__toESM(require(…))`
  return Object.prototype.hasOwnProperty.call(value, '__esModule');
}

function primitiveText(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return `string:${value.length}:${value}`;
    case 'number':
      return `number:${Object.is(value, -0) ? '-0' : String(value)}`;
    case 'bigint':
      return `bigint:${value}`;
    case 'boolean':
      return `boolean:${value}`;
    case 'undefined':
      return 'undefined';
    case 'symbol':
      return `symbol:${String(value.description)}`;
    default:
      return value === null ? 'null' : null;
  }
}

/** The class whose prototype (or which, for statics) owns `fn` along `holder`'s chain, if any. */
function ownerOf(holder: unknown, fn: AnyFunction): { home: object; owner: AnyFunction | null } | null {
  for (let at = holder; at !== null && (typeof at === 'object' || typeof at === 'function'); at = Object.getPrototypeOf(at)) {
    for (const key of Reflect.ownKeys(at as object)) {
      const descriptor = Object.getOwnPropertyDescriptor(at, key);
      if (descriptor && (descriptor.value === fn || descriptor.get === fn || descriptor.set === fn)) {
        const owner = typeof at === 'function' ? at : (at as { constructor?: unknown }).constructor;
        return { home: at as object, owner: typeof owner === 'function' ? owner : null };
      }
    }
  }
  return null;
}

/** A top-level function of a module: no scope of its own between it and the module's. */
function isTopLevel(facts: FunctionFacts): boolean {
  const scopes = facts.scopes;
  if (scopes.length === 0) return true;
  let top = scopes.findIndex((scope) => scope.kind === 'module' || scope.kind === 'script');
  // CommonJS: the module's scope is the wrapper function's, the outermost closure
  if (top === -1) top = scopes.length - 1;
  return scopes.slice(0, top).every((scope) => scope.size === 0);
}

function resolveSpecifier(specifier: string, url: string): string | null {
  if (specifier.startsWith('node:')) return null;
  if (/^\.{0,2}\//.test(specifier)) return url ? new URL(specifier, url).href : null;
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) return specifier;
  if (!url.startsWith('file:')) return null;
  try {
    return pathToFileURL(createRequire(fileURLToPath(url)).resolve(specifier)).href;
  } catch {
    return null;
  }
}

/** The identity of the module that defines `fn` (module-identity.ts); '' where the inspector cannot say. */
export function moduleOf(fn: AnyFunction): string {
  const url = Inspector.get()?.facts(fn, new Set()).url ?? '';
  return url === '' ? '' : moduleIdentity(url);
}

/** Loads what `import('…')` in a digest named, so that the next computation can read it. */
export async function loadPending(digest: FunctionDigest): Promise<void> {
  await Promise.all(
    digest.pending.map(async (url) => {
      if (!loaded.has(url)) loaded.set(url, await import(url));
    }),
  );
}

/**
 * The digest of `fn` (memoised per function). For a method, `self` is the `this` of the call:
 * chains on `this` and `super` are followed from its class, and the result is not memoised here
 * (the caller keeps one per class).
 */
export function functionDigest(fn: AnyFunction, self?: object): FunctionDigest {
  const known = self === undefined ? memo.get(fn) : undefined;
  if (known) return known;
  const home = self === undefined ? undefined : ownerOf(self, fn)?.home;
  const { cycles: _cycles, ...result } = new Digester().compute(fn, home, self);
  return result;
}

/** Feeds the current value of every live value of `digest` into `hash`; returns their digests by path. */
export function hashLive(digest: FunctionDigest, hash: Hash): [string, string][] {
  const out: [string, string][] = [];
  for (const live of digest.live) {
    const value = live.frozen ?? liveDigest(live);
    hash.update(`${live.path}=${value}\n`);
    out.push([live.path, value]);
  }
  return out;
}

/** The canonical hash of a live value's current value, and its encoded size. Throws UnhashableError. */
function encodeLive(live: Live): { digest: string; size: number } {
  let size = 0;
  const hash = createHash('sha256');
  const counting = {
    update(data: string | Uint8Array, encoding?: BufferEncoding) {
      size += typeof data === 'string' ? data.length : data.byteLength;
      if (typeof data === 'string') hash.update(data, encoding ?? 'utf8');
      else hash.update(data);
      return counting;
    },
  };
  encodeInto(counting as unknown as Hash, (encoder) => encoder.write(live.read(), live.path));
  return { digest: hash.digest('hex'), size };
}

function liveDigest(live: Live): string {
  let encoded;
  try {
    encoded = encodeLive(live);
  } catch (error) {
    // it was keyable when the digest was made; a value that stopped being so is keyed by its failure
    return sha(`unkeyable:${(error as Error).message}`);
  }
  if (encoded.size > LIVE_LIMIT) live.frozen = encoded.digest;
  return encoded.digest;
}

/** The key of a function value wherever it appears in data or arguments: its digest and its live values now. */
export function functionKey(fn: AnyFunction): string {
  const digest = functionDigest(fn);
  if (digest.live.length === 0) return digest.digest;
  const hash = createHash('sha256').update(digest.digest);
  hashLive(digest, hash);
  return hash.digest('hex');
}

class Digester {
  private readonly stack = new Set<AnyFunction>();

  compute(fn: AnyFunction, home: object | undefined, self: object | undefined): Work {
    const known = self === undefined ? memo.get(fn) : undefined;
    if (known) return { ...known, cycles: new Set() };
    const name = fn.name || '(anonymous)';
    const source = Function.prototype.toString.call(fn);
    if (NATIVE.test(source)) {
      // a bound function is its target with its `this` and arguments; a native one only a name
      const work = this.reference(fn, undefined, name);
      const bound = work.digest !== sha(`native:${fn.name}`);
      if (!bound) work.warnings = [...work.warnings, `${name} is a native function: its code and dependencies cannot be read; list them in the deps or version option`];
      return this.done(fn, self, work);
    }
    const parsed = parseFunction(source);
    const warnings: string[] = [];
    const deps = new Map<string, string>();
    const live: Live[] = [];
    const pending: string[] = [];
    const lines: string[] = [];
    const cycles = new Set<AnyFunction>();
    let complete = true;

    if (parsed instanceof Error) {
      const digest = sha(`source:${Function.prototype.toString.call(fn)}`);
      return this.done(fn, self, { digest, code: digest, deps, live, pending, complete, warnings: [`${name}: ${parsed.message}; its raw source is hashed and its dependencies are not tracked`], cycles });
    }
    for (const what of parsed.opaque) warnings.push(`${name} uses ${what}: what it reads that way is not tracked, list it in the deps option`);

    // --- one value found at `path`, by the rules of the header
    const addValue = (path: string, label: string, value: unknown, holder?: unknown): void => {
      const text = primitiveText(value);
      if (text !== null) {
        lines.push(`${path}=${text}`);
        deps.set(label, sha(text));
        return;
      }
      if (typeof value === 'function') {
        const ref = this.reference(value, holder, label);
        lines.push(`${path}=fn:${ref.digest}`);
        for (const c of ref.cycles) if (c !== fn) cycles.add(c);
        if (!ref.complete) complete = false;
        warnings.push(...ref.warnings);
        live.push(...ref.live);
        pending.push(...ref.pending);
        deps.set(label, ref.code);
        for (const [sub, digest] of ref.deps) deps.set(`${label} > ${sub}`, digest);
        return;
      }
      this.addLive(live, warnings, label, () => value, lines, path);
    };

    // --- a member chain on a value: namespaces, classes and functions are walked member by
    // member; data is taken whole (and a method reached through it is followed as a function)
    const addChain = (path: string, label: string, base: unknown, chain: string[]): void => {
      let value = base;
      let holder: unknown;
      let at = path;
      let where = label;
      let index = 0;
      for (; index < chain.length && (typeof value === 'function' || isNamespace(value)); index++) {
        holder = value;
        try {
          value = (value as Record<string, unknown>)[chain[index]!];
        } catch {
          // a module binding not initialised yet
          complete = false;
          lines.push(`${at}.${chain[index]}=uninitialised`);
          return;
        }
        at = `${at}.${chain[index]}`;
        where = `${where}.${chain[index]}`;
      }
      if (index === chain.length || typeof value !== 'object' || value === null) return addValue(at, where, value, holder);
      const data = value;
      addValue(at, where, data);
      let method: unknown;
      try {
        method = (data as Record<string, unknown>)[chain[index]!];
      } catch {
        return;
      }
      if (typeof method === 'function') addValue(`${at}.${chain[index]}`, `${where}.${chain[index]}`, method, data);
    };

    this.stack.add(fn);
    inProgress.add(fn);
    try {
      const wanted = new Set(parsed.free.filter((free) => !free.written).map((free) => free.name));
      const needsFacts = wanted.size > 0 || parsed.imports.length > 0;
      const inspector = needsFacts ? Inspector.get() : null;
      if (needsFacts && inspector === null) {
        warnings.push(`${name}: ${Inspector.failure}; its dependencies are not tracked, list them in the deps or version option`);
      }
      const facts = inspector?.facts(fn, wanted) ?? null;
      parsed.free.forEach((free, rank) => {
        const path = `$${rank}`;
        if (free.written) {
          lines.push(`${path}=state`);
          return;
        }
        if (facts === null) return;
        const found = facts.scopes.find((scope) => scope.variables.has(free.name))?.variables.get(free.name);
        let value: unknown;
        if (found === undefined) {
          if (!(free.name in globalThis)) {
            // not kept by V8: only read when the function was defined (a class's `extends`)
            lines.push(`${path}=unresolved`);
            return;
          }
          value = (globalThis as Record<string, unknown>)[free.name];
          if (PLATFORM.has(free.name) && markOf(value) === null) {
            lines.push(`${path}=global:${free.name}`);
            return;
          }
        } else if ('uninitialised' in found) {
          // undefined, or a binding still in its temporal dead zone: looked up again next call
          complete = false;
          lines.push(`${path}=undefined`);
          return;
        } else {
          value = found.value;
        }
        if (free.mutated && !isNamespace(value) && typeof value === 'object' && value !== null) {
          // the function fills it (`seen.add(x)`): its own state, not an input
          lines.push(`${path}=state`);
          return;
        }
        if (free.name === 'require' && typeof value === 'function') {
          for (const specifier of parsed.requires) this.addRequire(value as NodeJS.Require, specifier, path, live, warnings, lines);
        }
        if (free.bare || free.chains.length === 0) addValue(path, free.name, value);
        for (const chain of free.chains) addChain(path, free.name, value, chain);
      });
      for (const specifier of parsed.imports) {
        const url = resolveSpecifier(specifier, facts?.url ?? '');
        if (url === null) {
          if (!specifier.startsWith('node:')) warnings.push(`${name}: import('${specifier}') cannot be resolved; what it imports is not tracked`);
          continue;
        }
        if (!loaded.has(url)) {
          complete = false;
          pending.push(url);
          continue;
        }
        const namespace = loaded.get(url);
        this.addLive(live, warnings, `import('${specifier}')`, () => namespace, lines, `import:${specifier}`);
      }
      // chains on `this` and `super`: methods of the actual class (data on `this` is in the key through hashThis)
      if (self !== undefined) {
        for (const chain of parsed.self) this.followMethods('this', self, chain, addValue);
      }
      const parent = home === undefined ? undefined : Object.getPrototypeOf(home);
      if (parent !== undefined && parent !== null) {
        for (const chain of parsed.parent) this.followMethods('super', parent, chain, addValue);
      }
      // a class: its base, which V8 need not keep in any scope
      if (/^class\b/.test(Function.prototype.toString.call(fn))) {
        const base = Object.getPrototypeOf(fn) as unknown;
        if (typeof base === 'function' && base !== Function.prototype) addValue('extends', 'extends', base);
      }
    } catch (error) {
      warnings.push(`${name}: its dependencies could not be read (${(error as Error).message}); list them in the deps option`);
    } finally {
      this.stack.delete(fn);
      inProgress.delete(fn);
    }
    cycles.delete(fn);
    const digest = sha(`${parsed.code}\n${lines.sort().join('\n')}`);
    return this.done(fn, self, { digest, code: parsed.code, deps, live, pending: [...new Set(pending)], complete, warnings: [...new Set(warnings)], cycles });
  }

  private done(fn: AnyFunction, self: object | undefined, work: Work): Work {
    // a digest that refers to a function still being hashed elsewhere depends on where we started
    if (self === undefined && work.complete && work.cycles.size === 0) {
      const { cycles: _cycles, ...result } = work;
      memo.set(fn, result);
    }
    return work;
  }

  private addLive(live: Live[], warnings: string[], path: string, read: () => unknown, lines: string[], at: string): void {
    const entry: Live = { path, read };
    // checked once now: a value that cannot be keyed is a warning, and is left out
    try {
      const { digest, size } = encodeLive(entry);
      if (size > LIVE_LIMIT) entry.frozen = digest;
    } catch (error) {
      warnings.push(`${path} cannot be keyed (${(error as Error).message}); pass what matters as an argument or in the deps option`);
      lines.push(`${at}=untracked`);
      return;
    }
    lines.push(`${at}=live:${path}`);
    live.push(entry);
  }

  private addRequire(require: NodeJS.Require, specifier: string, path: string, live: Live[], warnings: string[], lines: string[]): void {
    if (specifier.startsWith('node:')) return;
    let exports: unknown;
    try {
      exports = require(specifier);
    } catch (error) {
      warnings.push(`require('${specifier}') cannot be loaded (${(error as Error).message}); what it exports is not tracked`);
      return;
    }
    this.addLive(live, warnings, `require('${specifier}')`, () => exports, lines, `${path}(${specifier})`);
  }

  private followMethods(path: string, base: object, chain: string[], addValue: (path: string, label: string, value: unknown, holder?: unknown) => void): void {
    let value: unknown = base;
    let at = path;
    for (const segment of chain) {
      const holder = value;
      try {
        value = (value as Record<string, unknown>)[segment];
      } catch {
        return;
      }
      at = `${at}.${segment}`;
      if (typeof value === 'function') return addValue(at, at, value, holder);
      if (typeof value !== 'object' || value === null) return;
    }
  }

  /** A function reached from the code being hashed, by the rules of the header. */
  private reference(fn: AnyFunction, holder: unknown, label: string): Work {
    const empty = (digest: string, warnings: string[] = []): Work => ({ digest, code: digest, deps: new Map(), live: [], pending: [], complete: true, warnings, cycles: new Set() });
    const mark = markOf(fn);
    if (mark?.kind === 'stable') return empty(sha(`stable:${mark.name}`));
    if (this.stack.has(fn) || inProgress.has(fn)) {
      const work = empty(sha(`cycle:${fn.name}`));
      work.cycles.add(fn);
      return work;
    }
    const source = Function.prototype.toString.call(fn);
    const owner = holder === undefined ? null : ownerOf(holder, fn);
    const facts = Inspector.get()?.facts(fn, new Set()) ?? null;
    if (facts?.bound) {
      const bound = facts.bound;
      const target = this.reference(bound.target, undefined, label);
      const parts: Live[] = [];
      const warnings = [...target.warnings];
      this.addLive(parts, warnings, `${label} (bound this and arguments)`, () => [bound.self, bound.args], [], label);
      return { ...target, digest: sha(`bound:${target.digest}`), live: [...target.live, ...parts], warnings };
    }
    if (NATIVE.test(source)) return empty(sha(`native:${fn.name}`));
    const url = facts?.url ?? '';
    const marked = mark?.kind === 'unstable' || (owner?.owner != null && markOf(owner.owner)?.kind === 'unstable');
    // Node's own code and installed packages change with their version: by reference
    const installed = url.startsWith('node:') || url.includes('/node_modules/');
    if (installed || (!marked && facts !== null && isTopLevel(facts))) {
      // importable: its module and its own code, not what it reaches (mark it to follow that)
      const parsed: ParsedFunction | Error = parseFunction(source);
      const code = parsed instanceof Error ? sha(source) : parsed.code;
      const className = owner?.owner && owner.owner !== fn ? `${owner.owner.name}.` : '';
      return empty(sha(`ref:${moduleIdentity(url)}#${className}${fn.name}:${code}`));
    }
    return this.compute(fn, owner?.home, undefined);
  }
}

/**
 * A synchronous view of what V8 keeps about a function, through an in-process inspector session
 * (`connect()` answers `post()` in the same thread, before it returns): the scopes it closes over
 * with their variables, where it was defined (its script's URL), and the parts of a bound function.
 */
import { Session } from 'node:inspector';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type AnyFunction = Function;

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

/** A variable of a scope: its value, or `undefined` for a binding V8 reports as undefined (maybe uninitialised). */
export type Variable = { value: unknown } | { uninitialised: true };

export interface Scope {
  /** V8's scope kind: 'closure', 'module', 'script', 'global', 'block', 'catch', 'with', 'eval', 'local'. */
  kind: string;
  /** The wanted names this scope holds. */
  variables: Map<string, Variable>;
  /** How many variables it holds in all (V8 lists only those some closure captures). */
  size: number;
}

export interface FunctionFacts {
  /** Innermost first; the global scope is never listed (its variables are read from globalThis). */
  scopes: Scope[];
  /** The URL of the script or module that defines the function ('' when V8 does not say). */
  url: string;
  /** For a bound function: what it calls, with which `this` and arguments. */
  bound: { target: AnyFunction; self: unknown; args: unknown[] } | null;
}

const INSPECT = Symbol.for('cairn.smartCache.inspect');
const OUT = Symbol.for('cairn.smartCache.out');

export class Inspector {
  private static instance: Inspector | null | undefined;
  static failure: string | null = null;
  private groups = 0;
  /** scriptId → URL, filled from Debugger.scriptParsed while the debugger is briefly on. */
  private readonly scripts = new Map<string, string>();

  static get(): Inspector | null {
    if (Inspector.instance === undefined) {
      try {
        const session = new Session();
        session.connect();
        Inspector.instance = new Inspector(session);
      } catch (error) {
        Inspector.failure = `the inspector is not available (${(error as Error).message})`;
        Inspector.instance = null;
      }
    }
    return Inspector.instance;
  }

  private constructor(private readonly session: Session) {
    session.on('Debugger.scriptParsed', (message: { params: { scriptId: string; url: string } }) => {
      this.scripts.set(message.params.scriptId, message.params.url);
    });
  }

  private post<T>(method: string, params: object): T {
    let result: T | undefined;
    let failure: Error | null = null;
    let answered = false;
    this.session.post(method as 'Runtime.evaluate', params as never, (error, answer) => {
      answered = true;
      failure = error;
      result = answer as T;
    });
    if (!answered) throw new Error(`the inspector did not answer ${method} synchronously`);
    if (failure) throw failure;
    return result as T;
  }

  private scriptUrl(scriptId: string): string {
    let url = this.scripts.get(scriptId);
    if (url === undefined) {
      // enabling the debugger replays every script parsed so far (about 30 µs each); it stays off
      // otherwise, so the program runs as without it
      this.post('Debugger.enable', {});
      this.post('Debugger.disable', {});
      url = this.scripts.get(scriptId) ?? '';
      this.scripts.set(scriptId, url);
    }
    return url;
  }

  /**
   * What V8 keeps about `fn`, with the values of the `wanted` variables (innermost binding wins).
   * Every remote object is released before it returns.
   */
  facts(fn: AnyFunction, wanted: ReadonlySet<string>): FunctionFacts {
    const global = globalThis as Record<symbol, unknown>;
    const group = `cairn.smartCache.${this.groups++}`;
    try {
      global[INSPECT] = fn;
      const { result: target } = this.post<{ result: RemoteObject }>('Runtime.evaluate', {
        expression: 'globalThis[Symbol.for("cairn.smartCache.inspect")]',
        objectGroup: group,
        silent: true,
      });
      delete global[INSPECT];
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
      const list = (objectId: string): PropertyDescriptor[] =>
        this.post<{ result: PropertyDescriptor[]; internalProperties?: PropertyDescriptor[] }>('Runtime.getProperties', {
          objectId,
          ownProperties: true,
          objectGroup: group,
        }).result;
      const { internalProperties = [] } = this.post<{ internalProperties?: PropertyDescriptor[] }>('Runtime.getProperties', {
        objectId: target.objectId,
        ownProperties: true,
        objectGroup: group,
      });
      const internal = new Map(internalProperties.map((property) => [property.name, property.value]));
      const location = internal.get('[[FunctionLocation]]')?.value as { scriptId?: string } | undefined;
      const url = location?.scriptId === undefined ? '' : this.scriptUrl(location.scriptId);
      const targetFunction = internal.get('[[TargetFunction]]');
      if (targetFunction?.objectId) {
        const args = internal.get('[[BoundArgs]]');
        const self = internal.get('[[BoundThis]]');
        return {
          scopes: [],
          url,
          bound: {
            target: fetch(targetFunction) as AnyFunction,
            self: self ? fetch(self) : undefined,
            args: args?.objectId ? list(args.objectId).filter((item) => /^\d+$/.test(item.name)).map((item) => fetch(item.value!)) : [],
          },
        };
      }
      const scopes: Scope[] = [];
      const chain = internal.get('[[Scopes]]');
      if (chain?.objectId) {
        for (const entry of list(chain.objectId)) {
          if (!entry.value?.objectId || !/^\d+$/.test(entry.name)) continue;
          const kind = (entry.value.description ?? '').split(' ')[0]!.toLowerCase();
          // the global object is read directly, never listed (thousands of properties)
          if (kind === 'global') continue;
          const variables = new Map<string, Variable>();
          const all = list(entry.value.objectId);
          for (const variable of all) {
            if (!variable.value || !wanted.has(variable.name)) continue;
            variables.set(variable.name, variable.value.type === 'undefined' ? { uninitialised: true } : { value: fetch(variable.value) });
          }
          scopes.push({ kind, variables, size: all.length });
        }
      }
      return { scopes, url, bound: null };
    } finally {
      delete global[INSPECT];
      // without this every inspected closure stays alive
      this.post('Runtime.releaseObjectGroup', { objectGroup: group });
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

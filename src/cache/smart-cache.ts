/**
 * smartCache: persistent memoisation keyed by the function's code, the code of the unstable
 * dependencies it reaches, and its arguments (see function-digest.ts and hash-args.ts).
 */
import { createHash } from 'node:crypto';
import { debugLog } from '../debug.js';
import { UnhashableError } from '../errors.js';
import type { Key } from '../key.js';
import { functionDigest, type FunctionDigest, hashLive, loadPending } from './function-digest.js';
import { cacheKey, encodeInto, hashValue } from './hash-args.js';
import { acquireLock, type ResolvedLock, resolveLock } from './lock.js';
import type { LockOptions } from './lock-options.js';
import { type CacheLimits, clearStore, parseLimits, reduceStore, type ReduceReport } from './reduce.js';
import { type CacheWhere, type EntryOwner, type Record as DigestRecord, Store } from './store.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => any;

export interface SmartCacheOptions {
  /**
   * What the key depends on that cannot be discovered: functions are hashed by their code (marked
   * or not), other values canonically, like arguments. Read at the first call.
   * @default []
   */
  deps?: readonly unknown[];
  /** Change it to invalidate every entry of this function on purpose. @default none */
  version?: string | number;
  /** The name used in explain(), warnings and the record of last digests. @default the function's name */
  name?: string;
  /**
   * A cross-process lock per key: other processes wait for the first one instead of computing
   * too. `true` keeps lock files in `locks/` of the cache folder; `{ redis: location }` keeps the
   * locks in Redis, for processes on several machines.
   * @default false
   */
  lock?: boolean | LockOptions;
  /** Key a method call by its `this` as well (constructor name and own fields). @default true */
  hashThis?: boolean;
  /** TypedArrays, Buffers and DataViews of at least this many bytes are stored as separate parts. @default 4096 */
  minPart?: number;
  /**
   * Throw instead of warning when dependencies cannot be tracked (no inspector, a native or bound
   * function), and when a result cannot be stored.
   * @default false
   */
  strict?: boolean;
  /** Receives every failure to store or read a result (the call still returns its value). @default a process warning */
  onError?: (error: unknown) => void;
  /** fsync blobs and entries written into a cache folder. @default false: every stored entry survives a crash of the process, not of the machine */
  fsync?: boolean;
  /**
   * Bounds on the whole cache (every function in it), applied as entries are added: at most once
   * a second, least recently used entries are evicted until the cache is under them.
   * @default no limits
   */
  limits?: CacheLimits;
}

export interface CacheStats {
  /** Calls answered from the cache (or by a call in flight with the same key). */
  hits: number;
  /** Calls that ran the function. */
  misses: number;
  /** Corrupted or outdated entries that were recomputed and rewritten. */
  repaired: number;
  /** Failures to read or store an entry, reported through onError. */
  errors: number;
  /** Results returned but not stored: an argument or a captured value changed while the function ran. */
  unstored: number;
}

export interface Explanation {
  /** True when the call would be answered from the cache. */
  hit: boolean;
  key: Key;
  /** Why it would miss (empty for a hit). */
  reasons: string[];
  /** One line for people. */
  message: string;
}

/**
 * What a cached function reports to listeners added with `on` (see docs/smart-cache.md, Events).
 * Each event matches a counter of `stats`.
 */
export interface CacheEvents {
  /** A call answered without running the function (`stats.hits`). */
  hit: {
    name: string;
    key: Key;
    /** `entry`: read from the cache; `running`: joined a call in flight with the same key; `lock`: stored by another process while this one waited for the lock. */
    from: 'entry' | 'running' | 'lock';
  };
  /** A call that runs the function (`stats.misses`). */
  miss: {
    name: string;
    key: Key;
    /** A corrupted or outdated entry is there: the result will replace it. */
    replaces: boolean;
  };
  /** The result of a miss, stored. */
  store: {
    name: string;
    key: Key;
    /** It replaced a corrupted or outdated entry (`stats.repaired`). */
    repaired: boolean;
    /** How long the function ran, in milliseconds. */
    ms: number;
  };
  /** The result of a miss, returned but not stored: what the function read changed while it ran (`stats.unstored`). */
  unstored: {
    name: string;
    key: Key;
    /** What changed: `arguments` (or `this`) or `captured values` (data the function reads from outside). */
    changed: 'arguments' | 'captured values';
  };
  /** A failure to read or store an entry, or to take a lock (`stats.errors`); also given to onError. */
  error: {
    name: string;
    /** The call's key; null for a failure of background eviction. */
    key: Key | null;
    error: unknown;
  };
}

export type CacheEventName = keyof CacheEvents;

export interface CachedMethods<A extends unknown[]> {
  /** Says whether this call would hit and, if not, why. Runs nothing. */
  explain(...args: A): Promise<Explanation>;
  /** The key of this call. */
  key(...args: A): Key;
  /** Removes every stored entry of this function (by its name), whatever code stored it. */
  clear(): Promise<ReduceReport>;
  readonly stats: CacheStats;
  /**
   * Calls `listener` on every `event` of this function (a method: of every instance). Listeners
   * run synchronously in the call; one that throws is reported as a process warning, never fails
   * the call. With no listener, an event costs one property check.
   */
  on<K extends CacheEventName>(event: K, listener: (event: CacheEvents[K]) => void): this;
  /** Removes a listener added with `on`. */
  off<K extends CacheEventName>(event: K, listener: (event: CacheEvents[K]) => void): this;
}

/** A cached function: same arguments, always a Promise. */
export type Cached<F extends AnyFn> = ((...args: Parameters<F>) => Promise<Awaited<ReturnType<F>>>) & CachedMethods<Parameters<F>>;

export interface SmartCacheDecorator {
  /** Wraps a function. */
  <F extends AnyFn>(fn: F): Cached<F>;
  /**
   * A standard (TC39) method decorator: the method must return a Promise (be async). It keeps its
   * declared type: reach `explain`, `stats` and the rest with `smartCache.of(instance.method)`.
   */
  <This, A extends unknown[], R>(
    method: (this: This, ...args: A) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
  ): (this: This, ...args: A) => Promise<Awaited<R>>;
}

const EVENT_NAMES: readonly CacheEventName[] = ['hit', 'miss', 'store', 'unstored', 'error'];

type Listeners = { [K in CacheEventName]: ((event: CacheEvents[K]) => void)[] | undefined };

/** Bump when the key derivation changes: old entries are then simply not found. */
const KEY_FORMAT = 'cairn.smartCache.key/3';
/** Limits are applied at most this often (ms): eviction lists the whole index. */
const REDUCE_EVERY = 1000;
/** hit / miss / skip of every call, with `DEBUG=cairn:cache` (see debug.ts). */
const log = debugLog('cache');
const OWN_CODE = '(code)';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

interface Digests {
  /** sha256 of the function digest and the options digest, but for live values. */
  full: string;
  /** The digests whose live values (captured data) are read again at every call. */
  withLive: FunctionDigest[];
  record: DigestRecord;
}

/** What a call is keyed by: the function as it is now, and the arguments. */
interface CallKey {
  key: Key;
  /** sha256 of the function's digest with its live values at this call. */
  fn: string;
  /** sha256 of the canonical encoding of `this` (methods) and the arguments. */
  args: string;
  digests: Digests;
  /** What the index keeps beside the entry, so that explain() finds the entry of older code. */
  owner: EntryOwner;
}

class Runner {
  readonly stats: CacheStats = { hits: 0, misses: 0, repaired: 0, errors: 0, unstored: 0 };
  /** Per function, or per class of `this` for a method. */
  private readonly digests = new WeakMap<object, Digests>();
  private recordWritten: string | null = null;
  private warned = false;
  private readonly lock: ResolvedLock | null;
  /**
   * Per event, its listeners, or undefined while nobody listens: an event then costs one property
   * check. Every name is there from the start, so that the object keeps one shape.
   */
  readonly listeners: Listeners = { hit: undefined, miss: undefined, store: undefined, unstored: undefined, error: undefined };

  constructor(
    private readonly store: Store,
    private readonly fn: AnyFn,
    private readonly options: SmartCacheOptions,
    private readonly method: boolean,
    readonly name: string,
  ) {
    if (options.limits) parseLimits(options.limits);
    this.lock = resolveLock(options.lock, store.folder);
  }

  /**
   * The digests of the function for a call with `self`; a Promise when code it imports with
   * `import('…')` must be loaded first. A method's digest follows the class of the actual `this`.
   */
  private digestsFor(self: unknown): Digests | Promise<Digests> {
    const owner = this.method && typeof self === 'object' && self !== null ? self : undefined;
    const memoKey: object = owner === undefined ? this : (Object.getPrototypeOf(owner) as object | null) ?? owner;
    const known = this.digests.get(memoKey);
    if (known) return known;
    const own = functionDigest(this.fn, owner);
    const entries: [string, string][] = [[OWN_CODE, own.code], ...own.deps];
    const warnings = [...own.warnings];
    const parts: string[] = [own.digest];
    const withLive: FunctionDigest[] = own.live.length > 0 ? [own] : [];
    const pending = [own];
    let complete = own.complete;
    if (this.options.version !== undefined) {
      const version = `${typeof this.options.version}:${this.options.version}`;
      parts.push(`version=${version}`);
      entries.push(['version', sha(version)]);
    }
    (this.options.deps ?? []).forEach((dep, index) => {
      let digest: string;
      if (typeof dep === 'function') {
        const sub: FunctionDigest = functionDigest(dep);
        warnings.push(...sub.warnings);
        complete &&= sub.complete;
        digest = sub.digest;
        if (sub.live.length > 0) withLive.push(sub);
        pending.push(sub);
        for (const [path, value] of sub.deps) entries.push([`deps[${index}] > ${path}`, value]);
      } else {
        digest = hashValue(dep, `options.deps[${index}]`);
      }
      parts.push(`deps[${index}]=${digest}`);
      entries.push([`deps[${index}]`, digest]);
    });
    if (pending.some((digest) => digest.pending.length > 0)) {
      // load what `import('…')` names, then compute again with it
      return Promise.all(pending.map(loadPending)).then(() => this.digestsFor(self));
    }
    if (warnings.length > 0 && !this.warned) {
      this.warned = true;
      const message = `smartCache(${this.name}): ${[...new Set(warnings)].join('; ')}`;
      if (this.options.strict) throw new UnhashableError(message, 'function');
      process.emitWarning(message, { code: 'CAIRN_SMARTCACHE_UNTRACKED' });
    }
    const full = sha(parts.join('\n'));
    const digests: Digests = { full, withLive, record: { name: this.name, digest: full, entries } };
    // an unresolved dependency (a binding not initialised yet) is looked up again next call
    if (complete) this.digests.set(memoKey, digests);
    return digests;
  }

  /** The function part of a call's key: its digest, and its live values as they are now. */
  private functionPart(digests: Digests): { fn: string; live: [string, string][] } {
    if (digests.withLive.length === 0) return { fn: digests.full, live: [] };
    const hash = createHash('sha256').update(digests.full);
    const live: [string, string][] = [];
    for (const digest of digests.withLive) live.push(...hashLive(digest, hash));
    return { fn: hash.digest('hex'), live };
  }

  private argsPart(self: unknown, args: unknown[]): string {
    const hash = createHash('sha256');
    encodeInto(hash, (encoder) => {
      if (this.method && this.options.hashThis !== false) encoder.write(self, 'this');
      encoder.write(args, 'args');
    });
    return hash.digest('hex');
  }

  private callKey(digests: Digests, self: unknown, args: unknown[]): CallKey {
    const { fn } = this.functionPart(digests);
    const argsDigest = this.argsPart(self, args);
    const key = createHash('sha256').update(KEY_FORMAT).update(fn).update(argsDigest).digest('hex');
    return { key, fn, args: argsDigest, digests, owner: { fn: this.name, digest: fn, args: argsDigest } };
  }

  clear(): Promise<ReduceReport> {
    return clearStore(this.store, this.name);
  }

  key(self: unknown, args: unknown[]): Key {
    const digests = this.digestsFor(self);
    if (digests instanceof Promise) {
      digests.catch(() => undefined);
      throw new UnhashableError(`smartCache(${this.name}): its code imports modules with import() that are not loaded yet; call it or await explain() once before key()`, 'function');
    }
    return this.callKey(digests, self, args).key;
  }

  call(self: unknown, args: unknown[]): Promise<unknown> {
    let call: CallKey;
    try {
      const digests = this.digestsFor(self);
      if (digests instanceof Promise) return digests.then(() => this.call(self, args));
      call = this.callKey(digests, self, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const key = call.key;
    const store = this.store;
    const running = store.inflight.get(key);
    if (running) {
      this.stats.hits++;
      if (log.enabled) log(`hit ${this.name} ${key} (running)`);
      if (this.listeners.hit !== undefined) this.emit('hit', { name: this.name, key, from: 'running' });
      return running;
    }
    // a small result in the folder's log is read without a trip through promises; anything else
    // (a miss, parts, a bad entry, another index) takes the full path, which says what happened
    const quick = store.readQuick(key);
    if (typeof quick === 'object') {
      this.stats.hits++;
      if (log.enabled) log(`hit ${this.name} ${key}`);
      if (this.listeners.hit !== undefined) this.emit('hit', { name: this.name, key, from: 'entry' });
      return Promise.resolve(quick.value);
    }
    const promise = this.run(self, args, call, quick === 'missing');
    store.inflight.set(key, promise);
    const done = () => {
      store.inflight.delete(key);
    };
    promise.then(done, done);
    return promise;
  }

  /** Adds a listener (see CachedMethods.on). */
  on(event: CacheEventName, listener: (event: never) => void): void {
    if (!EVENT_NAMES.includes(event)) throw new TypeError(`smartCache(${this.name}): no event named ${String(event)} (the events: ${EVENT_NAMES.join(', ')})`);
    if (typeof listener !== 'function') throw new TypeError(`smartCache(${this.name}): the listener of '${event}' must be a function`);
    ((this.listeners as Record<string, unknown[]>)[event] ??= []).push(listener);
  }

  off(event: CacheEventName, listener: (event: never) => void): void {
    const list = (this.listeners as Record<string, unknown[] | undefined>)[event];
    const index = list?.lastIndexOf(listener) ?? -1;
    if (index < 0) return;
    list!.splice(index, 1);
    // undefined again once the last one is gone: the calls are back to one property check
    if (list!.length === 0) (this.listeners as Record<string, unknown>)[event] = undefined;
  }

  /** Calls the listeners of `kind`; a listener that throws is a warning, not a failure of the call. */
  private emit<K extends CacheEventName>(kind: K, event: CacheEvents[K]): void {
    const list = this.listeners[kind];
    if (list === undefined) return;
    for (const listener of [...list]) {
      try {
        listener(event);
      } catch (error) {
        process.emitWarning(`smartCache(${this.name}): a '${kind}' listener threw: ${(error as Error)?.message ?? String(error)}`, { code: 'CAIRN_SMARTCACHE_LISTENER' });
      }
    }
  }

  private report(error: unknown, key: Key | null): void {
    this.stats.errors++;
    if (this.listeners.error !== undefined) this.emit('error', { name: this.name, key, error });
    if (this.options.strict) throw error;
    if (this.options.onError) this.options.onError(error);
    else process.emitWarning(`smartCache(${this.name}): ${(error as Error).message}`, { code: 'CAIRN_SMARTCACHE_STORE' });
  }

  private async lookup(key: Key): Promise<{ hit: true; value: unknown } | { hit: false; replace: boolean }> {
    let read;
    try {
      read = await this.store.read(key);
    } catch (error) {
      this.report(error, key);
      return { hit: false, replace: false };
    }
    if (read.status === 'hit') return { hit: true, value: read.value };
    return { hit: false, replace: read.status !== 'missing' };
  }

  private async run(self: unknown, args: unknown[], call: CallKey, missing: boolean): Promise<unknown> {
    const key = call.key;
    let found: Awaited<ReturnType<Runner['lookup']>> = missing ? { hit: false, replace: false } : await this.lookup(key);
    if (found.hit) {
      this.stats.hits++;
      if (log.enabled) log(`hit ${this.name} ${key}`);
      if (this.listeners.hit !== undefined) this.emit('hit', { name: this.name, key, from: 'entry' });
      return found.value;
    }
    let release: (() => Promise<void>) | null = null;
    if (this.lock) {
      try {
        release = await acquireLock(this.lock, key, async () => (await this.store.read(key).catch(() => null))?.status === 'hit');
      } catch (error) {
        // a lock that cannot be taken (its server is down) is reported; the call computes without it
        this.report(error, key);
      }
      // whoever held the lock may have stored the result meanwhile
      found = await this.lookup(key);
      if (found.hit) {
        await release?.();
        this.stats.hits++;
        if (log.enabled) log(`hit ${this.name} ${key} (stored while waiting for the lock)`);
        if (this.listeners.hit !== undefined) this.emit('hit', { name: this.name, key, from: 'lock' });
        return found.value;
      }
    }
    try {
      this.stats.misses++;
      if (log.enabled) log(`miss ${this.name} ${key}`);
      if (this.listeners.miss !== undefined) this.emit('miss', { name: this.name, key, replaces: found.replace });
      const started = performance.now();
      const value: unknown = await this.fn.apply(self, args);
      const ms = performance.now() - started;
      // the key must describe what the function saw: an argument or a captured value changed
      // while it ran (by the caller or by the function itself) leaves the result unstored
      const after = this.callKey(call.digests, self, args);
      if (after.key !== key) {
        this.stats.unstored++;
        if (log.enabled) log(`skip ${this.name} ${key}: not stored, the inputs changed while it ran`);
        const what = after.args !== call.args ? 'its arguments' : 'values it reads';
        if (this.listeners.unstored !== undefined) this.emit('unstored', { name: this.name, key, changed: after.args !== call.args ? 'arguments' : 'captured values' });
        process.emitWarning(`smartCache(${this.name}): ${what} changed while it ran; the result is returned but not stored`, { code: 'CAIRN_SMARTCACHE_MUTATED' });
        return value;
      }
      try {
        const quick = this.store.writeQuick(key, value, this.options.minPart ?? 4096, call.owner);
        if (quick !== true && !(await this.store.write(key, value, this.options.minPart ?? 4096, call.owner, quick))) {
          this.report(new UnhashableError(`the result of ${this.name} was not stored: no location accepted it`, 'result'), key);
        } else {
          if (found.replace) this.stats.repaired++;
          if (this.listeners.store !== undefined) this.emit('store', { name: this.name, key, repaired: found.replace, ms });
          this.applyLimits();
        }
        if (this.recordWritten !== call.fn) await this.remember(call);
      } catch (error) {
        this.report(error, key);
      }
      return value;
    } finally {
      await release?.();
    }
  }

  /** Evicts in the background, at most once every REDUCE_EVERY ms per cache; close() waits for it. */
  private applyLimits(): void {
    const limits = this.options.limits;
    const store = this.store;
    if (!limits || Date.now() - store.lastReduce < REDUCE_EVERY) return;
    store.lastReduce = Date.now();
    const work = reduceStore(store, limits).then(
      () => undefined,
      (error: unknown) => {
        try {
          this.report(error, null);
        } catch {
          // strict: there is no call to fail here, the error went to stats.errors
        }
      },
    );
    store.background.add(work);
    void work.finally(() => store.background.delete(work));
  }

  /** The digests this function had at this call (live values included), for explain(). */
  private record(call: CallKey): DigestRecord {
    const { live } = this.functionPart(call.digests);
    const record = call.digests.record;
    return live.length === 0 ? record : { ...record, digest: call.fn, entries: [...record.entries, ...live] };
  }

  /** Keeps the digests this function has when it stores something (one record per digest), for explain(). */
  private async remember(call: CallKey): Promise<void> {
    await this.store.writeRecord(this.record(call));
    this.recordWritten = call.fn;
  }

  async explain(self: unknown, args: unknown[]): Promise<Explanation> {
    const call = this.callKey(await this.digestsFor(self), self, args);
    const key = call.key;
    const current = this.record(call);
    const result = (hit: boolean, reasons: string[]): Explanation => ({
      hit,
      key,
      reasons,
      message: hit ? `${this.name}: hit (${key.slice(0, 12)})` : `${this.name}: miss, ${reasons.join('; ')}`,
    });
    if (this.store.inflight.has(key)) return result(true, []);
    const read = await this.store.read(key);
    if (read.status === 'hit') return result(true, []);
    if (read.status !== 'missing') return result(false, [`${read.reason}: it will be recomputed and rewritten`]);
    // the digest under which these arguments were stored last, by older code
    const older = (await this.store.index.digestsFor(this.name, call.args)).find((digest) => digest !== current.digest);
    if (older === undefined) {
      if ((await this.store.readRecord(this.name, current.digest)) !== null) return result(false, ['new arguments: no entry for them with the current code']);
      if (await this.store.hasEntries(this.name)) return result(false, [`new arguments: no entry for them with any code of ${this.name}`]);
      return result(false, [`nothing is recorded for ${this.name} yet: first call, or stored under another name`]);
    }
    const record = await this.store.readRecord(this.name, older);
    if (record === null) return result(false, ['the code or its dependencies changed since these arguments were stored']);
    const before = new Map(record.entries);
    const now = new Map(current.entries);
    const reasons: string[] = [];
    for (const [path, digest] of now) {
      const old = before.get(path);
      const what = path === OWN_CODE ? `the code of ${this.name}` : path === 'version' ? 'the version option' : `the dependency ${path}`;
      if (old === undefined) reasons.push(`${what} is new`);
      else if (old !== digest) reasons.push(`${what} changed`);
    }
    for (const path of before.keys()) if (!now.has(path)) reasons.push(`the dependency ${path} is gone`);
    if (reasons.length === 0) reasons.push('the code or its dependencies changed');
    return result(false, reasons);
  }
}

/** The runner behind every function smartCache made (wrapped functions, methods and their per-instance copies), for smartCache.of. */
const runners = new WeakMap<AnyFn, Runner>();

function attach<F extends AnyFn>(call: F, runner: Runner, self: () => unknown): F & CachedMethods<Parameters<F>> {
  const cached: F & CachedMethods<Parameters<F>> = Object.assign(call, {
    explain: (...args: unknown[]) => runner.explain(self(), args),
    key: (...args: unknown[]) => runner.key(self(), args),
    clear: () => runner.clear(),
    stats: runner.stats,
    on: (event: CacheEventName, listener: (event: never) => void) => {
      runner.on(event, listener);
      return cached;
    },
    off: (event: CacheEventName, listener: (event: never) => void) => {
      runner.off(event, listener);
      return cached;
    },
  }) as F & CachedMethods<Parameters<F>>;
  runners.set(call, runner);
  return cached;
}

/**
 * `method` as the cached function it is, typed: a decorated method keeps its declared type (a
 * TC39 decorator cannot change it), so `explain`, `key`, `clear`, `stats`, `on` and `off` are
 * reached through this. `method` is `instance.method` (each instance has its own copy, which knows
 * its `this`); a private method, which has no such copy, is given with its instance:
 * `smartCache.of(this.#load, this)`. A plain wrapped function is returned as it is.
 */
function of<F extends AnyFn>(method: F, self?: object): Cached<F> {
  const runner = typeof method === 'function' ? runners.get(method) : undefined;
  if (runner === undefined) {
    throw new TypeError(`smartCache.of: ${typeof method === 'function' ? `${method.name || 'this function'} is not a function or method cached by smartCache` : 'expected a cached function or method'} (for a method, pass instance.method itself, not a bound or wrapped copy)`);
  }
  if (self === undefined) return method as unknown as Cached<F>;
  return attach((...args: unknown[]) => runner.call(self, args), runner, () => self) as unknown as Cached<F>;
}

/**
 * Persistent memoisation. `where` is a folder (an index and a HashKeyStorage are made inside it),
 * a HashKeyStorage, or `{ index, storage }`. Use it as `smartCache(where)(fn)` or as a method
 * decorator `@smartCache(where)`.
 */
export function smartCache(where: CacheWhere, options: SmartCacheOptions = {}): SmartCacheDecorator {
  const store = Store.of(where, options.fsync ?? false);
  function decorate(fn: AnyFn, context?: ClassMethodDecoratorContext): unknown {
    if (typeof fn !== 'function') throw new TypeError('smartCache wraps a function');
    if (context === undefined) {
      const runner = new Runner(store, fn, options, false, options.name ?? (fn.name || 'anonymous'));
      return attach((...args: unknown[]) => runner.call(undefined, args), runner, () => undefined);
    }
    if (context.kind !== 'method') throw new TypeError(`@smartCache decorates methods, not a ${context.kind}`);
    const name = options.name ?? String(context.name);
    const runner = new Runner(store, fn, options, true, name);
    const replacement = function (this: unknown, ...args: unknown[]) {
      return runner.call(this, args);
    };
    if (!context.private) {
      // each instance gets its own bound copy, so `instance.method.explain(...)` knows its `this`
      context.addInitializer(function (this: unknown) {
        const self: unknown = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the bound copy needs its instance
        const bound = attach((...args: unknown[]) => runner.call(self, args), runner, () => self);
        Object.defineProperty(self as object, context.name, { value: bound, configurable: true, writable: true, enumerable: false });
      });
    }
    return attach(replacement, runner, () => undefined);
  }
  return decorate as SmartCacheDecorator;
}

/** The symbol of the method an object can define to choose its own key: `[smartCache.key]() { return this.id }`. */
smartCache.key = cacheKey;
smartCache.of = of;

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
import { acquireLock, type LockOptions, type ResolvedLock, resolveLock } from './lock.js';
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

export interface CachedMethods<A extends unknown[]> {
  /** Says whether this call would hit and, if not, why. Runs nothing. */
  explain(...args: A): Promise<Explanation>;
  /** The key of this call. */
  key(...args: A): Key;
  /** Removes every stored entry of this function (by its name), whatever code stored it. */
  clear(): Promise<ReduceReport>;
  readonly stats: CacheStats;
}

/** A cached function: same arguments, always a Promise. */
export type Cached<F extends AnyFn> = ((...args: Parameters<F>) => Promise<Awaited<ReturnType<F>>>) & CachedMethods<Parameters<F>>;

export interface SmartCacheDecorator {
  /** Wraps a function. */
  <F extends AnyFn>(fn: F): Cached<F>;
  /** A standard (TC39) method decorator: the method must return a Promise (be async). */
  <This, A extends unknown[], R>(
    method: (this: This, ...args: A) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
  ): (this: This, ...args: A) => Promise<Awaited<R>>;
}

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
      return running;
    }
    // a small result in the folder's log is read without a trip through promises; anything else
    // (a miss, parts, a bad entry, another index) takes the full path, which says what happened
    const quick = store.readQuick(key);
    if (typeof quick === 'object') {
      this.stats.hits++;
      if (log.enabled) log(`hit ${this.name} ${key}`);
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

  private report(error: unknown): void {
    this.stats.errors++;
    if (this.options.strict) throw error;
    if (this.options.onError) this.options.onError(error);
    else process.emitWarning(`smartCache(${this.name}): ${(error as Error).message}`, { code: 'CAIRN_SMARTCACHE_STORE' });
  }

  private async lookup(key: Key): Promise<{ hit: true; value: unknown } | { hit: false; replace: boolean }> {
    let read;
    try {
      read = await this.store.read(key);
    } catch (error) {
      this.report(error);
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
      return found.value;
    }
    let release: (() => Promise<void>) | null = null;
    if (this.lock) {
      try {
        release = await acquireLock(this.lock, key, async () => (await this.store.read(key).catch(() => null))?.status === 'hit');
      } catch (error) {
        // a lock that cannot be taken (its server is down) is reported; the call computes without it
        this.report(error);
      }
      // whoever held the lock may have stored the result meanwhile
      found = await this.lookup(key);
      if (found.hit) {
        await release?.();
        this.stats.hits++;
        if (log.enabled) log(`hit ${this.name} ${key} (stored while waiting for the lock)`);
        return found.value;
      }
    }
    try {
      this.stats.misses++;
      if (log.enabled) log(`miss ${this.name} ${key}`);
      const value: unknown = await this.fn.apply(self, args);
      // the key must describe what the function saw: an argument or a captured value changed
      // while it ran (by the caller or by the function itself) leaves the result unstored
      const after = this.callKey(call.digests, self, args);
      if (after.key !== key) {
        this.stats.unstored++;
        if (log.enabled) log(`skip ${this.name} ${key}: not stored, the inputs changed while it ran`);
        const what = after.args !== call.args ? 'its arguments' : 'values it reads';
        process.emitWarning(`smartCache(${this.name}): ${what} changed while it ran; the result is returned but not stored`, { code: 'CAIRN_SMARTCACHE_MUTATED' });
        return value;
      }
      try {
        const quick = this.store.writeQuick(key, value, this.options.minPart ?? 4096, call.owner);
        if (quick !== true && !(await this.store.write(key, value, this.options.minPart ?? 4096, call.owner, quick))) {
          this.report(new UnhashableError(`the result of ${this.name} was not stored: no location accepted it`, 'result'));
        } else {
          if (found.replace) this.stats.repaired++;
          this.applyLimits();
        }
        if (this.recordWritten !== call.fn) await this.remember(call);
      } catch (error) {
        this.report(error);
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
          this.report(error);
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

function attach<F extends AnyFn>(call: F, runner: Runner, self: () => unknown): F & CachedMethods<Parameters<F>> {
  return Object.assign(call, {
    explain: (...args: unknown[]) => runner.explain(self(), args),
    key: (...args: unknown[]) => runner.key(self(), args),
    clear: () => runner.clear(),
    stats: runner.stats,
  }) as F & CachedMethods<Parameters<F>>;
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

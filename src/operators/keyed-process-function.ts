import { WeirError, preview } from '../errors.js';
import { toMillis, type Duration } from '../time/duration.js';

/**
 * Per-key single value. `get()` returns the declared default when nothing was set (or when the value
 * expired, with a TTL).
 */
export interface ValueState<V> {
  get(): V;
  set(value: V): void;
  clear(): void;
}
/** Per-key map. With a TTL each entry expires on its own (as Flink's MapState). */
export interface MapState<MK, MV> {
  get(key: MK): MV | undefined;
  set(key: MK, value: MV): void;
  has(key: MK): boolean;
  delete(key: MK): void;
  entries(): IterableIterator<[MK, MV]>;
  readonly size: number;
  clear(): void;
}
/** Per-key list. With a TTL each element expires on its own (as Flink's ListState). */
export interface ListState<V> {
  get(): readonly V[];
  add(value: V): void;
  update(values: V[]): void;
  clear(): void;
}

/**
 * Options of a state declaration: a time-to-live after which state is treated as gone and cleaned up.
 *
 * - `ttl`: how long an entry lives after its last write (or read, with `update: 'onReadAndWrite'`).
 * - `timeDomain`: `'processing'` (default, as Flink): the job's clock (`ctx.timers.now()`); an entry
 *   written at `now` expires once processing time reaches `now + ttl`. `'event'`: the watermark; an entry
 *   written while handling an element with timestamp `t` (in `onTimer`: `ctx.timestamp`) expires once the
 *   operator's watermark reaches `t + ttl`.
 * - `update`: `'onWrite'` (default) restarts the TTL on `set` / `add` / `update`; `'onReadAndWrite'`
 *   also on reads (`get`, `has`, `entries`; not `size`), so an entry lives as long as it is used. A read
 *   never shortens the life (in event time, a read by an older element keeps the later expiry); a write
 *   sets it (a late element writes an entry that expires early, or is already expired).
 *
 * An expired entry is never returned, even before cleanup removed it. Cleanup is incremental (an
 * expiry queue driven by the watermark, processing time and batches; no scan of all keys), and the
 * next checkpoint records the removals. A value expires as a whole; a map per entry; a list per element.
 *
 * @example
 * state: {
 *   lastSeen: state.value(0, { ttl: '1h' }),                                  // processing time, refreshed on write
 *   seenIds: state.map<string, true>({ ttl: '10m', timeDomain: 'event' }),   // dedup window in event time
 *   recent: state.list<Txn>({ ttl: '5m', update: 'onReadAndWrite' }),        // each element expires alone
 * }
 */
export interface StateOptions {
  readonly ttl?: Duration;
  readonly timeDomain?: 'event' | 'processing';
  readonly update?: 'onWrite' | 'onReadAndWrite';
}

/** A validated TTL, as the operator uses it. */
export interface StateTtl {
  /** Milliseconds, > 0. */
  readonly ms: number;
  readonly timeDomain: 'event' | 'processing';
  readonly update: 'onWrite' | 'onReadAndWrite';
}

/** Declares a piece of per-key state (see {@link state}). */
export type StateDecl =
  | { readonly kind: 'value'; readonly defaultValue: unknown; readonly ttl?: StateTtl }
  | { readonly kind: 'map'; readonly ttl?: StateTtl }
  | { readonly kind: 'list'; readonly ttl?: StateTtl };
/** Declares a per-key value with a default (phantom fields carry the types). @example state.value(0) */
export interface ValueDecl<V> { readonly kind: 'value'; readonly defaultValue: V; readonly ttl?: StateTtl; readonly __v?: V }
/** Declares a per-key map. @example state.map<string, number>() */
export interface MapDecl<MK, MV> { readonly kind: 'map'; readonly ttl?: StateTtl; readonly __k?: MK; readonly __v?: MV }
/** Declares a per-key list. @example state.list<Txn>() */
export interface ListDecl<V> { readonly kind: 'list'; readonly ttl?: StateTtl; readonly __v?: V }

/** The `state` block of a process function: name → declaration. */
export type StateSpec = Record<string, ValueDecl<any> | MapDecl<any, any> | ListDecl<any>>;

/** The handles a process function gets for its `state` block, scoped to the current key. */
export type StateHandles<S extends StateSpec> = {
  readonly [N in keyof S]: S[N] extends ValueDecl<infer V>
    ? ValueState<V>
    : S[N] extends MapDecl<infer MK, infer MV>
      ? MapState<MK, MV>
      : S[N] extends ListDecl<infer V>
        ? ListState<V>
        : never;
};

/** Checks the options once, when the state is declared: a bad TTL fails the plan, not a record. */
function resolveTtl(options: StateOptions | undefined, what: string): StateTtl | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `${what}: options must be an object like { ttl: '1h' } (got ${preview(options, 40)})`);
  }
  const { ttl, timeDomain = 'processing', update = 'onWrite' } = options;
  if (ttl === undefined) {
    if (options.timeDomain !== undefined || options.update !== undefined) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `${what}: timeDomain and update configure a TTL; add ttl (e.g. { ttl: '1h' })`);
    }
    return undefined;
  }
  const ms = toMillis(ttl, `${what} ttl`);
  if (ms <= 0) throw new WeirError('WEIR_INVALID_ARGUMENT', `${what}: ttl must be more than 0 (got ${preview(ttl, 20)})`);
  if (timeDomain !== 'event' && timeDomain !== 'processing') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `${what}: timeDomain must be 'event' or 'processing' (got ${preview(timeDomain, 20)})`);
  }
  if (update !== 'onWrite' && update !== 'onReadAndWrite') {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `${what}: update must be 'onWrite' or 'onReadAndWrite' (got ${preview(update, 20)})`);
  }
  return Object.freeze({ ms, timeDomain, update });
}

/**
 * Declarations of per-key state for `keyBy(...).process(...)`. Each takes optional
 * {@link StateOptions} (a TTL).
 * @example state: { total: state.value(0), seen: state.map<string, number>({ ttl: '1h' }), recent: state.list<Txn>() }
 */
export const state = {
  /** @example state.value(0) · state.value(0, { ttl: '30m', timeDomain: 'event' }) */
  value<V>(defaultValue: V, options?: StateOptions): ValueDecl<V> {
    const ttl = resolveTtl(options, 'state.value');
    return Object.freeze(ttl === undefined ? { kind: 'value', defaultValue } : { kind: 'value', defaultValue, ttl });
  },
  /** @example state.map<string, number>() · state.map<string, true>({ ttl: '10m' }) (per entry) */
  map<MK, MV>(options?: StateOptions): MapDecl<MK, MV> {
    const ttl = resolveTtl(options, 'state.map');
    return Object.freeze(ttl === undefined ? { kind: 'map' } : { kind: 'map', ttl });
  },
  /** @example state.list<Txn>() · state.list<Txn>({ ttl: '5m' }) (per element) */
  list<V>(options?: StateOptions): ListDecl<V> {
    const ttl = resolveTtl(options, 'state.list');
    return Object.freeze(ttl === undefined ? { kind: 'list' } : { kind: 'list', ttl });
  },
};

/** Timers of the current key. Registering the same time twice makes one timer. */
export interface TimerService {
  /** Call `onTimer` when the watermark reaches `time`. */
  eventTime(time: number): void;
  /** Call `onTimer` when processing time reaches `time`. */
  processingTime(time: number): void;
  deleteEventTime(time: number): void;
  deleteProcessingTime(time: number): void;
  /** Current processing time (from the job's clock). */
  now(): number;
}

/** What `processElement` and `onTimer` see: the key, time, state and timers. Reused: don't keep it. */
export interface KeyedContext<K, S extends StateSpec> {
  readonly key: K;
  /** Event time of the element, or the time of the timer that fired. */
  readonly timestamp: number;
  /** The operator's current watermark. */
  readonly watermark: number;
  /** In `onTimer`: which clock fired it. */
  readonly timeDomain: 'event' | 'processing' | undefined;
  readonly state: StateHandles<S>;
  readonly timers: TimerService;
}

/** Emits outputs beyond the one a function may return. */
export interface Collector<O> {
  /** Emit `value`; its timestamp defaults to the element's (or the event-time timer's). */
  emit(value: O, timestamp?: number): void;
}

/**
 * A keyed process function (Flink's KeyedProcessFunction): per-key state, event- and processing-time
 * timers. Return a value to emit it (the output type is inferred from it), or call `out.emit` for
 * several: then annotate the collector, `processElement(e, ctx, out: Collector<Alert>)`, and the output
 * type comes from it (`.process<Alert>(...)` works too, but only without a `state` block).
 *
 * @example
 * .keyBy(e => e.card)
 * .process({
 *   state: { total: state.value(0) },
 *   processElement(e, ctx) {
 *     const total = ctx.state.total.get() + e.amount;
 *     ctx.state.total.set(total);
 *     if (total > 1000) return { card: ctx.key, total };
 *   },
 * })
 */
export interface KeyedProcessFunction<K, T, O, S extends StateSpec = {}> {
  readonly state?: S;
  processElement(value: T, ctx: KeyedContext<K, S>, out: Collector<O>): O | undefined | void;
  onTimer?(timestamp: number, ctx: KeyedContext<K, S>, out: Collector<O>): O | undefined | void;
}

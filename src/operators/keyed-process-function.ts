/** Per-key single value. `get()` returns the declared default when nothing was set. */
export interface ValueState<V> {
  get(): V;
  set(value: V): void;
  clear(): void;
}
/** Per-key map. */
export interface MapState<MK, MV> {
  get(key: MK): MV | undefined;
  set(key: MK, value: MV): void;
  has(key: MK): boolean;
  delete(key: MK): void;
  entries(): IterableIterator<[MK, MV]>;
  readonly size: number;
  clear(): void;
}
/** Per-key list. */
export interface ListState<V> {
  get(): readonly V[];
  add(value: V): void;
  update(values: V[]): void;
  clear(): void;
}

/** Declares a piece of per-key state (see {@link state}). */
export type StateDecl =
  | { readonly kind: 'value'; readonly defaultValue: unknown }
  | { readonly kind: 'map' }
  | { readonly kind: 'list' };
/** Declares a per-key value with a default (phantom fields carry the types). @example state.value(0) */
export interface ValueDecl<V> { readonly kind: 'value'; readonly defaultValue: V; readonly __v?: V }
/** Declares a per-key map. @example state.map<string, number>() */
export interface MapDecl<MK, MV> { readonly kind: 'map'; readonly __k?: MK; readonly __v?: MV }
/** Declares a per-key list. @example state.list<Txn>() */
export interface ListDecl<V> { readonly kind: 'list'; readonly __v?: V }

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

/**
 * Declarations of per-key state for `keyBy(...).process(...)`.
 * @example state: { total: state.value(0), seen: state.map<string, number>(), recent: state.list<Txn>() }
 */
export const state = {
  value<V>(defaultValue: V): ValueDecl<V> {
    return Object.freeze({ kind: 'value', defaultValue });
  },
  map<MK, MV>(): MapDecl<MK, MV> {
    return Object.freeze({ kind: 'map' });
  },
  list<V>(): ListDecl<V> {
    return Object.freeze({ kind: 'list' });
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

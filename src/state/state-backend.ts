/**
 * Keyed state as operators see it: tables of `(namespace, key) → value`, held in memory as a
 * write-back cache. A namespace is a window slice start, a session, or a state name; keys are the
 * `keyBy` keys. Operators work on a namespace's map directly (one lookup per batch, not per record);
 * the next issue backs the tables with LevelDB/RocksDB by flushing dirty entries once per checkpoint
 * and prefetching spilled keys per batch (getMany), which is why the interface is batch-shaped.
 */
export interface StateTable<NS, K, V> {
  /** The map of one namespace, created on demand: the hot path reads and writes it directly. */
  namespace(ns: NS): Map<K, V>;
  /** The map of one namespace if it has any entries. */
  peek(ns: NS): Map<K, V> | undefined;
  /** Drop a whole namespace (a fired window, an expired slice). */
  drop(ns: NS): void;
  /** Namespaces with state. */
  namespaces(): IterableIterator<NS>;
  /** Number of namespaces with state. */
  readonly size: number;
}

/**
 * Where operators get their state tables: in memory, as a write-back cache of what checkpoints
 * store. With `spill` (`state: { cacheBytes }`), keyed process state beyond the budget goes to a spill
 * store per operator under `spill.dir` (see SpillCache).
 */
export interface StateBackend {
  readonly kind: 'memory';
  /** A table owned by `operator` (its step name) and called `name` within it. */
  table<NS, K, V>(operator: string, name: string): StateTable<NS, K, V>;
  /** The memory budget of keyed state and where colder keys go, or undefined: everything stays in memory. */
  readonly spill?: SpillOptions;
}

/** `state: { cacheBytes }` as the operators get it: the budget per operator, and a directory for this thread. */
export interface SpillOptions {
  readonly cacheBytes: number;
  /** This thread's spill directory; each operator uses a subdirectory named after it. */
  readonly dir: string;
  readonly kind: 'classic-level' | 'rocksdb';
}

class MemoryTable<NS, K, V> implements StateTable<NS, K, V> {
  private readonly maps = new Map<NS, Map<K, V>>();
  namespace(ns: NS): Map<K, V> {
    let m = this.maps.get(ns);
    if (m === undefined) {
      m = new Map();
      this.maps.set(ns, m);
    }
    return m;
  }
  peek(ns: NS): Map<K, V> | undefined {
    return this.maps.get(ns);
  }
  drop(ns: NS): void {
    this.maps.delete(ns);
  }
  namespaces(): IterableIterator<NS> {
    return this.maps.keys();
  }
  get size(): number {
    return this.maps.size;
  }
}

/** In-memory state: fast, gone when the process ends. */
export class MemoryStateBackend implements StateBackend {
  readonly kind = 'memory' as const;
  constructor(readonly spill?: SpillOptions) {}
  table<NS, K, V>(_operator: string, _name: string): StateTable<NS, K, V> {
    return new MemoryTable<NS, K, V>();
  }
}

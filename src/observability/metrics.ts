/** A monotonically increasing count. */
export interface Counter {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  value: number;
}

/** One metric as {@link MetricsRegistry.snapshot} reports it. */
export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * The job's counters. Operators bump plain number fields (no call per record); a snapshot reads them.
 *
 * Names used by weir: `weir_records_in_total{step}`, `weir_records_out_total{step}`,
 * `weir_late_records_total{step,outcome=dropped|side_output|updated}`, `weir_dead_letters_total{step}`;
 * with `state: { cacheBytes }`, `weir_state_evicted_total{step}` and `weir_state_loaded_total{step}`
 * (keys written out of memory, and read back).
 *
 * @example
 * const late = p.metrics().find(m => m.name === 'weir_late_records_total' && m.labels.outcome === 'dropped');
 */
export class MetricsRegistry {
  private readonly counters = new Map<string, Counter>();

  counter(name: string, labels: Record<string, string> = {}): Counter {
    const id = `${name}${JSON.stringify(labels)}`;
    let c = this.counters.get(id);
    if (!c) {
      c = { name, labels: Object.freeze({ ...labels }), value: 0 };
      this.counters.set(id, c);
    }
    return c;
  }

  snapshot(): MetricSample[] {
    return [...this.counters.values()].map((c) => ({ name: c.name, labels: c.labels, value: c.value }));
  }

  /** Sum of a metric over all label sets matching `labels`. */
  total(name: string, labels: Record<string, string> = {}): number {
    let sum = 0;
    for (const c of this.counters.values()) {
      if (c.name !== name) continue;
      let match = true;
      for (const k in labels) if (c.labels[k] !== labels[k]) match = false;
      if (match) sum += c.value;
    }
    return sum;
  }
}

import type { ErrorHandler } from '../runtime/error-handler.js';
import type { Emitter, Operator, OperatorContext } from '../runtime/operator.js';

/** Marks a record whose user function threw (and went to the error policy). */
const FAILED: unique symbol = Symbol('weir.failed');

abstract class Stateless<I, O> implements Operator<I, O> {
  protected out!: Emitter<O>;
  protected errors!: ErrorHandler;
  open(ctx: OperatorContext<O>): void {
    this.out = ctx.output;
    this.errors = ctx.errors;
  }
  abstract processBatch(items: readonly I[], timestamps: readonly number[]): void;
  protected failed(kind: string, record: unknown, ts: number, e: unknown): void {
    this.errors.recordFailed('WEIR_USER_FUNCTION_FAILED', `${kind} function threw`, record, ts, e);
  }
}

/** `map`: one output per element; the timestamps array is shared, not copied. */
export class MapOperator<I, O> extends Stateless<I, O> {
  constructor(private readonly fn: (v: I) => O) {
    super();
  }
  processBatch(items: readonly I[], ts: readonly number[]): void {
    const n = items.length;
    const fn = this.fn;
    const out = new Array<O>(n);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      try {
        out[i] = fn(items[i]);
      } catch (e) {
        this.failed('map', items[i], ts[i], e);
        (out as unknown[])[i] = FAILED;
        bad++;
      }
    }
    if (bad === 0) {
      this.out.emit(out, ts);
      return;
    }
    const keptItems: O[] = [];
    const keptTs: number[] = [];
    for (let i = 0; i < n; i++) {
      if ((out[i] as unknown) !== FAILED) {
        keptItems.push(out[i]);
        keptTs.push(ts[i]);
      }
    }
    this.out.emit(keptItems, keptTs);
  }
}

/** `filter`: emits the input arrays themselves when every element passes. */
export class FilterOperator<T> extends Stateless<T, T> {
  constructor(private readonly fn: (v: T) => boolean) {
    super();
  }
  processBatch(items: readonly T[], ts: readonly number[]): void {
    const n = items.length;
    const fn = this.fn;
    let i = 0;
    // Fast path: while everything passes, copy nothing.
    for (; i < n; i++) {
      let keep: boolean;
      try {
        keep = fn(items[i]);
      } catch (e) {
        this.failed('filter', items[i], ts[i], e);
        break;
      }
      if (!keep) break;
    }
    if (i === n) {
      this.out.emit(items, ts);
      return;
    }
    const keptItems = items.slice(0, i);
    const keptTs = ts.slice(0, i);
    for (i++; i < n; i++) {
      let keep: boolean;
      try {
        keep = fn(items[i]);
      } catch (e) {
        this.failed('filter', items[i], ts[i], e);
        continue;
      }
      if (keep) {
        keptItems.push(items[i]);
        keptTs.push(ts[i]);
      }
    }
    this.out.emit(keptItems, keptTs);
  }
}

/** `flatMap`: outputs inherit their element's timestamp. */
export class FlatMapOperator<I, O> extends Stateless<I, O> {
  constructor(private readonly fn: (v: I) => Iterable<O>) {
    super();
  }
  processBatch(items: readonly I[], ts: readonly number[]): void {
    const n = items.length;
    const fn = this.fn;
    const outItems: O[] = [];
    const outTs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t = ts[i];
      try {
        const r = fn(items[i]);
        if (Array.isArray(r)) {
          for (let j = 0; j < r.length; j++) {
            outItems.push(r[j]);
            outTs.push(t);
          }
        } else {
          for (const o of r) {
            outItems.push(o);
            outTs.push(t);
          }
        }
      } catch (e) {
        this.failed('flatMap', items[i], t, e);
      }
    }
    this.out.emit(outItems, outTs);
  }
}

/** `union`: passes batches through; the runtime combines the inputs' watermarks. */
export class UnionOperator<T> implements Operator<T, T> {
  private out!: Emitter<T>;
  open(ctx: OperatorContext<T>): void {
    this.out = ctx.output;
  }
  processBatch(items: readonly T[], ts: readonly number[]): void {
    this.out.emit(items, ts);
  }
}

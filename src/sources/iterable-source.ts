import type { Source } from './source.js';

function isAsync<T>(it: Iterable<T> | AsyncIterable<T>): it is AsyncIterable<T> {
  return typeof (it as AsyncIterable<T>)[Symbol.asyncIterator] === 'function';
}

/**
 * A source over any iterable, bounded or not.
 *
 * Sync iterables are read without a promise per batch. Async iterables (streams, async generators)
 * are drained by a pump into a bounded buffer: a poll returns whatever has arrived (up to `max`)
 * without waiting for a full batch, and waits only when nothing is there; the pump pauses while the
 * buffer is full (backpressure).
 *
 * @example p.source(sources.iterable(readLines()), { timestamp: e => e.ts })
 */
export function iterableSource<T>(iterable: Iterable<T> | AsyncIterable<T>, opts: { name?: string } = {}): Source<T> {
  const name = opts.name ?? (isAsync(iterable) ? 'async-iterable' : 'iterable');
  return isAsync(iterable) ? new AsyncIterableSource(name, iterable) : syncIterableSource(name, iterable);
}

function syncIterableSource<T>(name: string, iterable: Iterable<T>): Source<T> {
  let it: Iterator<T> | null = null;
  return {
    name,
    poll(max: number): readonly T[] | null {
      it ??= iterable[Symbol.iterator]();
      const batch: T[] = [];
      while (batch.length < max) {
        const r = it.next();
        if (r.done) return batch.length === 0 ? null : batch;
        batch.push(r.value);
      }
      return batch;
    },
    close() {
      it?.return?.();
    },
  };
}

const CLOSE_WAIT_MS = 500;

class AsyncIterableSource<T> implements Source<T> {
  private buffer: T[] = [];
  private done = false;
  private error: unknown = null;
  private started = false;
  private closed = false;
  private limit = 1024;
  private wakeReader: (() => void) | null = null;
  private wakePump: (() => void) | null = null;
  private iterator: AsyncIterator<T> | null = null;

  constructor(readonly name: string, private readonly iterable: AsyncIterable<T>) {}

  poll(max: number): readonly T[] | null | Promise<readonly T[] | null> {
    this.limit = Math.max(this.limit, max * 4);
    if (!this.started) {
      this.started = true;
      void this.pump();
    }
    const now = this.take(max);
    if (now !== undefined) return now;
    return new Promise<void>((resolve) => (this.wakeReader = resolve)).then(() => {
      const r = this.take(max);
      return r === undefined ? [] : r;
    });
  }

  /** What is buffered, `null` at the end, or `undefined` when the reader has to wait. */
  private take(max: number): readonly T[] | null | undefined {
    if (this.error !== null) throw this.error;
    if (this.buffer.length === 0) return this.done ? null : undefined;
    const batch = this.buffer.length <= max ? this.buffer : this.buffer.slice(0, max);
    this.buffer = this.buffer.length <= max ? [] : this.buffer.slice(max);
    this.wakePump?.();
    this.wakePump = null;
    return batch;
  }

  private async pump(): Promise<void> {
    try {
      this.iterator = this.iterable[Symbol.asyncIterator]();
      while (!this.closed) {
        if (this.buffer.length >= this.limit) {
          await new Promise<void>((resolve) => (this.wakePump = resolve));
          continue;
        }
        const r = await this.iterator.next();
        if (r.done) break;
        this.buffer.push(r.value);
        this.wake();
      }
    } catch (e) {
      this.error = e;
    }
    this.done = true;
    this.wake();
  }

  private wake(): void {
    const w = this.wakeReader;
    this.wakeReader = null;
    w?.();
  }

  /** Lets the iterable clean up (`finally` blocks run), waiting at most half a second for it. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakePump?.();
    const done = this.iterator?.return?.()?.catch(() => undefined);
    if (done === undefined) return;
    // An async generator parked on an await only returns once it gets to a yield: don't hang on it.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }
}

import { basename } from 'node:path';
import { asBuffer, type Codec } from '../codecs/codec.js';
import { WeirError, messageOf } from '../errors.js';
import { jsonLines } from './json-lines.js';
import { OutputFile } from './output-file.js';
import type { Sink } from './sink.js';
import { TransactionalJsonlSink } from './transactional-jsonl-sink.js';
import type { TransactionalSink } from './transactional-sink.js';

/** Options of {@link jsonlSink}. */
export interface JsonlSinkOptions<T> {
  /** Sink name in logs and errors (default `jsonl(<file name>)`). */
  name?: string;
  /** Append to the file instead of truncating it when the job opens the sink (default false). */
  append?: boolean;
  /**
   * Renders one record as one line, without the line ending (default `JSON.stringify`).
   * @example format: r => JSON.stringify({ key: r.key, avg: r.value })
   */
  format?: (record: T) => string;
  /**
   * Renders each record with a text codec instead (one without `open`/`prepare`): typically a
   * validating `codecs.json(...)`. A record it cannot encode fails the job with `WEIR_ENCODE_FAILED`.
   * Not together with `format`.
   * @example codec: codecs.json<Alert>({ fields: { card: 'string', score: 'number' } })
   */
  codec?: Codec<T>;
  /**
   * Exactly-once output by two-phase commit with the job's checkpoints (default false: the file is
   * written as records come, which after a restart from a checkpoint is at-least-once). Lines of an
   * epoch go to a part file in `<path>.weir/` and are appended to the target when the checkpoint
   * that holds them is durable, so the target only ever holds whole, committed epochs. A run that
   * restarts from a checkpoint keeps the target; a fresh run truncates it (unless `append`).
   * @example sinks.jsonl<Out>('out.jsonl', { exactlyOnce: true })
   */
  exactlyOnce?: boolean;
}

/**
 * Writes each record as one JSON line, in order. The file is opened (truncated, or appended to with
 * `append: true`) when the job opens the sink; its parent directory must exist. When the file stream's
 * buffer is full a write returns a promise that resolves on `drain`, so the job waits (backpressure);
 * otherwise writes return nothing. `close()` flushes, fsyncs and closes the file.
 *
 * With `exactlyOnce: true` it is a {@link TransactionalSink}: lines become visible in the file only
 * when the checkpoint that covers them commits (see `JsonlSinkOptions.exactlyOnce`).
 *
 * @example
 * p.source(sources.jsonl<Txn>('in.jsonl')).filter(t => t.amount > 100).sink(sinks.jsonl('big.jsonl'))
 * @example
 * const out = sinks.jsonl<Alert>('alerts.jsonl', { exactlyOnce: true });
 */
export function jsonlSink<T>(path: string, opts: JsonlSinkOptions<T> & { exactlyOnce: true }): TransactionalSink<T>;
export function jsonlSink<T>(path: string, opts?: JsonlSinkOptions<T>): Sink<T>;
export function jsonlSink<T>(path: string, opts: JsonlSinkOptions<T> = {}): Sink<T> {
  if (typeof path !== 'string' || path === '') throw new WeirError('WEIR_INVALID_ARGUMENT', `sinks.jsonl: expected a file path, got ${String(path)}`);
  const name = opts.name ?? `jsonl(${basename(path)})`;
  let format = opts.format;
  if (opts.codec !== undefined) {
    if (format !== undefined) throw new WeirError('WEIR_INVALID_ARGUMENT', `sinks.jsonl(${path}): give format or codec, not both`);
    format = formatWithCodec(opts.codec, name, path);
  }
  if (opts.exactlyOnce === true) return new TransactionalJsonlSink<T>(name, path, opts.append === true, format);
  return new JsonlFileSink<T>(name, path, opts.append === true, format);
}

/** A `format` that encodes with a text codec, failing with `WEIR_ENCODE_FAILED`. */
function formatWithCodec<T>(codec: Codec<T>, name: string, path: string): (record: T) => string {
  if (typeof codec?.encode !== 'function' || codec.text !== true || codec.open !== undefined || codec.prepare !== undefined) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `sinks.jsonl(${path}): codec must be a text codec without open/prepare (codecs.json, codecs.string); for others use sinks.file`);
  }
  return (record: T): string => {
    let bytes: Uint8Array;
    try {
      bytes = codec.encode(record);
    } catch (e) {
      throw new WeirError('WEIR_ENCODE_FAILED', `${path}: ${messageOf(e)}`, { step: name, record, cause: e });
    }
    const buf = asBuffer(bytes);
    if (buf.indexOf(0x0a) !== -1) {
      throw new WeirError('WEIR_ENCODE_FAILED', `${path}: ${codec.name} encoded the record with a line feed inside`, { step: name, record });
    }
    return buf.toString('utf8');
  };
}

class JsonlFileSink<T> implements Sink<T> {
  private readonly file: OutputFile;

  constructor(
    readonly name: string,
    private readonly path: string,
    append: boolean,
    private readonly format: ((record: T) => string) | undefined,
  ) {
    this.file = new OutputFile('jsonl sink', path, append);
  }

  open(): Promise<void> {
    return this.file.open();
  }

  write(items: readonly T[]): void | Promise<void> {
    return this.file.write(jsonLines(items, this.format, this.name, this.path));
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

import type { WriteStream } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { messageOf } from '../errors.js';

/**
 * The file a plain file sink writes (`sinks.jsonl`, `sinks.file`): opened once (truncated, or
 * appended to), written in whole chunks through a stream — a write returns a promise that resolves on
 * `drain` when the stream's buffer is full (backpressure), nothing otherwise — and closed with a flush
 * and an fsync. The first error of the stream is kept: it may come after the write that caused it
 * returned, and every later write and the close throw it.
 */
export class OutputFile {
  private file: FileHandle | null = null;
  private stream: WriteStream | null = null;
  private opening: Promise<void> | null = null;
  private error: Error | null = null;
  private closed = false;

  /** `what` names the sink in messages, e.g. `jsonl sink`. */
  constructor(
    private readonly what: string,
    private readonly path: string,
    private readonly append: boolean,
    /** Runs before the file is opened (a codec that registers its schema), once. */
    private readonly before?: () => Promise<void>,
  ) {}

  /** Opens the file (once; later calls wait for the same open). */
  open(): Promise<void> {
    this.opening ??= (this.before?.() ?? Promise.resolve()).then(() =>
      openFile(this.path, this.append ? 'a' : 'w').then(
        (file) => {
          this.file = file;
          // autoClose off: the handle must outlive the stream's 'finish' so close() can fsync it.
          const out = file.createWriteStream({ autoClose: false });
          out.on('error', (e) => this.failed(e));
          this.stream = out;
        },
        (e: unknown) => {
          const code = (e as { code?: unknown } | null)?.code;
          const why = code === 'ENOENT' ? `directory ${dirname(this.path)} does not exist` : code === 'EISDIR' ? 'it is a directory' : messageOf(e);
          throw new Error(`${this.what} cannot open ${this.path}: ${why}`, { cause: e });
        },
      ),
    );
    return this.opening;
  }

  /** Writes one chunk (opening the file first if needed); a promise only while the stream is full. */
  write(chunk: string | Uint8Array): void | Promise<void> {
    if (this.error) throw this.error;
    if (this.closed) throw new Error(`${this.what} ${this.path} is closed`);
    const out = this.stream;
    if (out === null) return this.open().then(() => this.write(chunk));
    if (chunk.length === 0 || out.write(chunk)) return;
    return this.drained(out);
  }

  /** Flushes, fsyncs and closes; throws the stream's first error, if any. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // An open that failed has already failed the job (or the write that triggered it).
    if (this.opening) await this.opening.catch(() => undefined);
    const out = this.stream;
    const file = this.file;
    this.stream = null;
    this.file = null;
    try {
      if (out !== null) await endStream(out).catch((e: unknown) => void this.failed(e));
      if (file !== null && this.error === null) await file.sync().catch((e: unknown) => void this.failed(e));
    } finally {
      // The stream holds a reference on the handle (file.close() would wait for it forever) and
      // closes the handle itself when destroyed.
      if (out !== null) await destroyStream(out);
      await file?.close();
    }
    if (this.error) throw this.error;
  }

  /** Resolves when `out` drains; rejects if it fails first. */
  private drained(out: WriteStream): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        out.off('error', onError);
        resolve();
      };
      const onError = (e: unknown): void => {
        out.off('drain', onDrain);
        reject(this.failed(e));
      };
      out.once('drain', onDrain);
      out.once('error', onError);
    });
  }

  private failed(e: unknown): Error {
    this.error ??= new Error(`${this.what} failed writing ${this.path}: ${messageOf(e)}`, { cause: e });
    return this.error;
  }
}

function destroyStream(out: WriteStream): Promise<void> {
  if (out.closed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    out.once('close', () => resolve());
    out.destroy();
  });
}

function endStream(out: WriteStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    out.end((e?: Error | null) => (e ? reject(e) : resolve()));
  });
}

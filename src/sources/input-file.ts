import { open as openFile, type FileHandle } from 'node:fs/promises';
import { messageOf } from '../errors.js';

/**
 * The file a file source reads (`sources.jsonl`, `sources.file`): opened once, read at explicit
 * positions (the sources keep their own byte offset, which is their checkpoint position), closed
 * once. Errors name the source and the file.
 */
export class InputFile {
  private file: FileHandle | null = null;
  private opening: Promise<void> | null = null;
  private closed = false;

  /** `what` names the source in messages, e.g. `jsonl source`. */
  constructor(
    private readonly what: string,
    private readonly path: string,
  ) {}

  /** Whether the file is open (reads can happen). */
  get isOpen(): boolean {
    return this.file !== null;
  }

  /** Opens the file (once; later calls wait for the same open). */
  open(): Promise<void> {
    this.opening ??= openFile(this.path, 'r').then(
      (f) => {
        if (this.closed) return f.close();
        this.file = f;
      },
      (e: unknown) => {
        throw new Error(`${this.what} cannot open ${this.path}: ${describeFsError(e)}`, { cause: e });
      },
    );
    return this.opening;
  }

  /** Reads into `buf[offset, offset + length)` from byte `position`; the bytes read (0 at the end, or once closed). */
  async read(buf: Buffer, offset: number, length: number, position: number): Promise<number> {
    const file = this.file;
    if (file === null) return 0;
    try {
      return (await file.read(buf, offset, length, position)).bytesRead;
    } catch (e) {
      throw new Error(`${this.what} failed reading ${this.path}: ${describeFsError(e)}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.opening) await this.opening.catch(() => undefined);
    const f = this.file;
    this.file = null;
    await f?.close();
  }
}

function describeFsError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES') return 'permission denied';
  return messageOf(e);
}

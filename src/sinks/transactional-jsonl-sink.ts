import { mkdir, open as openFile, readFile, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { WeirError, messageOf } from '../errors.js';
import { silentLogger } from '../observability/logger.js';
import { jsonLines } from './json-lines.js';
import type { SinkContext } from './sink.js';
import { SerialQueue, checkEpoch, transactionStep, type CommitHandle, type TransactionalSink } from './transactional-sink.js';

/** The handle of one pre-committed epoch of an exactly-once `sinks.jsonl`. */
export interface JsonlCommitHandle extends CommitHandle {
  readonly epoch: number;
  /** The part file, in the sink's directory `<path>.weir/`: `<epoch>.part`. */
  readonly part: string;
  /** Its length: what the commit appends. 0 for an epoch without writes (no file). */
  readonly bytes: number;
}

/** `<path>.weir/state.json`: the last committed epoch and the target's length right after it. */
interface CommitState {
  readonly format: 1;
  readonly epoch: number;
  readonly length: number;
}

const STATE_FILE = 'state.json';
const CURRENT_PART = 'current.part';
/** Buffered output is written to the part file past this many UTF-16 units. */
const FLUSH_CHARS = 1 << 20;
const COPY_CHUNK = 1 << 20;

/**
 * The exactly-once mode of `sinks.jsonl(path, { exactlyOnce: true })`. Files, all in `<path>.weir/`
 * beside the target:
 * - `current.part`: the lines written in the current epoch (buffered, flushed every ~1 MiB);
 * - `<epoch>.part`: a pre-committed epoch (fsynced, renamed from `current.part` by `preCommit`);
 * - `state.json`: `{ epoch, length }` of the last commit, replaced atomically (temp + rename + fsync).
 *
 * `commit` appends a part to the target: it first truncates the target back to the recorded `length`
 * (dropping the tail of a commit that crashed before it recorded itself), appends, fsyncs, records the
 * new state, then deletes the part. A handle at or below the recorded epoch is already committed.
 * So a crash anywhere in a commit, then the same commit again, leaves the target as one commit would.
 */
export class TransactionalJsonlSink<T> implements TransactionalSink<T> {
  readonly transactional = true as const;
  private readonly dir: string;
  private logger: Logger = silentLogger();
  private readonly queue = new SerialQueue();
  /** Set by the first write or preCommit (fresh start), or by recover / commit / abort (resume). */
  private starting: Promise<void> | null = null;
  private resumed = false;
  private state: CommitState | null = null;
  /** The highest epoch pre-committed by this instance (-1: none). */
  private lastPreCommitted = -1;
  /** Pre-committed here, neither committed nor aborted yet. Commits must go in epoch order. */
  private readonly pending = new Set<number>();
  private current: FileHandle | null = null;
  private currentBytes = 0;
  private buffer = '';
  private flushing: Promise<void> = Promise.resolve();
  private error: Error | null = null;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly path: string,
    private readonly append: boolean,
    private readonly format: ((record: T) => string) | undefined,
  ) {
    this.dir = `${path}.weir`;
  }

  async open(ctx: SinkContext): Promise<void> {
    this.logger = ctx.logger;
    await this.ensureDir();
  }

  write(items: readonly T[]): void | Promise<void> {
    if (this.error) throw this.error;
    if (this.closed) throw new Error(`jsonl sink ${this.path} is closed`);
    if (this.state === null) return this.start(false).then(() => this.write(items));
    this.buffer += jsonLines(items, this.format, this.name, basename(this.path));
    if (this.buffer.length >= FLUSH_CHARS) return this.flush();
  }

  preCommit(epoch: number): Promise<JsonlCommitHandle> {
    return this.queue.run(() => this.guard(`preCommit of epoch ${String(epoch)}`, async () => {
      checkEpoch(epoch, this.name);
      await this.start(false);
      const floor = Math.max(this.state!.epoch, this.lastPreCommitted);
      if (epoch <= floor) {
        throw new WeirError('WEIR_INVALID_ARGUMENT', `preCommit(${epoch}): epochs must increase, and epoch ${floor} is already ${floor === this.state!.epoch ? 'committed' : 'pre-committed'}`, { step: this.name });
      }
      await this.flush();
      if (this.error) throw this.error;
      const part = partName(epoch);
      const bytes = this.currentBytes;
      const file = this.current;
      this.current = null;
      this.currentBytes = 0;
      this.lastPreCommitted = epoch;
      if (file === null) return { epoch, part, bytes: 0 };
      try {
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(join(this.dir, CURRENT_PART), join(this.dir, part));
      await syncDir(this.dir);
      this.pending.add(epoch);
      return { epoch, part, bytes };
    }));
  }

  commit(handle: CommitHandle): Promise<void> {
    return this.queue.run(() => this.guard(`commit of epoch ${String(handle?.epoch)}`, async () => {
      const h = this.checkHandle(handle);
      await this.start(true);
      await this.commitOne(h);
    }));
  }

  abort(handle: CommitHandle): Promise<void> {
    return this.queue.run(() => this.guard(`abort of epoch ${String(handle?.epoch)}`, async () => {
      const h = this.checkHandle(handle);
      await this.start(true);
      // An epoch at or below the committed one is committed: its part, if still there, is a leftover.
      await unlinkIfExists(join(this.dir, h.part));
      this.pending.delete(h.epoch);
    }));
  }

  recover(lastCommitted: readonly CommitHandle[]): Promise<void> {
    return this.queue.run(() => this.guard('recover', async () => {
      if (!Array.isArray(lastCommitted)) throw new WeirError('WEIR_INVALID_ARGUMENT', `recover expects an array of commit handles, got ${String(lastCommitted)}`, { step: this.name });
      const handles = lastCommitted.map((h) => this.checkHandle(h)).sort((a, b) => a.epoch - b.epoch);
      if (this.starting !== null && !this.resumed) {
        throw new WeirError('WEIR_INVALID_ARGUMENT', 'recover must come before the first write or preCommit', { step: this.name });
      }
      await this.start(true);
      for (const h of handles) await this.commitOne(h);
      // Whatever part is left belongs to no durable checkpoint: abort it.
      let removed = 0;
      for (const f of await readdir(this.dir)) {
        if (f.endsWith('.part') || f.endsWith('.tmp')) {
          await unlinkIfExists(join(this.dir, f));
          removed++;
        }
      }
      if (removed > 0) await syncDir(this.dir);
      // A commit that crashed after appending, of an epoch no checkpoint holds (only possible when the
      // job fell back to an older checkpoint), leaves a tail past the recorded length.
      await this.truncateTarget();
      const newest = handles.length > 0 ? handles[handles.length - 1].epoch : -1;
      if (this.state!.epoch > newest && this.state!.epoch > 0) {
        this.logger.warn({ committed: this.state!.epoch, checkpoint: newest }, 'the target already holds epochs past the checkpoint being recovered; new epochs must be numbered above them');
      }
      this.logger.info({ committed: handles.map((h) => h.epoch), aborted: removed }, 'jsonl sink recovered');
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing.catch(() => undefined);
    const file = this.current;
    this.current = null;
    this.buffer = '';
    // The current epoch was never pre-committed: no checkpoint can commit it.
    if (file !== null) {
      await file.close().catch(() => undefined);
      await unlinkIfExists(join(this.dir, CURRENT_PART)).catch(() => undefined);
    }
  }

  /** First use: a resume (recover, commit, abort) loads the state; a fresh start resets it. */
  private start(resume: boolean): Promise<void> {
    if (this.starting === null) {
      this.resumed = resume;
      this.starting = resume ? this.resume() : this.freshStart();
      this.starting.catch((e: unknown) => void (this.error ??= e instanceof Error ? e : new Error(String(e))));
    }
    return this.starting;
  }

  private async resume(): Promise<void> {
    await this.ensureDir();
    const loaded = await this.readState();
    if (loaded !== null) {
      this.state = loaded;
      return;
    }
    // No commit ever recorded: whatever the target holds predates this sink.
    const st = { format: 1, epoch: 0, length: await sizeOf(this.path) } as const;
    await this.writeState(st);
  }

  private async freshStart(): Promise<void> {
    await this.ensureDir();
    let removed = 0;
    for (const f of await readdir(this.dir)) {
      if (f.endsWith('.part') || f.endsWith('.tmp')) {
        await unlinkIfExists(join(this.dir, f));
        removed++;
      }
    }
    let length = 0;
    if (this.append) {
      length = await sizeOf(this.path);
    } else {
      const target = await openFile(this.path, 'w');
      try {
        await target.sync();
      } finally {
        await target.close();
      }
      await syncDir(dirname(this.path));
    }
    await this.writeState({ format: 1, epoch: 0, length });
    this.logger.info({ path: this.path, append: this.append, removedParts: removed }, 'jsonl sink: fresh start (no recover), earlier pending epochs dropped');
  }

  private async commitOne(h: JsonlCommitHandle): Promise<void> {
    const st = this.state!;
    const partPath = join(this.dir, h.part);
    if (h.epoch <= st.epoch || h.bytes === 0) {
      // Committed before (maybe by a run that crashed before deleting the part), or empty.
      if (h.bytes > 0) await unlinkIfExists(partPath);
      this.pending.delete(h.epoch);
      return;
    }
    for (const e of this.pending) {
      if (e < h.epoch) throw new WeirError('WEIR_INVALID_ARGUMENT', `commit(${h.epoch}): epoch ${e} is pre-committed and not yet committed or aborted; commits go in epoch order`, { step: this.name });
    }
    let part: FileHandle;
    try {
      part = await openFile(partPath, 'r');
    } catch (e) {
      if (codeOf(e) === 'ENOENT') throw this.lost(h, `its part file ${partPath} is gone and the target's state records epoch ${st.epoch} as the last committed`, e);
      throw e;
    }
    try {
      const size = (await part.stat()).size;
      if (size !== h.bytes) throw this.lost(h, `its part file ${partPath} has ${size} bytes, the handle says ${h.bytes}`);
      const target = await this.openTarget(st);
      try {
        const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, h.bytes));
        let copied = 0;
        while (copied < h.bytes) {
          const { bytesRead } = await part.read(buf, 0, Math.min(buf.length, h.bytes - copied), copied);
          if (bytesRead === 0) throw this.lost(h, `its part file ${partPath} ended after ${copied} of ${h.bytes} bytes`);
          await writeAll(target, buf.subarray(0, bytesRead), st.length + copied);
          copied += bytesRead;
        }
        await target.sync();
      } finally {
        await target.close();
      }
    } finally {
      await part.close();
    }
    await this.writeState({ format: 1, epoch: h.epoch, length: st.length + h.bytes });
    await unlinkIfExists(partPath);
    this.pending.delete(h.epoch);
  }

  /** Opens the target for a commit, truncated back to the committed length. */
  private async openTarget(st: CommitState): Promise<FileHandle> {
    let target: FileHandle;
    try {
      target = await openFile(this.path, 'r+');
    } catch (e) {
      if (codeOf(e) !== 'ENOENT') throw e;
      if (st.length > 0) throw this.changed(`${this.path} is gone, but ${st.length} bytes were committed to it`);
      target = await openFile(this.path, 'w+');
      await syncDir(dirname(this.path));
    }
    try {
      const size = (await target.stat()).size;
      if (size < st.length) throw this.changed(`${this.path} has ${size} bytes, but ${st.length} were committed to it`);
      if (size > st.length) {
        this.logger.warn({ path: this.path, bytes: size - st.length }, 'dropping the tail of a commit that did not finish');
        await target.truncate(st.length);
      }
      return target;
    } catch (e) {
      await target.close();
      throw e;
    }
  }

  private async truncateTarget(): Promise<void> {
    const st = this.state!;
    const size = await sizeOf(this.path);
    if (size === st.length) return;
    const target = await this.openTarget(st);
    try {
      await target.sync();
    } finally {
      await target.close();
    }
  }

  private flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.buffer === '') return;
      const data = Buffer.from(this.buffer, 'utf8');
      this.buffer = '';
      try {
        this.current ??= await openFile(join(this.dir, CURRENT_PART), 'w');
        await writeAll(this.current, data, this.currentBytes);
        this.currentBytes += data.length;
      } catch (e) {
        throw (this.error ??= new Error(`jsonl sink failed writing ${join(this.dir, CURRENT_PART)}: ${messageOf(e)}`, { cause: e }));
      }
    });
    return this.flushing;
  }

  private async ensureDir(): Promise<void> {
    try {
      await mkdir(this.dir);
    } catch (e) {
      const code = codeOf(e);
      if (code === 'EEXIST') return;
      const why = code === 'ENOENT' ? `directory ${dirname(this.path)} does not exist` : messageOf(e);
      throw new Error(`jsonl sink cannot open ${this.path}: ${why}`, { cause: e });
    }
    await syncDir(dirname(this.dir));
  }

  private async readState(): Promise<CommitState | null> {
    const file = join(this.dir, STATE_FILE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (codeOf(e) === 'ENOENT') return null;
      throw e;
    }
    let st: unknown;
    try {
      st = JSON.parse(text);
    } catch (e) {
      throw this.changed(`${file} is not JSON: ${messageOf(e)}`);
    }
    const s = st as Partial<CommitState> | null;
    if (s === null || s.format !== 1 || !Number.isSafeInteger(s.epoch) || !Number.isSafeInteger(s.length)) {
      throw this.changed(`${file} is not a state file of format 1: ${text.slice(0, 200)}`);
    }
    return s as CommitState;
  }

  private async writeState(st: CommitState): Promise<void> {
    const file = join(this.dir, STATE_FILE);
    const tmp = `${file}.tmp`;
    const out = await openFile(tmp, 'w');
    try {
      await out.writeFile(JSON.stringify(st));
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, file);
    await syncDir(this.dir);
    this.state = st;
  }

  private checkHandle(handle: CommitHandle): JsonlCommitHandle {
    const h = handle as Partial<JsonlCommitHandle> | null;
    if (h === null || typeof h !== 'object') throw new WeirError('WEIR_INVALID_ARGUMENT', `not a commit handle: ${String(handle)}`, { step: this.name });
    const epoch = checkEpoch(h.epoch, this.name, 'handle epoch');
    if (h.part !== partName(epoch) || typeof h.bytes !== 'number' || !Number.isSafeInteger(h.bytes) || h.bytes < 0) {
      throw new WeirError('WEIR_INVALID_ARGUMENT', `not a handle of an exactly-once jsonl sink: ${JSON.stringify(handle)}`, { step: this.name });
    }
    return { epoch, part: h.part, bytes: h.bytes };
  }

  private guard<R>(what: string, step: () => Promise<R>): Promise<R> {
    return transactionStep(this.name, this.closed, what, step);
  }

  private lost(h: JsonlCommitHandle, why: string, cause?: unknown): WeirError {
    return new WeirError('WEIR_SINK_TRANSACTION_LOST', `cannot commit epoch ${h.epoch} to ${this.path}: ${why}`, { step: this.name, cause });
  }

  private changed(why: string): WeirError {
    return new WeirError('WEIR_SINK_TRANSACTION_LOST', `committed output was changed outside weir: ${why}`, { step: this.name });
  }
}

function partName(epoch: number): string {
  return `${epoch}.part`;
}

function codeOf(e: unknown): unknown {
  return (e as { code?: unknown } | null)?.code;
}

async function writeAll(file: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return 0;
    throw e;
  }
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    if (codeOf(e) !== 'ENOENT') throw e;
  }
}

/** fsync of a directory: makes a file created, renamed or deleted in it durable. */
async function syncDir(dir: string): Promise<void> {
  const d = await openFile(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

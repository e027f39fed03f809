import type { Pool, PoolClient, PoolConfig } from 'pg';
import type { Logger } from 'pino';
import { WeirError, messageOf } from '../errors.js';
import { silentLogger } from '../observability/logger.js';
import type { Sink, SinkContext } from './sink.js';
import { SerialQueue, checkEpoch, transactionStep, type CommitHandle, type TransactionalSink } from './transactional-sink.js';

/** A column name of `T` (any string while `T` is not known). */
export type ColumnOf<T> = unknown extends T ? string : keyof T & string;

/** How records become rows: named fields of the record, or a function. */
export type PostgresRowMapping<T> =
  | {
      /** The target's columns, filled from the record's fields of the same name (missing: NULL). */
      columns: readonly ColumnOf<T>[];
      toRow?: undefined;
    }
  | {
      /**
       * Turns a record into `{ column: value }`. Values go to PostgreSQL as JSON and are converted to
       * the column's type (`jsonb_populate_record`): numbers, strings (also for dates, numerics,
       * bigints), booleans, `null`, objects and arrays (for json/jsonb or array columns); a `Date` or a
       * bigint is sent as its string.
       * @example toRow: (w) => ({ card: w.key, window_start: new Date(w.start), avg_amount: w.value })
       */
      toRow: (record: T) => Readonly<Record<string, unknown>>;
      /**
       * The columns to insert (default: every key `toRow` returns, per epoch, or per batch without
       * `exactlyOnce`; a key missing from some rows then gives NULL there, not the column's default).
       */
      columns?: readonly string[];
    };

/** Options of {@link postgresSink} (besides the row mapping). */
export interface PostgresSinkCommonOptions {
  /** A connection string (`postgres://user@host:5432/db`) or a `pg` pool config. */
  connection: string | PoolConfig;
  /** The target table. It must exist; weir never creates or alters it. */
  table: string;
  /** The schema of the target table and of weir's two tables (default: the `search_path`). */
  schema?: string;
  /**
   * Exactly-once by two-phase commit with the job's checkpoints (default true). `false`: each batch is
   * inserted as it comes (at-least-once after a restart from a checkpoint).
   */
  exactlyOnce?: boolean;
  /** The job's name in transaction ids (default: the pipeline's name, which the job passes at open). */
  job?: string;
  /** Sink name in logs, errors and transaction ids (default `postgres(<table>)`). Keep it stable across restarts. */
  name?: string;
  /** Rows per INSERT statement (default 5000); a statement also stays under ~8 MB of JSON. */
  batchRows?: number;
  /** Markers of committed epochs kept per sink (default 1000): a commit prunes older ones. */
  keepEpochs?: number;
}

/** Options of {@link postgresSink}. */
export type PostgresSinkOptions<T> = PostgresSinkCommonOptions & PostgresRowMapping<T>;

/** The handle of one pre-committed epoch of `sinks.postgres`. */
export interface PostgresCommitHandle extends CommitHandle {
  readonly epoch: number;
  /** `job/sink/epoch`: the rows are staged in `weir_staging` under this job, sink and epoch. */
  readonly txn: string;
  /** How many rows are staged (what the commit must copy). */
  readonly rows: number;
  /** The target columns the commit fills. */
  readonly columns: readonly string[];
}

/**
 * Writes records as rows of a PostgreSQL table (through `pg`).
 *
 * Exactly-once (the default) uses two tables of its own, created when missing in the target's schema:
 * `weir_staging (job, sink, epoch, seq, row jsonb)` and `weir_epochs (job, sink, epoch, rows,
 * committed_at)`, primary key `(job, sink, epoch)`. Records of an epoch are held in memory until
 * `preCommit`, which stages them in one transaction (multi-row INSERTs, with a check that every value
 * converts to its column's type, so a bad value fails the checkpoint, not the commit). `commit`, in ONE
 * transaction, inserts the epoch's marker and, if it was not there yet, copies the staged rows into the
 * target in order and deletes them; if the marker was there, it does nothing. `abort` deletes the
 * staged rows; `recover` commits the checkpoint's handles, then deletes every other staged row of the
 * sink. Constraint violations of the target (unique, not null, foreign keys) show at commit.
 *
 * With `exactlyOnce: false` each `write` inserts its batch (in one transaction) before it resolves.
 *
 * @example
 * .sink(sinks.postgres<WindowResult<string, number>>({
 *   connection: 'postgres://postgres@127.0.0.1:5432/app', table: 'card_avg',
 *   toRow: (w) => ({ card: w.key, window_start: new Date(w.start), avg_amount: w.value }),
 * }))
 * @example sinks.postgres<Order>({ connection: { host: 'db', database: 'shop' }, table: 'orders', columns: ['id', 'amount'], exactlyOnce: false })
 */
export function postgresSink<T>(opts: PostgresSinkOptions<T> & { exactlyOnce: false }): Sink<T>;
export function postgresSink<T>(opts: PostgresSinkOptions<T> & { exactlyOnce?: true }): TransactionalSink<T>;
export function postgresSink<T>(opts: PostgresSinkOptions<T>): Sink<T>;
export function postgresSink<T>(opts: PostgresSinkOptions<T>): Sink<T> {
  if (opts === null || typeof opts !== 'object') throw invalid(`sinks.postgres: expected options, got ${String(opts)}`);
  const { connection, table } = opts;
  if (typeof connection !== 'string' && (connection === null || typeof connection !== 'object')) throw invalid('sinks.postgres: connection must be a connection string or a pg config object');
  if (typeof table !== 'string' || table === '') throw invalid(`sinks.postgres: table must be a non-empty string, got ${String(table)}`);
  const name = opts.name ?? `postgres(${table})`;
  const step = { step: name };
  if (opts.toRow !== undefined && typeof opts.toRow !== 'function') throw invalid('sinks.postgres: toRow must be a function', step);
  if (opts.toRow === undefined && (!Array.isArray(opts.columns) || opts.columns.length === 0)) throw invalid('sinks.postgres: give columns (a non-empty list) or a toRow function', step);
  if (opts.columns !== undefined) {
    if (!Array.isArray(opts.columns) || opts.columns.length === 0) throw invalid('sinks.postgres: columns must be a non-empty list of column names', step);
    for (const c of opts.columns) quoteIdent(c, 'column');
    if (new Set(opts.columns).size !== opts.columns.length) throw invalid(`sinks.postgres: columns has duplicates: ${opts.columns.join(', ')}`, step);
  }
  quoteIdent(table, 'table');
  if (opts.schema !== undefined) quoteIdent(opts.schema, 'schema');
  if (opts.job !== undefined && (typeof opts.job !== 'string' || opts.job === '')) throw invalid(`sinks.postgres: job must be a non-empty string, got ${String(opts.job)}`, step);
  const batchRows = opts.batchRows ?? 5000;
  if (!Number.isSafeInteger(batchRows) || batchRows < 1) throw invalid(`sinks.postgres: batchRows must be a positive integer, got ${String(batchRows)}`, step);
  const keepEpochs = opts.keepEpochs ?? 1000;
  if (!Number.isSafeInteger(keepEpochs) || keepEpochs < 1) throw invalid(`sinks.postgres: keepEpochs must be a positive integer, got ${String(keepEpochs)}`, step);
  const config: PostgresConfig<T> = {
    name,
    connection,
    table,
    schema: opts.schema,
    job: opts.job,
    columns: opts.columns as readonly string[] | undefined,
    toRow: opts.toRow,
    batchRows,
    keepEpochs,
  };
  return opts.exactlyOnce === false ? new PostgresAtLeastOnceSink(config) : new PostgresExactlyOnceSink(config);
}

interface PostgresConfig<T> {
  readonly name: string;
  readonly connection: string | PoolConfig;
  readonly table: string;
  readonly schema: string | undefined;
  readonly job: string | undefined;
  readonly columns: readonly string[] | undefined;
  readonly toRow: ((record: T) => Readonly<Record<string, unknown>>) | undefined;
  readonly batchRows: number;
  readonly keepEpochs: number;
}

/** A statement stays under this many UTF-16 units of JSON. */
const MAX_STATEMENT_CHARS = 8 << 20;

/** Rows as JSON texts, and the columns they fill. */
interface RowBatch {
  readonly texts: string[];
  /** Set in toRow-only mode: the keys seen. */
  readonly keys: Set<string> | null;
}

/** Connection, row rendering and SQL shared by both modes. */
abstract class PostgresSinkBase<T> {
  readonly name: string;
  protected logger: Logger = silentLogger();
  protected pool: Pool | null = null;
  private connecting: Promise<void> | null = null;
  private poolError: Error | null = null;
  protected closed = false;
  protected readonly target: string;
  /** Columns of the target table, read at connect. */
  private tableColumns: Set<string> = new Set();
  private readonly fixedKeys: readonly string[] | null;

  constructor(protected readonly config: PostgresConfig<T>) {
    this.name = config.name;
    this.target = qualified(config.schema, config.table);
    this.fixedKeys = config.columns === undefined ? null : config.columns.map((c) => `${JSON.stringify(c)}:`);
  }

  async open(ctx: SinkContext): Promise<void> {
    this.logger = ctx.logger;
    this.onOpen(ctx);
    await this.connect();
  }

  protected onOpen(_ctx: SinkContext): void {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.connecting) await this.connecting.catch(() => undefined);
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }

  /** Creates the pool, checks the target table (and creates weir's tables): once. */
  protected connect(): Promise<void> {
    this.connecting ??= this.doConnect();
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    const { Pool } = (await import('pg')).default;
    const base: PoolConfig = typeof this.config.connection === 'string' ? { connectionString: this.config.connection } : this.config.connection;
    const pool = new Pool({ max: 2, application_name: 'weir', ...base });
    // An idle client that loses its connection emits on the pool; without a listener that would
    // crash the process. The next query fails and reports it.
    pool.on('error', (e) => {
      this.poolError = e;
      this.logger.warn({ err: e }, 'postgres connection lost');
    });
    this.pool = pool;
    try {
      const cols = await pool.query<{ attname: string }>(
        'SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped',
        [this.target],
      );
      this.tableColumns = new Set(cols.rows.map((r) => r.attname));
      await this.setUp(pool);
    } catch (e) {
      this.pool = null;
      await pool.end().catch(() => undefined);
      if (e instanceof WeirError) throw e;
      if ((e as { code?: unknown }).code === '42P01') throw invalid(`table ${this.target} does not exist (weir does not create the target table)`, { step: this.name, cause: e });
      throw new Error(`cannot connect to PostgreSQL for ${this.target}: ${messageOf(e)}`, { cause: e });
    }
    if (this.config.columns !== undefined) this.checkColumns(this.config.columns);
  }

  protected async setUp(_pool: Pool): Promise<void> {}

  protected checkColumns(columns: Iterable<string>): void {
    const unknown = [...columns].filter((c) => !this.tableColumns.has(c));
    if (unknown.length > 0) throw invalid(`table ${this.target} has no column ${unknown.map((c) => JSON.stringify(c)).join(', ')}`, { step: this.name });
  }

  /** Renders records as JSON objects of their row. */
  protected render(items: readonly T[], into: RowBatch): void {
    const { toRow, columns } = this.config;
    const keys = this.fixedKeys;
    for (let i = 0; i < items.length; i++) {
      const record = items[i];
      let row: unknown;
      if (toRow !== undefined) {
        try {
          row = toRow(record);
        } catch (e) {
          throw new WeirError('WEIR_USER_FUNCTION_FAILED', `toRow threw: ${messageOf(e)}`, { step: this.name, record, cause: e });
        }
      } else {
        row = record;
      }
      if (row === null || typeof row !== 'object') {
        throw new WeirError('WEIR_SINK_FAILED', `${toRow === undefined ? 'a record' : 'toRow'} is not an object (got ${row === null ? 'null' : typeof row}), so it has no columns`, { step: this.name, record });
      }
      if (keys !== null) {
        const r = row as Record<string, unknown>;
        let s = '{';
        for (let k = 0; k < keys.length; k++) s += (k === 0 ? '' : ',') + keys[k] + jsonOf(r[columns![k]]);
        into.texts.push(`${s}}`);
      } else {
        into.texts.push(jsonOf(row));
        for (const k in row) into.keys!.add(k);
      }
    }
  }

  protected newBatch(): RowBatch {
    return { texts: [], keys: this.fixedKeys === null ? new Set() : null };
  }

  /** The columns a batch fills (checked against the table in toRow-only mode). */
  protected columnsOf(batch: RowBatch): readonly string[] {
    if (batch.keys === null) return this.config.columns!;
    const cols = [...batch.keys];
    this.checkColumns(cols);
    return cols;
  }

  /** Splits rows into JSON arrays of at most `batchRows` rows and ~8 MB. */
  protected *chunks(texts: readonly string[]): Generator<{ first: number; json: string }> {
    let first = 0;
    while (first < texts.length) {
      let end = first;
      let chars = 2;
      while (end < texts.length && end - first < this.config.batchRows && (end === first || chars + texts[end].length + 1 <= MAX_STATEMENT_CHARS)) {
        chars += texts[end].length + 1;
        end++;
      }
      yield { first, json: `[${texts.slice(first, end).join(',')}]` };
      first = end;
    }
  }

  /** Runs `fn` in one transaction on one connection. */
  protected async transaction<R>(fn: (client: PoolClient) => Promise<R>): Promise<R> {
    await this.connect();
    const pool = this.pool;
    if (pool === null) throw new Error('the sink is closed');
    const client = await pool.connect();
    let ok = false;
    try {
      await client.query('BEGIN');
      const r = await fn(client);
      await client.query('COMMIT');
      ok = true;
      return r;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (this.poolError !== null && e instanceof Error && !(e instanceof WeirError)) e.message += ` (earlier: ${this.poolError.message})`;
      throw e;
    } finally {
      // A client that failed may be in any state: drop it rather than reuse it.
      client.release(ok ? undefined : true);
    }
  }

  /** `INSERT INTO target (cols) SELECT ... FROM <rows>`: converts each JSON row to the table's row type. */
  protected insertSelect(columns: readonly string[], from: string, jsonRow: string, order: string): string {
    const cols = columns.map((c) => quoteIdent(c, 'column'));
    return (
      `INSERT INTO ${this.target} (${cols.join(', ')}) ` +
      `SELECT ${cols.map((c) => `r.${c}`).join(', ')} FROM ${from} ` +
      `CROSS JOIN LATERAL jsonb_populate_record(NULL::${this.target}, ${jsonRow}) AS r ${order}`
    );
  }
}

/** `exactlyOnce: false`: each write inserts its batch. */
class PostgresAtLeastOnceSink<T> extends PostgresSinkBase<T> implements Sink<T> {
  write(items: readonly T[]): Promise<void> | void {
    if (items.length === 0) return;
    if (this.closed) throw new Error(`postgres sink ${this.name} is closed`);
    const batch = this.newBatch();
    this.render(items, batch);
    return this.insert(batch);
  }

  private async insert(batch: RowBatch): Promise<void> {
    await this.connect();
    const columns = this.columnsOf(batch);
    const sql = this.insertSelect(columns, 'jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(x, n)', 't.x', 'ORDER BY t.n');
    await this.transaction(async (c) => {
      for (const { json } of this.chunks(batch.texts)) await c.query(sql, [json]);
    });
  }
}

/** The default: two-phase commit through `weir_staging` and `weir_epochs`. */
class PostgresExactlyOnceSink<T> extends PostgresSinkBase<T> implements TransactionalSink<T> {
  readonly transactional = true as const;
  private readonly queue = new SerialQueue();
  private readonly staging: string;
  private readonly epochs: string;
  private job: string | undefined;
  private batch: RowBatch;
  private wroteBeforeStart = false;
  private starting: Promise<void> | null = null;
  private resumed = false;
  /** Epochs at or below it are committed (or pre-committed here): preCommit needs a higher one. */
  private floor = -1;

  constructor(config: PostgresConfig<T>) {
    super(config);
    this.staging = qualified(config.schema, 'weir_staging');
    this.epochs = qualified(config.schema, 'weir_epochs');
    this.job = config.job;
    this.batch = this.newBatch();
  }

  protected override onOpen(ctx: SinkContext): void {
    this.job ??= ctx.job;
  }

  write(items: readonly T[]): void {
    if (this.closed) throw new Error(`postgres sink ${this.name} is closed`);
    if (this.starting === null) this.wroteBeforeStart = true;
    this.render(items, this.batch);
  }

  preCommit(epoch: number): Promise<PostgresCommitHandle> {
    return this.queue.run(() => this.guard(`preCommit of epoch ${String(epoch)}`, async () => {
      checkEpoch(epoch, this.name);
      await this.start(false);
      if (epoch <= this.floor) throw invalid(`preCommit(${epoch}): epochs must increase, and epoch ${this.floor} is already committed or pre-committed`, { step: this.name });
      const batch = this.batch;
      this.batch = this.newBatch();
      const columns = this.columnsOf(batch);
      const handle: PostgresCommitHandle = { epoch, txn: this.txn(epoch), rows: batch.texts.length, columns: [...columns] };
      if (batch.texts.length > 0) {
        // The join with jsonb_populate_record converts every value to its column's type, so a value
        // the table cannot take fails this checkpoint rather than every later commit.
        const sql =
          `INSERT INTO ${this.staging} (job, sink, epoch, seq, "row") ` +
          `SELECT $1, $2, $3, $4::bigint + t.n - 1, t.x FROM jsonb_array_elements($5::jsonb) WITH ORDINALITY AS t(x, n) ` +
          `CROSS JOIN LATERAL jsonb_populate_record(NULL::${this.target}, t.x) AS r`;
        await this.transaction(async (c) => {
          await c.query(`DELETE FROM ${this.staging} WHERE job = $1 AND sink = $2 AND epoch = $3`, [this.job, this.name, epoch]);
          for (const { first, json } of this.chunks(batch.texts)) await c.query(sql, [this.job, this.name, epoch, first, json]);
        });
      }
      this.floor = epoch;
      return handle;
    }));
  }

  commit(handle: CommitHandle): Promise<void> {
    return this.queue.run(() => this.guard(`commit of epoch ${String(handle?.epoch)}`, async () => {
      await this.start(true);
      await this.commitOne(this.checkHandle(handle));
    }));
  }

  abort(handle: CommitHandle): Promise<void> {
    return this.queue.run(() => this.guard(`abort of epoch ${String(handle?.epoch)}`, async () => {
      await this.start(true);
      const h = this.checkHandle(handle);
      // A committed epoch has no staged rows left: this deletes nothing then.
      await this.transaction((c) => c.query(`DELETE FROM ${this.staging} WHERE job = $1 AND sink = $2 AND epoch = $3`, [this.job, this.name, h.epoch]));
    }));
  }

  recover(lastCommitted: readonly CommitHandle[]): Promise<void> {
    return this.queue.run(() => this.guard('recover', async () => {
      if (!Array.isArray(lastCommitted)) throw invalid(`recover expects an array of commit handles, got ${String(lastCommitted)}`, { step: this.name });
      if (this.wroteBeforeStart || (this.starting !== null && !this.resumed)) throw invalid('recover must come before the first write or preCommit', { step: this.name });
      await this.start(true);
      const handles = lastCommitted.map((h) => this.checkHandle(h)).sort((a, b) => a.epoch - b.epoch);
      for (const h of handles) await this.commitOne(h);
      const aborted = await this.transaction(async (c) => {
        const r = await c.query<{ epochs: string }>(
          `WITH d AS (DELETE FROM ${this.staging} WHERE job = $1 AND sink = $2 RETURNING epoch) SELECT count(DISTINCT epoch) AS epochs FROM d`,
          [this.job, this.name],
        );
        return Number(r.rows[0].epochs);
      });
      await this.loadFloor();
      const newest = handles.length > 0 ? handles[handles.length - 1].epoch : -1;
      if (this.floor > newest) {
        this.logger.warn({ committed: this.floor, checkpoint: newest }, 'the table already holds epochs past the checkpoint being recovered; new epochs must be numbered above them');
      }
      this.logger.info({ committed: handles.map((h) => h.epoch), abortedEpochs: aborted }, 'postgres sink recovered');
    }));
  }

  override async close(): Promise<void> {
    this.batch = this.newBatch();
    await super.close();
  }

  protected override async setUp(pool: Pool): Promise<void> {
    if (this.job === undefined) {
      throw invalid('sinks.postgres needs a job name for its transaction ids: give the job option (or run it in a pipeline, which passes its name)', { step: this.name });
    }
    const client = await pool.connect();
    let ok = false;
    try {
      await client.query('BEGIN');
      // Two sinks creating the tables at once would race in CREATE TABLE IF NOT EXISTS.
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('weir.sink-tables'))`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.staging} (job text NOT NULL, sink text NOT NULL, epoch bigint NOT NULL, seq bigint NOT NULL, "row" jsonb NOT NULL, PRIMARY KEY (job, sink, epoch, seq))`,
      );
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.epochs} (job text NOT NULL, sink text NOT NULL, epoch bigint NOT NULL, rows bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (job, sink, epoch))`,
      );
      await client.query('COMMIT');
      ok = true;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release(ok ? undefined : true);
    }
  }

  private start(resume: boolean): Promise<void> {
    if (this.starting === null) {
      this.resumed = resume && !this.wroteBeforeStart;
      this.starting = this.resumed ? this.resume() : this.freshStart();
    }
    return this.starting;
  }

  private async resume(): Promise<void> {
    await this.connect();
    await this.loadFloor();
  }

  private async freshStart(): Promise<void> {
    await this.connect();
    const r = await this.transaction(async (c) => {
      const staged = await c.query(`DELETE FROM ${this.staging} WHERE job = $1 AND sink = $2`, [this.job, this.name]);
      const markers = await c.query(`DELETE FROM ${this.epochs} WHERE job = $1 AND sink = $2`, [this.job, this.name]);
      return { staged: staged.rowCount, markers: markers.rowCount };
    });
    this.floor = -1;
    this.logger.info({ job: this.job, sink: this.name, droppedStagedRows: r.staged, droppedMarkers: r.markers }, 'postgres sink: fresh start (no recover), earlier transactions forgotten');
  }

  private async loadFloor(): Promise<void> {
    const r = await this.pool!.query<{ epoch: string | null }>(`SELECT max(epoch) AS epoch FROM ${this.epochs} WHERE job = $1 AND sink = $2`, [this.job, this.name]);
    this.floor = Math.max(this.floor, r.rows[0].epoch === null ? -1 : Number(r.rows[0].epoch));
  }

  private async commitOne(h: PostgresCommitHandle): Promise<void> {
    if (h.rows === 0) return;
    this.checkColumns(h.columns);
    const copy = this.insertSelect(h.columns, `${this.staging} AS s`, 's."row"', 'WHERE s.job = $1 AND s.sink = $2 AND s.epoch = $3 ORDER BY s.seq');
    await this.transaction(async (c) => {
      // The marker first: a second committer of the same epoch waits on its key, then finds it.
      const marked = await c.query(
        `INSERT INTO ${this.epochs} (job, sink, epoch, rows) VALUES ($1, $2, $3, $4) ON CONFLICT (job, sink, epoch) DO NOTHING`,
        [this.job, this.name, h.epoch, h.rows],
      );
      if (marked.rowCount === 0) return; // committed before
      const copied = await c.query(copy, [this.job, this.name, h.epoch]);
      if (copied.rowCount !== h.rows) {
        throw new WeirError('WEIR_SINK_TRANSACTION_LOST', `cannot commit ${h.txn}: ${copied.rowCount ?? 0} rows are staged for it in ${this.staging}, the handle says ${h.rows}`, { step: this.name });
      }
      await c.query(`DELETE FROM ${this.staging} WHERE job = $1 AND sink = $2 AND epoch = $3`, [this.job, this.name, h.epoch]);
      await c.query(`DELETE FROM ${this.epochs} WHERE job = $1 AND sink = $2 AND epoch <= $3`, [this.job, this.name, h.epoch - this.config.keepEpochs]);
    });
  }

  private txn(epoch: number): string {
    return `${this.job}/${this.name}/${epoch}`;
  }

  private checkHandle(handle: CommitHandle): PostgresCommitHandle {
    const h = handle as Partial<PostgresCommitHandle> | null;
    if (h === null || typeof h !== 'object') throw invalid(`not a commit handle: ${String(handle)}`, { step: this.name });
    const epoch = checkEpoch(h.epoch, this.name, 'handle epoch');
    const ok =
      h.txn === this.txn(epoch) &&
      typeof h.rows === 'number' && Number.isSafeInteger(h.rows) && h.rows >= 0 &&
      Array.isArray(h.columns) && (h.columns.length > 0 || h.rows === 0) && h.columns.every((c) => typeof c === 'string' && c !== '');
    if (!ok) throw invalid(`not a handle of this postgres sink (job ${JSON.stringify(this.job)}, sink ${JSON.stringify(this.name)}): ${JSON.stringify(handle)}`, { step: this.name });
    return { epoch, txn: h.txn!, rows: h.rows!, columns: h.columns! };
  }

  private guard<R>(what: string, step: () => Promise<R>): Promise<R> {
    return transactionStep(this.name, this.closed, what, step);
  }
}

function invalid(message: string, options: { step?: string; cause?: unknown } = {}): WeirError {
  return new WeirError('WEIR_INVALID_ARGUMENT', message, options);
}

/** A double-quoted SQL identifier; rejects what PostgreSQL cannot name. */
export function quoteIdent(id: unknown, what = 'identifier'): string {
  if (typeof id !== 'string' || id === '' || id.includes('\0')) throw invalid(`sinks.postgres: ${what} name must be a non-empty string without NUL, got ${JSON.stringify(id) ?? String(id)}`);
  return `"${id.replaceAll('"', '""')}"`;
}

function qualified(schema: string | undefined, name: string): string {
  return schema === undefined ? quoteIdent(name) : `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** JSON of a value; `undefined` and functions give `null`, bigints their decimal string. */
function jsonOf(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  }
  return s ?? 'null';
}

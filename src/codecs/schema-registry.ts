import { WeirError } from '../errors.js';

/**
 * A schema as a registry stores it: its JSON text (what Confluent's REST API speaks) or the parsed JSON
 * (an Avro schema object, or a primitive type name such as `'string'`).
 * @example const schema: SchemaDefinition = '{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}';
 */
export type SchemaDefinition = string | object;

/**
 * Where writer schemas live, by id: what the Confluent wire format's 4-byte schema id points to. Plug in
 * a client of a real registry (Confluent, Apicurio, ...) by implementing `register` and `lookup`; the
 * in-process {@link MemorySchemaRegistry} is the default.
 *
 * @example
 * // A Confluent Schema Registry client over fetch (sketch).
 * const confluent: SchemaRegistry = {
 *   async register(subject, schema) {
 *     const res = await fetch(`${url}/subjects/${subject}/versions`, { method: 'POST',
 *       headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
 *       body: JSON.stringify({ schema: typeof schema === 'string' ? schema : JSON.stringify(schema) }) });
 *     return ((await res.json()) as { id: number }).id;
 *   },
 *   async lookup(id) {
 *     const res = await fetch(`${url}/schemas/ids/${id}`);
 *     if (res.status === 404) return undefined;
 *     return ((await res.json()) as { schema: string }).schema;
 *   },
 * };
 * codecs.avro<User>({ schema: userSchema, registry: confluent, subject: 'users-value' });
 */
export interface SchemaRegistry {
  /**
   * Registers `schema` under `subject` and resolves to its global id. The same schema registered again
   * (under any subject) gets the same id.
   */
  register(subject: string, schema: SchemaDefinition): Promise<number>;
  /**
   * The schema with this id, or `undefined` when the registry has none (the bytes that name it are bad
   * data: decoding them fails record by record). Rejects only when the registry cannot be asked.
   */
  lookup(id: number): Promise<SchemaDefinition | undefined>;
  /** In-process registries may answer synchronously: codecs then need no `open`/`prepare` before use. */
  registerSync?(subject: string, schema: SchemaDefinition): number;
  /** Synchronous {@link SchemaRegistry.lookup}, for in-process registries. */
  lookupSync?(id: number): SchemaDefinition | undefined;
}

/**
 * An in-process schema registry: ids are assigned from 1 in registration order; the same schema (same
 * JSON, whatever its key order or whether given as text or object) gets the same id under every
 * subject. It lives in one thread of one process: bytes it framed are only readable where the same ids
 * were assigned, so use a real registry for data that outlives the job or crosses processes.
 *
 * @example
 * const registry = codecs.schemaRegistry.memory({ isolated: true });
 * const id = await registry.register('users-value', userSchema);
 * registry.lookupSync(id); // the schema again
 */
export class MemorySchemaRegistry implements SchemaRegistry {
  private readonly idsByCanonical = new Map<string, number>();
  private readonly schemasById = new Map<number, SchemaDefinition>();
  private readonly versionsBySubject = new Map<string, number[]>();
  private nextId = 1;

  register(subject: string, schema: SchemaDefinition): Promise<number> {
    try {
      return Promise.resolve(this.registerSync(subject, schema));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  lookup(id: number): Promise<SchemaDefinition | undefined> {
    return Promise.resolve(this.lookupSync(id));
  }

  registerSync(subject: string, schema: SchemaDefinition): number {
    if (typeof subject !== 'string' || subject === '') throw new WeirError('WEIR_INVALID_ARGUMENT', `schema registry: expected a subject name, got ${String(subject)}`);
    const key = canonicalJson(schema);
    let id = this.idsByCanonical.get(key);
    if (id === undefined) {
      id = this.nextId++;
      this.idsByCanonical.set(key, id);
      this.schemasById.set(id, typeof schema === 'string' ? schema : structuredClone(schema));
    }
    let versions = this.versionsBySubject.get(subject);
    if (versions === undefined) this.versionsBySubject.set(subject, (versions = []));
    if (!versions.includes(id)) versions.push(id);
    return id;
  }

  lookupSync(id: number): SchemaDefinition | undefined {
    return this.schemasById.get(id);
  }

  /** The subjects registered so far. */
  subjects(): string[] {
    return [...this.versionsBySubject.keys()];
  }

  /** The ids registered under `subject`, oldest first (its versions 1, 2, ...). */
  versions(subject: string): number[] {
    return [...(this.versionsBySubject.get(subject) ?? [])];
  }
}

let shared: MemorySchemaRegistry | undefined;

/**
 * The process-wide in-memory registry (what codecs use without a `registry` option), or with
 * `{ isolated: true }` a new, empty one.
 * @example codecs.avro<User>({ schema, registry: codecs.schemaRegistry.memory({ isolated: true }) })
 */
export function memorySchemaRegistry(opts: { isolated?: boolean } = {}): MemorySchemaRegistry {
  if (opts.isolated === true) return new MemorySchemaRegistry();
  shared ??= new MemorySchemaRegistry();
  return shared;
}

/** Stable JSON text of a schema: object keys sorted, so key order does not change the id. */
function canonicalJson(schema: SchemaDefinition): string {
  let value: unknown = schema;
  if (typeof schema === 'string') {
    try {
      value = JSON.parse(schema);
    } catch {
      value = schema; // a bare type name, e.g. string
    }
  } else if (typeof schema !== 'object' || schema === null) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', `schema registry: a schema is JSON text or a JSON object, got ${schema === null ? 'null' : typeof schema}`);
  }
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as tfjs from '@tensorflow/tfjs';
import type { Logger } from 'pino';
import { WeirError, messageOf } from '../../errors.js';
import { defaultLogger } from '../../observability/logger.js';

/** The TensorFlow.js namespace (`import * as tf from '@tensorflow/tfjs'`), as the resolved backend provides it. */
export type Tf = typeof tfjs;

/**
 * Which TensorFlow.js backend to run models on. `'auto'` (the default) takes the first that loads:
 * `'node-gpu'` (@tensorflow/tfjs-node-gpu, CUDA), `'node'` (@tensorflow/tfjs-node, native
 * TensorFlow on the CPU), `'wasm'` (@tensorflow/tfjs-backend-wasm), `'cpu'` (plain JavaScript).
 */
export type MlBackend = 'auto' | 'node-gpu' | 'node' | 'wasm' | 'cpu';

/** Options of {@link resolveBackend}. */
export interface BackendOptions {
  /** Force a backend (default: `WEIR_ML_BACKEND`, else `'auto'`). A forced one that cannot load is an error. */
  backend?: MlBackend;
  /** Where the choice is logged (default: weir's pino logger at `WEIR_LOG_LEVEL`). */
  logger?: Logger;
  /**
   * TensorFlow.js production mode (default true): no debug checks, and no "install tfjs-node" banner
   * on stderr. It is a process-wide TensorFlow.js setting.
   */
  prodMode?: boolean;
  /** @internal How packages are imported (tests simulate installed or missing packages). */
  importer?: (specifier: string) => Promise<unknown>;
}

/** The backend models run on, as resolved. */
export interface TfRuntime {
  /** The TensorFlow.js namespace to use with it (tensors, `loadLayersModel`, ...). */
  readonly tf: Tf;
  /** The TensorFlow.js backend name: `'tensorflow'` (tfjs-node, tfjs-node-gpu), `'wasm'` or `'cpu'`. */
  readonly backend: string;
  /** The package that provides it. */
  readonly package: string;
  /**
   * The device really used. tfjs-node-gpu runs on the CPU when it finds no usable GPU (no CUDA or
   * cuDNN), without an error: then this says `'cpu'` (and a warning is logged).
   */
  readonly device: 'gpu' | 'cpu';
  /** What was asked for. */
  readonly requested: MlBackend;
  /** The packages tried before it, and why each was skipped. */
  readonly skipped: readonly { readonly package: string; readonly reason: string }[];
}

interface Candidate {
  readonly kind: Exclude<MlBackend, 'auto'>;
  readonly package: string;
  readonly backend: string;
}

const CANDIDATES: readonly Candidate[] = [
  { kind: 'node-gpu', package: '@tensorflow/tfjs-node-gpu', backend: 'tensorflow' },
  { kind: 'node', package: '@tensorflow/tfjs-node', backend: 'tensorflow' },
  { kind: 'wasm', package: '@tensorflow/tfjs-backend-wasm', backend: 'wasm' },
  { kind: 'cpu', package: '@tensorflow/tfjs', backend: 'cpu' },
];

const KINDS = new Set<string>(['auto', ...CANDIDATES.map((c) => c.kind)]);

const resolved = new Map<MlBackend, Promise<TfRuntime>>();
let mlLogger: Logger | null = null;

/** weir's logger for model loading (created on first use). */
export function scoringLogger(): Logger {
  return (mlLogger ??= defaultLogger('weir-ml'));
}

/**
 * Resolves the TensorFlow.js backend at run time and makes it the active one: tries
 * @tensorflow/tfjs-node-gpu, then @tensorflow/tfjs-node, then @tensorflow/tfjs with the wasm backend,
 * then the plain CPU backend (or only the one forced with `backend`), each through a dynamic
 * `import()`, so a package that is not installed is simply skipped. Logs what it chose, the device
 * really used, and what it skipped. The result is cached per requested backend.
 *
 * @example
 * const { tf, backend, device } = await ml.tfjs.resolve();        // e.g. 'wasm', 'cpu'
 * const { tf } = await ml.tfjs.resolve({ backend: 'cpu' });       // forced
 */
export async function resolveBackend(opts: BackendOptions = {}): Promise<TfRuntime> {
  const requested = requestedBackend(opts.backend);
  if (opts.importer !== undefined) return resolveNow(requested, opts);
  let p = resolved.get(requested);
  if (p === undefined) {
    p = resolveNow(requested, opts);
    resolved.set(requested, p);
    p.catch(() => resolved.delete(requested));
  }
  const rt = await p;
  // Another backend may have been made active since (one process, one active TensorFlow.js backend).
  if (rt.tf.getBackend() !== rt.backend) await rt.tf.setBackend(rt.backend);
  return rt;
}

function requestedBackend(b: MlBackend | undefined): MlBackend {
  const r = b ?? (process.env.WEIR_ML_BACKEND as MlBackend | undefined) ?? 'auto';
  if (!KINDS.has(r)) throw new WeirError('WEIR_INVALID_ARGUMENT', `ml backend ${JSON.stringify(r)} is not one of ${[...KINDS].join(', ')}`);
  return r;
}

async function resolveNow(requested: MlBackend, opts: BackendOptions): Promise<TfRuntime> {
  const logger = opts.logger ?? scoringLogger();
  const importer = opts.importer ?? ((s: string) => import(s));
  const candidates = requested === 'auto' ? CANDIDATES : CANDIDATES.filter((c) => c.kind === requested);
  const skipped: { package: string; reason: string }[] = [];
  for (const c of candidates) {
    let tf: Tf;
    try {
      tf = await activate(c, importer, opts.prodMode ?? true);
    } catch (e) {
      const reason = missing(e, c.package) ? 'not installed' : messageOf(e);
      skipped.push({ package: c.package, reason });
      logger.debug({ package: c.package, reason }, 'tfjs backend skipped');
      continue;
    }
    const device = deviceOf(tf, c);
    const rt: TfRuntime = { tf, backend: c.backend, package: c.package, device, requested, skipped };
    if (c.kind === 'node-gpu' && device === 'cpu') {
      logger.warn({ package: c.package }, 'tfjs-node-gpu loaded but TensorFlow found no usable GPU (CUDA / cuDNN missing or incompatible): models run on the CPU');
    }
    logger.info({ backend: c.backend, package: c.package, device, requested, tfjs: versionOf(tf), skipped }, `tfjs backend: ${c.backend} on ${device}`);
    return rt;
  }
  const tried = skipped.map((s) => `${s.package}: ${s.reason}`).join('; ');
  throw new WeirError('WEIR_ML_BACKEND_MISSING', requested === 'auto'
    ? `no TensorFlow.js backend could be loaded (${tried}): npm install @tensorflow/tfjs`
    : `TensorFlow.js backend ${requested} cannot be loaded (${tried}): install ${candidates[0].package}, or use backend: 'auto'`);
}

/** Imports a candidate's packages and makes its backend the active one; throws if it cannot start. */
async function activate(c: Candidate, importer: (s: string) => Promise<unknown>, prodMode: boolean): Promise<Tf> {
  let tf: Tf;
  if (c.kind === 'node-gpu' || c.kind === 'node') {
    // tfjs-node re-exports @tensorflow/tfjs and registers the 'tensorflow' backend on import.
    tf = namespaceOf(await importer(c.package));
  } else {
    tf = namespaceOf(await importer('@tensorflow/tfjs'));
    if (c.kind === 'wasm') {
      const wasm = (await importer(c.package)) as { setWasmPaths?: (p: string) => void; default?: { setWasmPaths?: (p: string) => void } };
      const dir = wasmDir();
      const setPaths = wasm.setWasmPaths ?? wasm.default?.setWasmPaths;
      if (dir !== null && setPaths !== undefined && !wasmPathsSet) {
        setPaths(dir);
        wasmPathsSet = true;
      }
    }
  }
  if (prodMode) tf.enableProdMode();
  const ok = await tf.setBackend(c.backend);
  if (!ok) throw new Error(`backend ${c.backend} failed to initialise`);
  await tf.ready();
  return tf;
}

/** setWasmPaths must be called before the wasm backend first initialises, and only then. */
let wasmPathsSet = false;

/** The dist directory of @tensorflow/tfjs-backend-wasm, where its .wasm files ship (null if not found). */
function wasmDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    return existsSync(path.join(dir, 'tfjs-backend-wasm.wasm')) ? dir + path.sep : null;
  } catch {
    return null;
  }
}

function namespaceOf(mod: unknown): Tf {
  const m = mod as Record<string, unknown> & { default?: Record<string, unknown> };
  if (typeof m.setBackend === 'function') return m as unknown as Tf;
  if (m.default && typeof m.default.setBackend === 'function') return m.default as unknown as Tf;
  throw new Error('the module is not TensorFlow.js (no setBackend)');
}

function deviceOf(tf: Tf, c: Candidate): 'gpu' | 'cpu' {
  if (c.backend !== 'tensorflow') return 'cpu';
  const b = tf.backend() as unknown as { isUsingGpuDevice?: boolean };
  return b.isUsingGpuDevice === true ? 'gpu' : 'cpu';
}

function versionOf(tf: Tf): string | undefined {
  const v = (tf as unknown as { version?: Record<string, string> }).version;
  return v?.['tfjs-core'] ?? v?.tfjs;
}

/** The package itself is missing (not: it is there but a file or native binary it needs is not). */
function missing(e: unknown, pkg: string): boolean {
  const code = (e as { code?: string } | null)?.code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && messageOf(e).includes(`'${pkg}'`);
}

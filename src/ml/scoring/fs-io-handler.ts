import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { io } from '@tensorflow/tfjs';
import { WeirError, messageOf } from '../../errors.js';

/** The file name of a saved model's topology and weights manifest. */
export const MODEL_JSON = 'model.json';
/** The file name {@link fileSystemIO} saves weights to (one shard). */
export const WEIGHTS_BIN = 'weights.bin';

/** A model read from disk: its artifacts, and a short hash of model.json and the weight shards. */
export interface LoadedArtifacts {
  readonly artifacts: io.ModelArtifacts;
  /** `'layers-model'` or `'graph-model'`. */
  readonly format: 'layers-model' | 'graph-model';
  /** The first 12 hex digits of a SHA-256 over model.json and the shards: the default model version. */
  readonly hash: string;
  /** The model.json read. */
  readonly jsonPath: string;
}

/**
 * A TensorFlow.js IO handler on the local file system that needs nothing but `node:fs` (so it works
 * with pure @tensorflow/tfjs, which has no `file://` loader). `target` is a model directory (its
 * `model.json`) or the path of a `model.json`.
 *
 * - `load()` reads model.json and every weight shard its manifest names (paths relative to it) into
 *   `tf.io.ModelArtifacts`, for `tf.loadLayersModel(handler)` / `tf.loadGraphModel(handler)`.
 * - `save(artifacts)` writes `weights.bin` and `model.json` (model.json last, each through a
 *   temporary file and a rename, so a reader never sees a manifest without its weights).
 *
 * @example
 * await model.save(fileSystemIO('./models/fraud'));
 * const same = await tf.loadLayersModel(fileSystemIO('./models/fraud'));
 */
export function fileSystemIO(target: string): io.IOHandler {
  return {
    load: async () => (await readArtifacts(target)).artifacts,
    save: (artifacts) => writeArtifacts(target, artifacts),
  };
}

/** Where model.json is for `target` (a directory or the json file itself). */
export async function modelJsonPath(target: string): Promise<string> {
  try {
    const s = await stat(target);
    return s.isDirectory() ? path.join(target, MODEL_JSON) : target;
  } catch (e) {
    throw new WeirError('WEIR_MODEL_FAILED', `model load failed: ${target} cannot be read: ${messageOf(e)}`, { cause: e });
  }
}

/** Reads model.json and its weight shards (see {@link fileSystemIO}). */
export async function readArtifacts(target: string): Promise<LoadedArtifacts> {
  const jsonPath = await modelJsonPath(target);
  const fail = (what: string, cause?: unknown): WeirError =>
    new WeirError('WEIR_MODEL_FAILED', `model load failed: ${jsonPath}: ${what}${cause === undefined ? '' : `: ${messageOf(cause)}`}`, { cause });
  let text: string;
  try {
    text = await readFile(jsonPath, 'utf8');
  } catch (e) {
    throw fail('cannot be read', e);
  }
  let json: io.ModelJSON;
  try {
    json = JSON.parse(text) as io.ModelJSON;
  } catch (e) {
    throw fail('is not JSON', e);
  }
  if (json === null || typeof json !== 'object' || json.modelTopology === undefined) throw fail('has no modelTopology: not a TensorFlow.js model.json');
  const hash = createHash('sha256').update(text);
  const dir = path.dirname(jsonPath);
  const weightSpecs: io.WeightsManifestEntry[] = [];
  const shards: ArrayBuffer[] = [];
  for (const group of json.weightsManifest ?? []) {
    for (const p of group.paths) {
      if (path.isAbsolute(p) || /^[a-z][a-z0-9+.-]*:\/\//i.test(p)) throw fail(`weight path ${JSON.stringify(p)} is not relative to model.json`);
      let buf: Buffer;
      try {
        buf = await readFile(path.resolve(dir, p));
      } catch (e) {
        throw fail(`weight shard ${p} cannot be read`, e);
      }
      hash.update(buf);
      shards.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
    }
    weightSpecs.push(...group.weights);
  }
  const topology = json.modelTopology as { node?: unknown; class_name?: unknown };
  const format = json.format === 'graph-model' || Array.isArray(topology.node) ? 'graph-model' : 'layers-model';
  const artifacts: io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs,
    weightData: shards.length === 1 ? shards[0] : shards,
  };
  if (json.trainingConfig !== undefined) artifacts.trainingConfig = json.trainingConfig;
  if (json.signature !== undefined) artifacts.signature = json.signature;
  if (json.userDefinedMetadata !== undefined) artifacts.userDefinedMetadata = json.userDefinedMetadata;
  if (json.modelInitializer !== undefined) artifacts.modelInitializer = json.modelInitializer;
  if (json.initializerSignature !== undefined) artifacts.initializerSignature = json.initializerSignature;
  return { artifacts, format, hash: hash.digest('hex').slice(0, 12), jsonPath };
}

async function writeArtifacts(target: string, artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new WeirError('WEIR_INVALID_ARGUMENT', 'saving a model with a binary (protobuf) topology is not supported: save it as JSON');
  }
  const dir = target.endsWith('.json') ? path.dirname(target) : target;
  const jsonPath = target.endsWith('.json') ? target : path.join(dir, MODEL_JSON);
  await mkdir(dir, { recursive: true });
  const data = artifacts.weightData;
  const parts = data === undefined ? [] : Array.isArray(data) ? data : [data];
  const weights = Buffer.concat(parts.map((b) => new Uint8Array(b)));
  const json: io.ModelJSON = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
  };
  if (artifacts.trainingConfig !== undefined) json.trainingConfig = artifacts.trainingConfig;
  if (artifacts.signature !== undefined) json.signature = artifacts.signature;
  if (artifacts.userDefinedMetadata !== undefined) json.userDefinedMetadata = artifacts.userDefinedMetadata;
  if (artifacts.modelInitializer !== undefined) json.modelInitializer = artifacts.modelInitializer;
  if (artifacts.initializerSignature !== undefined) json.initializerSignature = artifacts.initializerSignature;
  const text = JSON.stringify(json);
  await replaceFile(path.join(dir, WEIGHTS_BIN), weights);
  await replaceFile(jsonPath, text);
  return {
    modelArtifactsInfo: {
      dateSaved: new Date(),
      modelTopologyType: 'JSON',
      modelTopologyBytes: JSON.stringify(json.modelTopology).length,
      weightSpecsBytes: JSON.stringify(json.weightsManifest[0].weights).length,
      weightDataBytes: weights.length,
    },
  };
}

async function replaceFile(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

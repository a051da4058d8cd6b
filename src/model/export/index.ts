/**
 * TF.js → ONNX export, without TensorFlow.js (the device can convert models too).
 *
 * - `exportModel`: the facegate recognition model: uint8 `pixels` → preprocessing →
 *   backbone → pooled `features` (→ head → `embedding`, `probabilities`), one graph.
 * - `convertTfjsModel` / `convertGraphModel`: any supported TF.js model (e.g. the
 *   `@vladmandic/human` face models) with its native inputs and outputs.
 */
import path from 'node:path';
import { FacegateError, ModelError } from '../../shared/errors.js';
import { moduleLogger } from '../../shared/logger.js';
import type { BackboneName } from '../manifest.js';
import { attr, encodeModel, GraphBuilder } from '../onnx/builder.js';
import { Emitter, type Value } from './emitter.js';
import { convertGraph, graphPlaceholders } from './graph.js';
import { convertLayers, parseLayersTopology } from './layers.js';
import { optimiseGraph } from './optimise.js';
import type { TfjsArtifacts } from './tfjs.js';

export { readTfjsModel, artifactsFromMemory, decodeWeights, type TfjsArtifacts, type Weight } from './tfjs.js';
export { supportedLayers } from './layers.js';
export { humanModelJson } from '../builtin.js';
export { supportedOps } from './graph.js';

const log = moduleLogger('export');

/** Version of the exported graph contract (bump when inputs/outputs/metadata change). */
export const EXPORT_FORMAT_VERSION = '1';
const OPSET = 17;

/** Where each backbone is cut: the node whose (pooled) output is the feature vector. */
export const backboneFeatureNodes: Record<BackboneName, string> = {
  mobilenet_v1: 'conv_pw_13_relu',
  faceres: 'global_pooling/Mean',
};

export const PIXELS_INPUT = 'pixels';
export const OUTPUT_NAMES = { probabilities: 'probabilities', embedding: 'embedding', features: 'features' } as const;

export interface Preprocessing {
  /** The graph computes `pixel * scale + offset` on 0..255 RGB values. */
  readonly scale: number;
  readonly offset: number;
}

export interface ExportOptions {
  readonly backbone: { readonly name: BackboneName; readonly artifacts: TfjsArtifacts; readonly alpha?: number };
  /** The trained head (TF.js LayersModel on the pooled features); none → backbone-only graph. */
  readonly head?: TfjsArtifacts;
  readonly preprocessing: Preprocessing;
  /** Extra metadata_props (labels, version, thresholds…); they override the defaults. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** What `exportModelDetailed` reports about the graph it built. */
export interface ExportInfo {
  readonly height: number;
  readonly width: number;
  readonly featureSize: number;
  readonly featureNode: string;
  /** Set when a head was exported. */
  readonly classes?: number;
  readonly embeddingSize?: number;
  readonly outputs: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly nodes: number;
}

function checkKind(artifacts: TfjsArtifacts, kind: 'layers' | 'graph', what: string): void {
  if (artifacts.kind !== kind) {
    throw new ModelError(
      `${what} ${artifacts.source} is a TF.js ${artifacts.kind === 'layers' ? 'LayersModel' : 'GraphModel'}; expected a ${kind === 'layers' ? 'LayersModel' : 'GraphModel'}`,
    );
  }
}

/** uint8 NHWC pixels → float, `x*scale+offset`, NCHW. */
function preprocess(e: Emitter, height: number, width: number, p: Preprocessing): Value {
  const g = e.g;
  const pixels = g.input(PIXELS_INPUT, 'uint8', ['batch', height, width, 3]);
  let x = g.op('Cast', [pixels], { to: attr.i(1) }, { name: 'preprocess/cast' });
  if (p.scale !== 1) x = g.op('Mul', [x, e.scalar('preprocess/scale', p.scale)], {}, { name: 'preprocess/scale' });
  if (p.offset !== 0) x = g.op('Add', [x, e.scalar('preprocess/offset', p.offset)], {}, { name: 'preprocess/offset' });
  return { name: x, shape: [null, height, width, 3], layout: 'native' };
}

function backboneInputSize(b: ExportOptions['backbone']): [number, number] {
  if (b.name === 'mobilenet_v1') {
    const graph = parseLayersTopology(b.artifacts.topology, b.artifacts.source);
    const shape = graph.inputShapes.get(graph.inputs[0] ?? '') ?? [];
    return [shape[1] ?? 224, shape[2] ?? 224];
  }
  const shape = graphPlaceholders(b.artifacts)[0]?.shape ?? [];
  return [shape[1] ?? 224, shape[2] ?? 224];
}

/**
 * Runs a conversion; an error that is not one of ours (a malformed but parseable
 * model.json can trip the converter anywhere) becomes a ModelError naming the model.
 */
function guarded<T>(source: string, convert: () => T): T {
  try {
    return convert();
  } catch (err) {
    if (err instanceof FacegateError) throw err;
    throw new ModelError(
      `cannot convert ${source}: ${(err as Error).message}. The model.json is malformed or uses a form the exporter does not know.`,
      { cause: err },
    );
  }
}

/** Builds the facegate graph; returns the ONNX bytes and what it contains. */
export function exportModelDetailed(options: ExportOptions): { bytes: Uint8Array; info: ExportInfo } {
  return guarded(
    options.head ? `${options.backbone.artifacts.source} + ${options.head.source}` : options.backbone.artifacts.source,
    () => buildExport(options),
  );
}

function buildExport(options: ExportOptions): { bytes: Uint8Array; info: ExportInfo } {
  const { backbone } = options;
  checkKind(backbone.artifacts, backbone.name === 'mobilenet_v1' ? 'layers' : 'graph', `backbone ${backbone.name}`);
  const g = new GraphBuilder('facegate');
  const e = new Emitter(g);
  const [height, width] = backboneInputSize(backbone);
  const x = preprocess(e, height, width, options.preprocessing);
  const featureNode = backboneFeatureNodes[backbone.name];

  let features: Value;
  if (backbone.name === 'mobilenet_v1') {
    const [map] = convertLayers(e, backbone.artifacts, { inputs: [x], outputs: [featureNode] });
    features = e.globalAveragePool(map as Value, 'features/pool');
  } else {
    const placeholder = graphPlaceholders(backbone.artifacts)[0];
    if (!placeholder) throw new ModelError(`backbone ${backbone.artifacts.source} has no input (Placeholder) node`);
    const { values } = convertGraph(e, backbone.artifacts, {
      inputs: new Map([[placeholder.name, x]]),
      outputs: [featureNode],
    });
    features = values[0] as Value;
  }
  const featureSize = features.shape[1];
  if (features.shape.length !== 2 || typeof featureSize !== 'number') {
    throw new ModelError(`backbone ${backbone.name}: ${featureNode} does not give a [batch, features] vector`);
  }

  const outputs: string[] = [];
  let classes: number | undefined;
  let embeddingSize: number | undefined;
  if (options.head) {
    checkKind(options.head, 'layers', 'head');
    const head = parseLayersTopology(options.head.topology, options.head.source);
    const headIn = head.inputShapes.get(head.inputs[0] ?? '')?.[1];
    if (typeof headIn === 'number' && headIn !== featureSize) {
      throw new ModelError(
        `the head ${options.head.source} takes ${headIn} features but the ${backbone.name} backbone gives ${featureSize}: it was trained on another backbone`,
      );
    }
    const outLayer = head.outputs[0];
    if (!outLayer) throw new ModelError(`head ${options.head.source} has no output layer`);
    let embLayer = head.layers.find((l) => l.name === OUTPUT_NAMES.embedding)?.name;
    if (!embLayer) {
      // The last hidden layer: the input of the final Dense.
      embLayer = head.layers.find((l) => l.name === outLayer)?.inputs[0];
      log.warn({ layer: embLayer }, 'head has no layer named "embedding"; using the last hidden layer');
    }
    if (!embLayer) throw new ModelError(`head ${options.head.source}: cannot find the embedding layer`);
    const [probs, emb] = convertLayers(e, options.head, { inputs: [features], outputs: [outLayer, embLayer] });
    if (!probs || !emb) throw new ModelError(`head ${options.head.source} did not convert`);
    e.output(probs, OUTPUT_NAMES.probabilities);
    e.output(emb, OUTPUT_NAMES.embedding);
    outputs.push(OUTPUT_NAMES.probabilities, OUTPUT_NAMES.embedding);
    classes = probs.shape[1] ?? undefined;
    embeddingSize = emb.shape[1] ?? undefined;
  }
  e.output(features, OUTPUT_NAMES.features);
  outputs.push(OUTPUT_NAMES.features);
  optimiseGraph(g);

  const metadata: Record<string, string> = {
    format: 'facegate-onnx',
    format_version: EXPORT_FORMAT_VERSION,
    backbone: backbone.name,
    ...(backbone.alpha !== undefined ? { backbone_alpha: String(backbone.alpha) } : {}),
    feature_node: featureNode,
    feature_size: String(featureSize),
    input: JSON.stringify({ name: PIXELS_INPUT, dtype: 'uint8', layout: 'NHWC', height, width, channels: 3 }),
    preprocessing: JSON.stringify({ scale: options.preprocessing.scale, offset: options.preprocessing.offset }),
    outputs: JSON.stringify(outputs),
    ...options.metadata,
  };
  const model = g.build({
    opset: OPSET,
    metadata,
    docString: `facegate ${backbone.name} ${options.head ? 'recognition model' : 'feature extractor'}`,
  });
  log.debug({ backbone: backbone.name, nodes: g.nodes.length, featureSize, classes }, 'exported');
  return {
    bytes: encodeModel(model),
    info: {
      height,
      width,
      featureSize,
      featureNode,
      outputs,
      metadata,
      nodes: g.nodes.length,
      ...(classes !== undefined ? { classes } : {}),
      ...(embeddingSize !== undefined ? { embeddingSize } : {}),
    },
  };
}

/**
 * The facegate model as ONNX bytes: input `pixels` uint8 [batch,H,W,3]; outputs
 * `probabilities`, `embedding` (with a head) and `features`.
 */
export function exportModel(options: ExportOptions): Uint8Array {
  return exportModelDetailed(options).bytes;
}

export interface ConvertOptions {
  /** Node (GraphModel) or layer (LayersModel) names to output; the model's own outputs by default. */
  readonly outputs?: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
  /** GraphModel only: Placeholder shapes to use instead of the stored ones (see ConvertGraphOptions). */
  readonly inputShapes?: ReadonlyMap<string, readonly (number | null)[]>;
}

function finish(
  g: GraphBuilder,
  e: Emitter,
  names: readonly string[],
  values: readonly Value[],
  artifacts: TfjsArtifacts,
  options: ConvertOptions,
): Uint8Array {
  names.forEach((n, i) => e.output(values[i] as Value, n));
  optimiseGraph(g);
  const model = g.build({
    opset: OPSET,
    metadata: { source: path.basename(artifacts.source), converted_by: 'facegate export', ...options.metadata },
    docString: `converted from TF.js ${artifacts.kind === 'graph' ? 'GraphModel' : 'LayersModel'} ${path.basename(artifacts.source)}`,
  });
  return encodeModel(model);
}

/**
 * A TF.js GraphModel as ONNX with its native inputs (float32 NHWC, same names as
 * its Placeholders) and outputs (named after their nodes).
 */
export function convertGraphModel(artifacts: TfjsArtifacts, options: ConvertOptions = {}): Uint8Array {
  checkKind(artifacts, 'graph', 'model');
  return guarded(artifacts.source, () => {
    const g = new GraphBuilder(path.basename(artifacts.source, '.json'));
    const e = new Emitter(g);
    const { names, values } = convertGraph(e, artifacts, {
      ...(options.outputs ? { outputs: options.outputs } : {}),
      ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
    });
    return finish(g, e, names, values, artifacts, options);
  });
}

/** A TF.js LayersModel as ONNX: float32 NHWC inputs named after its input layers; outputs named after layers. */
export function convertLayersModel(artifacts: TfjsArtifacts, options: ConvertOptions = {}): Uint8Array {
  checkKind(artifacts, 'layers', 'model');
  return guarded(artifacts.source, () => {
    const g = new GraphBuilder(path.basename(artifacts.source, '.json'));
    const e = new Emitter(g);
    const names = options.outputs ?? parseLayersTopology(artifacts.topology, artifacts.source).outputs;
    const values = convertLayers(e, artifacts, { outputs: names });
    return finish(g, e, names, values, artifacts, options);
  });
}

/** Either kind of TF.js model. */
export function convertTfjsModel(artifacts: TfjsArtifacts, options: ConvertOptions = {}): Uint8Array {
  return artifacts.kind === 'graph' ? convertGraphModel(artifacts, options) : convertLayersModel(artifacts, options);
}

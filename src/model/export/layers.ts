/**
 * TF.js LayersModel (Keras topology) → ONNX nodes. Handles Sequential and functional
 * ("Model" / "Functional") topologies in the Keras 2 JSON form that TF.js writes.
 */
import { z } from 'zod';
import { ModelError, UnsupportedError } from '../../shared/errors.js';
import { activationNames, type Activation, type Const, type Emitter, type Padding, type Value } from './emitter.js';
import type { TfjsArtifacts, Weight } from './tfjs.js';
import { attr } from '../onnx/builder.js';

/** Layer class names this converter handles. */
export const supportedLayers = [
  'InputLayer',
  'Conv2D',
  'DepthwiseConv2D',
  'BatchNormalization',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'PReLU',
  'Softmax',
  'ZeroPadding2D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'MaxPooling2D',
  'AveragePooling2D',
  'Dense',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Flatten',
  'Reshape',
  'Add',
  'Multiply',
  'Concatenate',
  'Sequential',
  'Model',
  'Functional',
] as const;

const layerSchema = z
  .object({
    class_name: z.string(),
    name: z.string().optional(),
    config: z.record(z.string(), z.unknown()).default({}),
    inbound_nodes: z.array(z.unknown()).optional(),
  })
  .loose();
type RawLayer = z.infer<typeof layerSchema>;

interface Layer {
  readonly className: string;
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly inputs: readonly string[];
}

export interface LayersGraph {
  readonly layers: readonly Layer[];
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Input shapes (TF order, null batch) by input layer name. */
  readonly inputShapes: ReadonlyMap<string, readonly (number | null)[]>;
}

function inboundNames(raw: RawLayer, name: string): string[] {
  const nodes = raw.inbound_nodes ?? [];
  if (nodes.length === 0) return [];
  if (nodes.length > 1)
    throw new UnsupportedError(
      `layer ${name} (${raw.class_name}) is shared (called ${nodes.length} times); shared layers are not supported`,
    );
  const node = nodes[0];
  // Keras 2: [[layerName, nodeIndex, tensorIndex, kwargs], ...]
  if (Array.isArray(node)) {
    return node.map((entry) => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string')
        throw new ModelError(`layer ${name}: malformed inbound_nodes`);
      return entry[0];
    });
  }
  // Keras 3: { args: [{ class_name: '__keras_tensor__', config: { keras_history: [name, 0, 0] } }] }
  const args = (node as { args?: unknown[] }).args ?? [];
  const out: string[] = [];
  const visit = (a: unknown): void => {
    if (Array.isArray(a)) {
      a.forEach(visit);
      return;
    }
    const hist = (a as { config?: { keras_history?: unknown[] } } | null)?.config?.keras_history;
    if (Array.isArray(hist) && typeof hist[0] === 'string') out.push(hist[0]);
  };
  visit(args);
  return out;
}

function shapeFrom(config: Record<string, unknown>): (number | null)[] | undefined {
  const s = config.batch_input_shape ?? config.batch_shape;
  if (Array.isArray(s)) return s.map((d) => (typeof d === 'number' ? d : null));
  return undefined;
}

/** The input shape of a model used as the first layer of a Sequential (its InputLayer's). */
function nestedInputShape(raw: RawLayer): (number | null)[] | undefined {
  const layers = (raw.config as { layers?: unknown }).layers;
  if (!Array.isArray(layers)) return undefined;
  for (const l of layers) {
    const parsed = layerSchema.safeParse(l);
    if (!parsed.success) continue;
    if (parsed.data.class_name === 'InputLayer') return shapeFrom(parsed.data.config);
    return shapeFrom(parsed.data.config) ?? nestedInputShape(parsed.data);
  }
  return undefined;
}

/** Normalises a LayersModel topology (Sequential or functional) to a layer list. */
export function parseLayersTopology(topology: unknown, source: string): LayersGraph {
  const parsedTop = z.record(z.string(), z.unknown()).safeParse(topology);
  if (!parsedTop.success) throw new ModelError(`${source}: modelTopology must be an object; the model.json is corrupt`);
  const top = parsedTop.data;
  const modelConfig = (top.model_config ?? top) as Record<string, unknown>;
  const className = modelConfig.class_name;
  const config = modelConfig.config;
  const rawLayers = Array.isArray(config) ? config : (config as { layers?: unknown } | undefined)?.layers;
  const parsed = z.array(layerSchema).safeParse(rawLayers);
  if (!parsed.success || typeof className !== 'string') {
    throw new ModelError(
      `${source}: the LayersModel topology has no model class and layer list; the model.json is corrupt`,
    );
  }
  const layers: Layer[] = [];
  const inputShapes = new Map<string, (number | null)[]>();
  if (className === 'Sequential') {
    let prev: string | undefined;
    for (const [i, raw] of parsed.data.entries()) {
      const name = raw.name ?? (raw.config.name as string | undefined) ?? `layer_${i}`;
      if (prev === undefined) {
        if (raw.class_name === 'InputLayer') {
          layers.push({ className: 'InputLayer', name, config: raw.config, inputs: [] });
          inputShapes.set(name, shapeFrom(raw.config) ?? [null]);
          prev = name;
          continue;
        }
        const shape = shapeFrom(raw.config) ?? nestedInputShape(raw);
        if (!shape) throw new ModelError(`${source}: the first layer (${name}) has no batch_input_shape`);
        const inputName = `${name}_input`;
        layers.push({ className: 'InputLayer', name: inputName, config: {}, inputs: [] });
        inputShapes.set(inputName, shape);
        prev = inputName;
      }
      layers.push({ className: raw.class_name, name, config: raw.config, inputs: [prev] });
      prev = name;
    }
    const first = layers[0];
    if (!first || prev === undefined) throw new ModelError(`${source}: the Sequential model has no layers`);
    return { layers, inputs: [first.name], outputs: [prev], inputShapes };
  }
  if (className !== 'Model' && className !== 'Functional') {
    throw new UnsupportedError(
      `${source}: model class ${className} is not supported (Sequential, Model, Functional are)`,
    );
  }
  for (const raw of parsed.data) {
    const name = raw.name ?? (raw.config.name as string | undefined);
    if (!name) throw new ModelError(`${source}: a ${raw.class_name} layer has no name`);
    if (raw.class_name === 'InputLayer') inputShapes.set(name, shapeFrom(raw.config) ?? [null]);
    layers.push({ className: raw.class_name, name, config: raw.config, inputs: inboundNames(raw, name) });
  }
  const refs = (key: string): string[] => {
    const v = (config as Record<string, unknown>)[key];
    if (!Array.isArray(v)) return [];
    // [[name, 0, 0], ...] or [name, 0, 0]
    if (typeof v[0] === 'string') return [v[0]];
    return v.map((e) => (Array.isArray(e) && typeof e[0] === 'string' ? e[0] : '')).filter(Boolean);
  };
  return { layers, inputs: refs('input_layers'), outputs: refs('output_layers'), inputShapes };
}

function num(config: Record<string, unknown>, key: string, fallback?: number): number {
  const v = config[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined && (v === undefined || v === null)) return fallback;
  throw new ModelError(`layer config ${key} must be a number, got ${JSON.stringify(v)}`);
}

function pair(config: Record<string, unknown>, key: string, fallback: number): [number, number] {
  const v = config[key];
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'number') return [v[0], v[1]];
  return [fallback, fallback];
}

function activationOf(layer: Layer, value: unknown): Activation {
  const name = typeof value === 'string' ? value : (value as { class_name?: string } | undefined)?.class_name;
  // TF.js writes Keras names (relu6, hard_sigmoid); lower-case covers hand-written JSON.
  const n = (name ?? 'linear').toLowerCase();
  if ((activationNames as readonly string[]).includes(n)) return n as Activation;
  throw new UnsupportedError(
    `activation "${String(name)}" in layer ${layer.name} (${layer.className}) is not supported; supported: ${activationNames.join(', ')}`,
  );
}

function checkChannelsLast(layer: Layer): void {
  const f = layer.config.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') {
    throw new UnsupportedError(
      `layer ${layer.name} (${layer.className}) uses data_format ${JSON.stringify(f)}; only channels_last is supported`,
    );
  }
}

function paddingOf(layer: Layer): Padding {
  const p = layer.config.padding ?? 'valid';
  if (p === 'same' || p === 'valid') return p;
  throw new UnsupportedError(
    `layer ${layer.name} (${layer.className}) has padding ${JSON.stringify(p)}; supported: same, valid`,
  );
}

export interface ConvertLayersOptions {
  /** Values to bind to the model's input layers (by input layer name, or by position). */
  readonly inputs?: readonly Value[];
  /** Layer names whose outputs are wanted; the model's outputs by default. */
  readonly outputs?: readonly string[];
}

/**
 * Converts the layers needed for `outputs` and returns their values in order.
 * Without bound inputs, the graph's inputs are declared as float32 NHWC, named after
 * the input layers.
 */
export function convertLayers(e: Emitter, artifacts: TfjsArtifacts, options: ConvertLayersOptions = {}): Value[] {
  const graph = parseLayersTopology(artifacts.topology, artifacts.source);
  const byName = new Map(graph.layers.map((l) => [l.name, l]));
  const wanted = options.outputs ?? graph.outputs;
  for (const w of wanted) {
    if (!byName.has(w)) {
      throw new ModelError(
        `${artifacts.source} has no layer "${w}"; its layers are: ${graph.layers.map((l) => l.name).join(', ')}`,
      );
    }
  }
  // Only the layers the outputs depend on, in dependency order.
  const order: Layer[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new ModelError(`${artifacts.source}: the layer graph has a cycle at ${name}`);
    const layer = byName.get(name);
    if (!layer) throw new ModelError(`${artifacts.source}: a layer refers to a missing layer "${name}"`);
    state.set(name, 'visiting');
    for (const i of layer.inputs) visit(i);
    state.set(name, 'done');
    order.push(layer);
  };
  for (const w of wanted) visit(w);

  const known = new Set<string>(supportedLayers);
  const unsupported = order.filter((l) => !known.has(l.className));
  if (unsupported.length > 0) {
    throw new UnsupportedError(
      `${artifacts.source}: ${unsupported.map((l) => `layer ${l.name} is a ${l.className}`).join('; ')}, which the ONNX exporter does not support. ` +
        `Supported layers: ${supportedLayers.join(', ')}`,
    );
  }

  const values = new Map<string, Value>();
  const weight = (layer: Layer, key: string, required = true): Weight | undefined => {
    const exact = artifacts.weights.get(`${layer.name}/${key}`);
    if (exact) return exact;
    for (const [name, w] of artifacts.weights) if (name.endsWith(`/${layer.name}/${key}`)) return w;
    if (required)
      throw new ModelError(
        `${artifacts.source}: weight ${layer.name}/${key} of layer ${layer.name} (${layer.className}) is missing from the weights manifest`,
      );
    return undefined;
  };
  const floatConst = (w: Weight): Const => {
    if (!(w.data instanceof Float32Array)) throw new ModelError(`weight ${w.name} must be float32`);
    return { shape: w.shape, data: w.data };
  };
  const input = (layer: Layer, i = 0): Value => {
    const name = layer.inputs[i];
    const v = name === undefined ? undefined : values.get(name);
    if (!v) throw new ModelError(`layer ${layer.name} (${layer.className}) has no input ${i}`);
    return v;
  };
  let inputIndex = 0;

  for (const layer of order) {
    const c = layer.config;
    const n = layer.name;
    let out: Value;
    switch (layer.className) {
      case 'InputLayer': {
        const bound = options.inputs?.[inputIndex++];
        if (bound) {
          out = bound;
          break;
        }
        const shape = graph.inputShapes.get(n) ?? [null];
        const name = e.g.input(
          n,
          'float32',
          shape.map((d, i) => (d === null ? (i === 0 ? 'batch' : `${n}_dim${i}`) : d)),
        );
        out = { name, shape, layout: 'native' };
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        checkChannelsLast(layer);
        const depthwise = layer.className === 'DepthwiseConv2D';
        if ((c.groups ?? 1) !== 1)
          throw new UnsupportedError(`layer ${n} (Conv2D) has groups=${String(c.groups)}; only 1 is supported`);
        const kernel = floatConst(weight(layer, depthwise ? 'depthwise_kernel' : 'kernel') as Weight);
        const bias = c.use_bias === false ? undefined : weight(layer, 'bias', false);
        const conv = e.conv(input(layer), {
          name: n,
          kernel,
          bias: bias ? floatConst(bias).data : undefined,
          depthwise,
          window: { strides: pair(c, 'strides', 1), dilations: pair(c, 'dilation_rate', 1), padding: paddingOf(layer) },
        });
        out = e.activation(conv, activationOf(layer, c.activation), `${n}/activation`);
        break;
      }
      case 'BatchNormalization': {
        const x = input(layer);
        const axis = num(c, 'axis', -1);
        if (axis !== -1 && axis !== x.shape.length - 1) {
          throw new UnsupportedError(
            `layer ${n} (BatchNormalization) normalises axis ${axis}; only the channel axis (-1) is supported`,
          );
        }
        const mean = floatConst(weight(layer, 'moving_mean') as Weight).data;
        const variance = floatConst(weight(layer, 'moving_variance') as Weight).data;
        const gamma = c.scale === false ? undefined : floatConst(weight(layer, 'gamma') as Weight).data;
        const beta = c.center === false ? undefined : floatConst(weight(layer, 'beta') as Weight).data;
        const eps = num(c, 'epsilon', 1e-3);
        const ch = mean.length;
        const scale = new Float32Array(ch);
        const shift = new Float32Array(ch);
        // y = gamma * (x - mean) / sqrt(var + eps) + beta, computed in float64 then rounded once.
        for (let k = 0; k < ch; k++) {
          const s = (gamma?.[k] ?? 1) / Math.sqrt((variance[k] ?? 0) + eps);
          scale[k] = s;
          shift[k] = (beta?.[k] ?? 0) - (mean[k] ?? 0) * s;
        }
        // Emitted as Mul + Add; optimiseGraph folds them into the preceding Conv/Gemm.
        const mul = e.g.op(
          'Mul',
          [x.name, e.constantLike(`${n}/scale`, { shape: [ch], data: scale }, x)],
          {},
          { name: `${n}/mul` },
        );
        const add = e.g.op(
          'Add',
          [mul, e.constantLike(`${n}/shift`, { shape: [ch], data: shift }, x)],
          {},
          { name: `${n}/add` },
        );
        out = { ...x, name: add };
        break;
      }
      case 'Activation':
        out = e.activation(input(layer), activationOf(layer, c.activation), n);
        break;
      case 'ReLU': {
        const maxValue =
          c.max_value === null || c.max_value === undefined ? Number.POSITIVE_INFINITY : num(c, 'max_value');
        const slope = num(c, 'negative_slope', 0);
        const threshold = num(c, 'threshold', 0);
        if (slope !== 0 || threshold !== 0)
          throw new UnsupportedError(`layer ${n} (ReLU) with negative_slope/threshold is not supported`);
        const x = input(layer);
        out = {
          ...x,
          name: Number.isFinite(maxValue) ? e.clip(x.name, 0, maxValue, n) : e.g.op('Relu', [x.name], {}, { name: n }),
        };
        break;
      }
      case 'LeakyReLU':
        out = e.activation(
          input(layer),
          { kind: 'leakyrelu', alpha: num(c, 'alpha', num(c, 'negative_slope', 0.3)) },
          n,
        );
        break;
      case 'PReLU':
        out = e.activation(input(layer), { kind: 'prelu', slope: floatConst(weight(layer, 'alpha') as Weight) }, n);
        break;
      case 'Softmax': {
        const axis = num(c, 'axis', -1);
        const x = input(layer);
        if (axis !== -1 && axis !== x.shape.length - 1)
          throw new UnsupportedError(`layer ${n} (Softmax) on axis ${axis}; only the last axis is supported`);
        out = e.activation(x, 'softmax', n);
        break;
      }
      case 'ZeroPadding2D': {
        checkChannelsLast(layer);
        const p = c.padding;
        let t = 1,
          b = 1,
          l = 1,
          r = 1;
        if (typeof p === 'number') {
          t = b = l = r = p;
        } else if (Array.isArray(p) && typeof p[0] === 'number') {
          t = b = p[0];
          l = r = Number(p[1]);
        } else if (Array.isArray(p) && Array.isArray(p[0]) && Array.isArray(p[1])) {
          [t = 0, b = 0] = p[0] as number[];
          [l = 0, r = 0] = p[1] as number[];
        }
        const x = input(layer);
        // Emitted as Pad; optimiseGraph folds it into the next Conv's pads when it can.
        const pads = e.int64(`${n}/pads`, [0, 0, t, l, 0, 0, b, r]);
        const name = e.g.op('Pad', [e.nchw(x), pads], { mode: attr.s('constant') }, { name: n });
        const [bs = null, h = null, w = null, ch = null] = x.shape;
        out = { name, shape: [bs, h === null ? null : h + t + b, w === null ? null : w + l + r, ch], layout: 'nchw' };
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        checkChannelsLast(layer);
        const x = input(layer);
        const keep = c.keepdims === true;
        if (layer.className === 'GlobalAveragePooling2D') {
          out = e.globalAveragePool(x, n, keep);
          break;
        }
        const pooled = e.g.op('GlobalMaxPool', [e.nchw(x)], {}, { name: n });
        out = keep
          ? { name: pooled, shape: [x.shape[0] ?? null, 1, 1, x.shape[3] ?? null], layout: 'nchw' }
          : {
              name: e.g.op('Flatten', [pooled], { axis: attr.i(1) }, { name: `${n}/flatten` }),
              shape: [x.shape[0] ?? null, x.shape[3] ?? null],
              layout: 'native',
            };
        break;
      }
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        checkChannelsLast(layer);
        const x = input(layer);
        const kernel = pair(c, 'pool_size', 2);
        const strides = c.strides === null || c.strides === undefined ? kernel : pair(c, 'strides', 1);
        out = e.pool(
          x,
          layer.className === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool',
          n,
          kernel,
          strides,
          paddingOf(layer),
        );
        break;
      }
      case 'Dense': {
        const x = input(layer);
        const kernel = floatConst(weight(layer, 'kernel') as Weight);
        const bias = c.use_bias === false ? undefined : weight(layer, 'bias', false);
        const dense = e.dense(x, { name: n, kernel, bias: bias ? floatConst(bias).data : undefined });
        out = e.activation(dense, activationOf(layer, c.activation), `${n}/activation`);
        break;
      }
      case 'Dropout':
      case 'SpatialDropout1D':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
      case 'AlphaDropout':
        out = input(layer); // inference: identity
        break;
      case 'Flatten': {
        const x = e.as(input(layer), 'native');
        const size = x.shape.slice(1).reduce<number | null>((a, d) => (a === null || d === null ? null : a * d), 1);
        out = {
          name: e.g.op('Flatten', [x.name], { axis: attr.i(1) }, { name: n }),
          shape: [x.shape[0] ?? null, size],
          layout: 'native',
        };
        break;
      }
      case 'Reshape': {
        const x = e.as(input(layer), 'native');
        // TF.js writes a free dimension as null or -1.
        const parsedTarget = z.array(z.number().int().nullable()).safeParse(c.target_shape);
        if (!parsedTarget.success)
          throw new ModelError(
            `layer ${n} (Reshape): target_shape ${JSON.stringify(c.target_shape)} is not a list of sizes`,
          );
        const target = parsedTarget.data.map((d) => d ?? -1);
        // ONNX Reshape: 0 copies the batch dimension, so one -1 stays free for the target.
        const shape = e.int64(`${n}/shape`, [0, ...target]);
        const size = x.shape.slice(1).reduce<number | null>((a, d) => (a === null || d === null ? null : a * d), 1);
        const known = target.reduce((a, d) => (d === -1 ? a : a * d), 1);
        const dims = target.map((d) => (d === -1 ? (size === null ? null : size / known) : d));
        out = {
          name: e.g.op('Reshape', [x.name, shape], {}, { name: n }),
          shape: [x.shape[0] ?? null, ...dims],
          layout: 'native',
        };
        break;
      }
      case 'Add':
      case 'Multiply': {
        const xs = layer.inputs.map((_, i) => input(layer, i));
        const layout = xs.every((x) => x.layout === 'nchw') ? 'nchw' : 'native';
        const first = e.as(xs[0] as Value, layout);
        let acc = first.name;
        for (const x of xs.slice(1))
          acc = e.g.op(layer.className === 'Add' ? 'Add' : 'Mul', [acc, e.as(x, layout).name], {}, { name: n });
        out = { name: acc, shape: first.shape, layout: first.layout };
        break;
      }
      case 'Sequential':
      case 'Model':
      case 'Functional': {
        // A model used as a layer (e.g. a backbone inside a Sequential): convert its
        // layers inline, fed by this layer's inputs. Its weights are found by layer name.
        const inner = convertLayers(
          e,
          { ...artifacts, topology: { class_name: layer.className, config: layer.config } },
          { inputs: layer.inputs.map((_, i) => input(layer, i)) },
        );
        if (inner.length !== 1 || !inner[0])
          throw new UnsupportedError(
            `nested model ${n} has ${inner.length} outputs; only single-output nested models are supported`,
          );
        out = inner[0];
        break;
      }
      case 'Concatenate': {
        const xs = layer.inputs.map((_, i) => input(layer, i));
        const rank = xs[0]?.shape.length ?? 0;
        let axis = num(c, 'axis', -1);
        if (axis < 0) axis += rank;
        const nchw = rank === 4 && xs.every((x) => x.layout === 'nchw');
        const conv = xs.map((x) => e.as(x, nchw ? 'nchw' : 'native'));
        const onnxAxis = nchw ? ([0, 2, 3, 1][axis] ?? axis) : axis;
        const shape = [...(xs[0]?.shape ?? [])];
        shape[axis] = xs.reduce<number | null>(
          (a, x) => (a === null || x.shape[axis] === null ? null : a + (x.shape[axis] ?? 0)),
          0,
        );
        out = {
          name: e.g.op(
            'Concat',
            conv.map((x) => x.name),
            { axis: attr.i(onnxAxis) },
            { name: n },
          ),
          shape,
          layout: nchw ? 'nchw' : 'native',
        };
        break;
      }
      default:
        throw new UnsupportedError(
          `layer ${n} is a ${layer.className}, which the ONNX exporter does not support. Supported layers: ${supportedLayers.join(', ')}`,
        );
    }
    values.set(n, out);
  }
  return wanted.map((w) => values.get(w) as Value);
}

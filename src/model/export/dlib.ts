/**
 * The dlib ResNet face descriptor (128-d, 150×150 input) as ONNX, built from the weights that
 * `@vladmandic/face-api` ships (`model/face_recognition_model.bin` and its weights manifest).
 * The file holds weights only: the architecture is written out here after face-api's
 * `src/faceRecognitionNet/` (FaceRecognitionNet.ts, convLayer.ts, residualLayer.ts,
 * scaleLayer.ts), which reproduces dlib's `dnn_face_recognition_ex.cpp` network:
 *
 *   x = (rgb − mean RGB) / 255
 *   conv 7×7/2 valid → max-pool 3/2 valid → residual 32 ×3 → down 64, residual 64 ×3
 *   → down 128, residual 128 ×2 → down 256, residual 256 ×2 → down 256
 *   → global average → matMul fc [256, 128]
 *
 * Each conv is conv + bias followed by dlib's affine "scale" layer (x·w + b per channel) and,
 * except for the second conv of a residual block, a ReLU. The scale is folded into the conv
 * here (W·w, bias·w + b), exact up to float rounding. A down block's shortcut is a 2×2/2
 * average pool of its input, zero-padded in channels (and, where the strided conv came out one
 * smaller, the conv's output is zero-padded by one row and column at the end), as face-api does.
 *
 * Signature: uint8 `pixels` [N, 150, 150, 3] (RGB 0..255) → float32 `features` [N, 128].
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ModelError } from '../../shared/errors.js';
import { faceApiRecognitionFiles } from '../builtin.js';
import { attr, encodeModel, GraphBuilder } from '../onnx/builder.js';
import { Emitter, type Value } from './emitter.js';
import { optimiseGraph } from './optimise.js';
import { decodeWeights, weightSpecSchema, type Weight } from './tfjs.js';

export const DLIB_INPUT = 150;
export const DLIB_FEATURES = 128;

/** face-api's mean RGB, subtracted before dividing by 255 (FaceRecognitionNet.forwardInput). */
export const DLIB_MEAN_RGB = [122.782, 117.001, 104.298] as const;

const manifestSchema = z.array(
  z.object({ paths: z.array(z.string().min(1)), weights: z.array(weightSpecSchema) }).loose(),
);

/** The dequantised weights by name (face-api's uint8-quantised file, read like any TF.js shard). */
export function readDlibWeights(): Map<string, Weight> {
  const { manifest, weights } = faceApiRecognitionFiles();
  const parsed = manifestSchema.safeParse(JSON.parse(readFileSync(manifest, 'utf8')));
  if (!parsed.success)
    throw new ModelError(`${manifest} is not a TF.js weights manifest: reinstall @vladmandic/face-api`);
  const specs = parsed.data.flatMap((g) => g.weights);
  return decodeWeights(Buffer.concat(weights.map((w) => readFileSync(w))), specs, manifest);
}

function float(weights: ReadonlyMap<string, Weight>, name: string, rank: number): Weight & { data: Float32Array } {
  const w = weights.get(name);
  if (!w || !(w.data instanceof Float32Array) || w.shape.length !== rank)
    throw new ModelError(
      `the dlib weights have no float rank-${rank} ${name}: the face-api model file is not the one expected`,
    );
  return w as Weight & { data: Float32Array };
}

/** conv + bias + dlib scale layer, folded into one Conv (+ ReLU). */
function convLayer(
  e: Emitter,
  weights: ReadonlyMap<string, Weight>,
  x: Value,
  prefix: string,
  o: { stride: 1 | 2; relu: boolean },
): Value {
  const filters = float(weights, `${prefix}/conv/filters`, 4);
  const bias = float(weights, `${prefix}/conv/bias`, 1).data;
  const s = float(weights, `${prefix}/scale/weights`, 1).data;
  const sb = float(weights, `${prefix}/scale/biases`, 1).data;
  const cout = filters.shape[3] ?? 0;
  if (bias.length !== cout || s.length !== cout || sb.length !== cout)
    throw new ModelError(`the dlib weights of ${prefix} disagree in channels`);
  // HWIO: the output channel is the fastest-varying index.
  const kernel = Float32Array.from(filters.data, (v, i) => v * s[i % cout]!);
  const b = Float32Array.from(bias, (v, c) => v * s[c]! + sb[c]!);
  const out = e.conv(x, {
    name: prefix,
    kernel: { shape: filters.shape, data: kernel },
    bias: b,
    depthwise: false,
    window: { strides: [o.stride, o.stride], dilations: [1, 1], padding: o.stride === 2 ? 'valid' : 'same' },
  });
  return o.relu ? e.activation(out, 'relu', `${prefix}/relu`) : out;
}

function add(e: Emitter, a: Value, b: Value, name: string): Value {
  return { name: e.g.op('Add', [e.nchw(a), e.nchw(b)], {}, { name }), shape: a.shape, layout: 'nchw' };
}

/** Zero padding at the end of C, H and W of an NCHW value. */
function padEnd(e: Emitter, x: Value, c: number, h: number, w: number, name: string): Value {
  if (c === 0 && h === 0 && w === 0) return x;
  const pads = e.int64(`${name}/pads`, [0, 0, 0, 0, 0, c, h, w]);
  const [n, H, W, C] = x.shape;
  return {
    name: e.g.op('Pad', [e.nchw(x), pads], { mode: attr.s('constant') }, { name }),
    shape: [n ?? null, (H ?? 0) + h, (W ?? 0) + w, (C ?? 0) + c],
    layout: 'nchw',
  };
}

function residual(e: Emitter, weights: ReadonlyMap<string, Weight>, x: Value, prefix: string): Value {
  const a = convLayer(e, weights, x, `${prefix}/conv1`, { stride: 1, relu: true });
  const b = convLayer(e, weights, a, `${prefix}/conv2`, { stride: 1, relu: false });
  return e.activation(add(e, b, x, `${prefix}/add`), 'relu', `${prefix}/relu`);
}

function residualDown(e: Emitter, weights: ReadonlyMap<string, Weight>, x: Value, prefix: string): Value {
  const a = convLayer(e, weights, x, `${prefix}/conv1`, { stride: 2, relu: true });
  let b = convLayer(e, weights, a, `${prefix}/conv2`, { stride: 1, relu: false });
  const pooled = e.pool(x, 'AveragePool', `${prefix}/pool`, [2, 2], [2, 2], 'valid');
  const dh = (pooled.shape[1] ?? 0) - (b.shape[1] ?? 0);
  const dw = (pooled.shape[2] ?? 0) - (b.shape[2] ?? 0);
  if (dh < 0 || dw < 0 || dh > 1 || dw > 1)
    throw new ModelError(
      `${prefix}: shortcut ${pooled.shape.join('×')} and branch ${b.shape.join('×')} do not line up`,
    );
  b = padEnd(e, b, 0, dh, dw, `${prefix}/pad_branch`);
  const shortcut = padEnd(e, pooled, (b.shape[3] ?? 0) - (pooled.shape[3] ?? 0), 0, 0, `${prefix}/pad_shortcut`);
  return e.activation(add(e, shortcut, b, `${prefix}/add`), 'relu', `${prefix}/relu`);
}

/** The dlib descriptor as ONNX bytes (uint8 `pixels` [N,150,150,3] → `features` [N,128]). */
export function exportDlibDescriptor(
  weights: ReadonlyMap<string, Weight> = readDlibWeights(),
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array {
  const g = new GraphBuilder('dlib-resnet');
  const e = new Emitter(g);
  const S = DLIB_INPUT;
  const pixels = g.input('pixels', 'uint8', ['batch', S, S, 3]);
  let t = g.op('Cast', [pixels], { to: attr.i(1) }, { name: 'preprocess/cast' });
  t = g.op(
    'Add',
    [
      t,
      e.constant(
        'preprocess/mean',
        [3],
        Float32Array.from(DLIB_MEAN_RGB, (m) => -m),
      ),
    ],
    {},
    { name: 'preprocess/mean' },
  );
  t = g.op('Mul', [t, e.scalar('preprocess/scale', 1 / 255)], {}, { name: 'preprocess/scale' });
  let x: Value = { name: t, shape: [null, S, S, 3], layout: 'native' };

  x = convLayer(e, weights, x, 'conv32_down', { stride: 2, relu: true });
  x = e.pool(x, 'MaxPool', 'pool', [3, 3], [2, 2], 'valid');
  for (const b of ['conv32_1', 'conv32_2', 'conv32_3']) x = residual(e, weights, x, b);
  x = residualDown(e, weights, x, 'conv64_down');
  for (const b of ['conv64_1', 'conv64_2', 'conv64_3']) x = residual(e, weights, x, b);
  x = residualDown(e, weights, x, 'conv128_down');
  for (const b of ['conv128_1', 'conv128_2']) x = residual(e, weights, x, b);
  x = residualDown(e, weights, x, 'conv256_down');
  for (const b of ['conv256_1', 'conv256_2']) x = residual(e, weights, x, b);
  x = residualDown(e, weights, x, 'conv256_down_out');
  const pooled = e.globalAveragePool(x, 'global_average');
  const fc = float(weights, 'fc', 2);
  const features = e.dense(pooled, { name: 'fc', kernel: { shape: fc.shape, data: fc.data } });
  if (features.shape[1] !== DLIB_FEATURES)
    throw new ModelError(`the dlib weights give ${features.shape[1]} features, expected ${DLIB_FEATURES}`);
  e.output(features, 'features');
  optimiseGraph(g);
  return encodeModel(
    g.build({
      opset: 17,
      metadata: { source: '@vladmandic/face-api face_recognition_model', converted_by: 'facegate export', ...metadata },
      docString: 'dlib ResNet face descriptor (weights from @vladmandic/face-api)',
    }),
  );
}

/**
 * Heads appended to a backbone-only ONNX graph (output `features`), for measuring the
 * quantiser before a trained head exists:
 * - `withCentroidHead`: a nearest-centroid classifier (cosine similarity to each class's
 *   mean feature vector, fitted in plain TypeScript), as a Gemm on L2-normalised
 *   features followed by Softmax;
 * - `withDenseHead`: the tutorial's dense head (Gemm → Relu ×3 → Gemm → Softmax) with
 *   seeded random weights, for latency only.
 */
import type { OnnxTypes } from '../../src/model/onnx/proto.js';
import { decodeModel, encodeModel, tensorProto, valueInfo } from '../../src/model/onnx/builder.js';
import { onnx } from '../../src/model/onnx/proto.js';
import { mulberry32 } from '../../src/train/rng.js';

type Node = OnnxTypes.INodeProto;

function featureSize(g: OnnxTypes.IGraphProto): number {
  const f = (g.output ?? []).find((o) => o.name === 'features');
  const d = Number(f?.type?.tensorType?.shape?.dim?.[1]?.dimValue ?? 0);
  if (!f || !(d > 0)) throw new Error('backbone graph has no [batch, F] output named "features"');
  return d;
}

function append(
  bytes: Uint8Array,
  build: (
    g: OnnxTypes.GraphProto,
    f: number,
  ) => { nodes: Node[]; inits: OnnxTypes.ITensorProto[]; outputs: OnnxTypes.IValueInfoProto[] },
): Uint8Array {
  const m = decodeModel(bytes);
  const g = m.graph as OnnxTypes.GraphProto;
  const f = featureSize(g);
  const { nodes, inits, outputs } = build(g, f);
  g.node.push(...nodes.map((n) => onnx.NodeProto.fromObject(n)));
  g.initializer.push(...inits.map((t) => onnx.TensorProto.fromObject(t)));
  g.output = [...outputs, ...g.output].map((o) => onnx.ValueInfoProto.fromObject(o));
  return encodeModel(m);
}

const INT = onnx.AttributeProto.AttributeType.INT;
const FLOATA = onnx.AttributeProto.AttributeType.FLOAT;

/**
 * Nearest-centroid head: probabilities = softmax(temperature · cos(features, centroid_c)).
 * `centroids` are C vectors of length F (normalised here).
 */
export function withCentroidHead(bytes: Uint8Array, centroids: readonly Float32Array[], temperature = 30): Uint8Array {
  return append(bytes, (_g, f) => {
    const c = centroids.length;
    const w = new Float32Array(f * c); // [F, C]
    centroids.forEach((v, j) => {
      if (v.length !== f) throw new Error(`centroid ${j} has ${v.length} values, features have ${f}`);
      let n = 0;
      for (const x of v) n += x * x;
      n = Math.sqrt(n) || 1;
      for (let i = 0; i < f; i++) w[i * c + j] = (v[i] as number) / n;
    });
    return {
      nodes: [
        {
          name: 'head/normalise',
          opType: 'LpNormalization',
          input: ['features'],
          output: ['head/unit'],
          attribute: [
            { name: 'axis', type: INT, i: 1 },
            { name: 'p', type: INT, i: 2 },
          ],
        },
        {
          name: 'head/cosine',
          opType: 'Gemm',
          input: ['head/unit', 'head/centroids', 'head/zero'],
          output: ['head/logits'],
          attribute: [{ name: 'alpha', type: FLOATA, f: temperature }],
        },
        {
          name: 'head/softmax',
          opType: 'Softmax',
          input: ['head/logits'],
          output: ['probabilities'],
          attribute: [{ name: 'axis', type: INT, i: -1 }],
        },
      ],
      inits: [tensorProto('head/centroids', [f, c], w), tensorProto('head/zero', [c], new Float32Array(c))],
      outputs: [valueInfo('probabilities', 'float32', ['batch', c])],
    };
  });
}

/** The tutorial's dense head (hidden sizes, then `classes`) with seeded random He weights. */
export function withDenseHead(
  bytes: Uint8Array,
  hidden: readonly number[] = [1024, 1024, 512],
  classes = 40,
  seed = 5,
): Uint8Array {
  const rand = mulberry32(seed);
  return append(bytes, (_g, f) => {
    const nodes: Node[] = [];
    const inits: OnnxTypes.ITensorProto[] = [];
    let x = 'features';
    let n = f;
    [...hidden, classes].forEach((h, i) => {
      const w = new Float32Array(n * h);
      const std = Math.sqrt(2 / n);
      for (let k = 0; k < w.length; k++)
        w[k] = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()) * std;
      inits.push(
        tensorProto(`head/dense_${i}/kernel`, [n, h], w),
        tensorProto(`head/dense_${i}/bias`, [h], new Float32Array(h).fill(0.01)),
      );
      const last = i === hidden.length;
      const y = `head/dense_${i}`;
      nodes.push({
        name: y,
        opType: 'Gemm',
        input: [x, `${y}/kernel`, `${y}/bias`],
        output: [last ? 'head/logits' : `${y}/out`],
      });
      if (!last) {
        const out = i === hidden.length - 1 ? 'embedding' : `${y}/relu`;
        nodes.push({ name: `${y}/relu`, opType: 'Relu', input: [`${y}/out`], output: [out] });
        x = out;
      }
      n = h;
    });
    nodes.push({
      name: 'head/softmax',
      opType: 'Softmax',
      input: ['head/logits'],
      output: ['probabilities'],
      attribute: [{ name: 'axis', type: INT, i: -1 }],
    });
    return {
      nodes,
      inits,
      outputs: [
        valueInfo('probabilities', 'float32', ['batch', classes]),
        valueInfo('embedding', 'float32', ['batch', hidden[hidden.length - 1] ?? f]),
      ],
    };
  });
}

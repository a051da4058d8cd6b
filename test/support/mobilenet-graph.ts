/**
 * A MobileNet v1 built directly as an ONNX graph with seeded random weights, in the
 * shape facegate's exporter produces (uint8 NHWC `pixels` → Cast → Mul → Add →
 * Transpose → Conv/Clip(0,6) blocks → GlobalAveragePool → Flatten → `features` →
 * Gemm/Relu ×3 (`embedding`) → Gemm → Softmax → `probabilities`). For quantiser tests
 * and the benchmark, where only the graph's shape and op mix matter, not its training.
 */
import { GraphBuilder, attr, encodeModel } from '../../src/model/onnx/builder.js';
import { mulberry32 } from '../../src/train/rng.js';

function gaussian(rand: () => number, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand()) * std;
  }
  return out;
}

export interface MobileNetGraphOptions {
  /** Width multiplier (0.25 … 1.0). */
  readonly alpha?: number;
  /** Depthwise-separable blocks to keep (13 in MobileNet v1). */
  readonly blocks?: number;
  /** Hidden sizes of the dense head; empty for a backbone only (output `features`). */
  readonly head?: readonly number[];
  readonly classes?: number;
  /** Gemm weight layout: [in,out] (transB=0, as Keras Dense exports) or [out,in]. */
  readonly transB?: boolean;
  readonly seed?: number;
}

const BLOCKS: readonly (readonly [number, number])[] = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

export function mobileNetGraph(o: MobileNetGraphOptions = {}): Uint8Array {
  const alpha = o.alpha ?? 0.25;
  const rand = mulberry32(o.seed ?? 1);
  const g = new GraphBuilder('mobilenet_test');
  const x0 = g.input('pixels', 'uint8', ['batch', 224, 224, 3]);
  let x = g.op('Cast', [x0], { to: attr.i(1) });
  x = g.op('Mul', [x, g.initializer('scale', [], new Float32Array([2 / 255]))]);
  x = g.op('Add', [x, g.initializer('offset', [], new Float32Array([-1]))]);
  x = g.op('Transpose', [x], { perm: attr.ints([0, 3, 1, 2]) });
  const clipMin = g.initializer('clip_min', [], new Float32Array([0]));
  const clipMax = g.initializer('clip_max', [], new Float32Array([6]));
  const conv = (
    inp: string,
    cin: number,
    cout: number,
    k: number,
    stride: number,
    group: number,
    name: string,
  ): string => {
    const fanIn = (cin / group) * k * k;
    const w = g.initializer(
      `${name}/kernel`,
      [cout, cin / group, k, k],
      gaussian(rand, cout * (cin / group) * k * k, Math.sqrt(2 / fanIn)),
    );
    const b = g.initializer(`${name}/bias`, [cout], gaussian(rand, cout, 0.1));
    const pad = Math.floor(k / 2);
    const y = g.op(
      'Conv',
      [inp, w, b],
      {
        kernel_shape: attr.ints([k, k]),
        strides: attr.ints([stride, stride]),
        pads: attr.ints([pad, pad, pad, pad]),
        group: attr.i(group),
      },
      { name },
    );
    return g.op('Clip', [y, clipMin, clipMax], {}, { name: `${name}_relu6` });
  };
  let c = Math.round(32 * alpha);
  x = conv(x, 3, c, 3, 2, 1, 'conv1');
  BLOCKS.slice(0, o.blocks ?? BLOCKS.length).forEach(([f, s], i) => {
    x = conv(x, c, c, 3, s, c, `conv_dw_${i + 1}`);
    const cout = Math.round(f * alpha);
    x = conv(x, c, cout, 1, 1, 1, `conv_pw_${i + 1}`);
    c = cout;
  });
  x = g.op('GlobalAveragePool', [x], {}, { name: 'global_pool' });
  const head = o.head ?? [];
  if (head.length === 0) {
    g.node('Flatten', [x], ['features'], { axis: attr.i(1) });
    g.output('features', 'float32', ['batch', c]);
    return encodeModel(g.build({ opset: 17 }));
  }
  x = g.node('Flatten', [x], ['features'], { axis: attr.i(1) })[0] as string;
  const transB = o.transB ?? false;
  const dense = (inp: string, nin: number, nout: number, name: string, out?: string): string => {
    const w = g.initializer(
      `${name}/kernel`,
      transB ? [nout, nin] : [nin, nout],
      gaussian(rand, nin * nout, Math.sqrt(2 / nin)),
    );
    const b = g.initializer(`${name}/bias`, [nout], gaussian(rand, nout, 0.05));
    const [y] = g.node('Gemm', [inp, w, b], out ? [out] : 1, { transB: attr.i(transB ? 1 : 0) }, { name });
    return y as string;
  };
  let n = c;
  head.forEach((h, i) => {
    x = dense(x, n, h, `dense_${i + 1}`);
    const last = i === head.length - 1;
    x = g.node('Relu', [x], last ? ['embedding'] : 1, {}, { name: `dense_${i + 1}_relu` })[0] as string;
    n = h;
  });
  const classes = o.classes ?? 10;
  const logits = dense(x, n, classes, 'logits');
  g.node('Softmax', [logits], ['probabilities'], { axis: attr.i(-1) }, { name: 'softmax' });
  g.output('probabilities', 'float32', ['batch', classes]);
  g.output('embedding', 'float32', ['batch', head[head.length - 1] as number]);
  return encodeModel(g.build({ opset: 17 }));
}

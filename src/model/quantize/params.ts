/**
 * Quantisation parameters: pure maths, no graph and no runtime.
 *
 * The scheme is the one onnxruntime's own (Python) quantiser writes by default for
 * static QDQ models on x86 (U8S8), so that its CPU kernels (QLinearConv, QGemm) accept
 * the result:
 * - activations: uint8, asymmetric, the range always includes 0 so that 0 is exact;
 * - weights: int8, symmetric (zero point 0), one scale per output channel, range
 *   [-127, 127] (not -128, so that negating a weight never overflows);
 * - biases: int32 with scale = input scale × weight scale of the channel, so that the
 *   integer kernel adds them to its int32 accumulator directly.
 * See onnxruntime/python/tools/quantization/quant_utils.py (compute_scale_zp,
 * quantize_data) and onnx_quantizer.py (quantize_bias_static).
 */

/** Scale and zero point of a uint8 activation tensor. */
export interface ActivationParams {
  readonly scale: number;
  readonly zeroPoint: number;
}

const U8_MAX = 255;
const I8_MAX = 127;
const I32_MAX = 2 ** 31 - 1;

/**
 * uint8 asymmetric parameters for a calibrated range. The range is widened to include
 * 0 (a ReLU's zeros, zero padding) and the zero point is rounded, so real 0.0 maps to an
 * exact integer. A degenerate range (all values equal 0) gets scale 1, as in
 * onnxruntime.
 */
export function activationParams(min: number, max: number): ActivationParams {
  if (!Number.isFinite(min) || !Number.isFinite(max) || min > max) {
    throw new RangeError(`invalid calibration range [${min}, ${max}]`);
  }
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  if (hi - lo < 1e-12) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / U8_MAX);
  const zeroPoint = Math.min(U8_MAX, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/** q = clamp(round(x / scale) + zp, 0, 255), round half to even like QuantizeLinear. */
export function quantizeU8(x: number, p: ActivationParams): number {
  return Math.min(U8_MAX, Math.max(0, roundHalfEven(x / p.scale) + p.zeroPoint));
}

export function dequantizeU8(q: number, p: ActivationParams): number {
  return (q - p.zeroPoint) * p.scale;
}

/** Round half to even (ONNX QuantizeLinear's rounding). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Per-channel int8 weights with their scales (zero points are all 0). */
export interface ChannelQuantized {
  readonly values: Int8Array;
  readonly scales: Float32Array;
}

/** Per-channel int32 bias with its scales (input scale × weight scale). */
export interface BiasQuantized {
  readonly values: Int32Array;
  readonly scales: Float32Array;
}

/**
 * Visits the elements of a row-major tensor grouped by their index along `axis`:
 * calls `fn(channel, flatIndex)` for every element.
 */
function forEachByChannel(dims: readonly number[], axis: number, fn: (c: number, i: number) => void): void {
  if (axis < 0 || axis >= dims.length) throw new RangeError(`axis ${axis} out of range for shape [${dims.join(',')}]`);
  const channels = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      for (let k = 0; k < inner; k++) fn(c, base + k);
    }
  }
}

/** Largest |w| of each channel along `axis`. */
export function channelAbsMax(w: Float32Array, dims: readonly number[], axis: number): Float32Array {
  const m = new Float32Array(dims[axis] ?? 1);
  forEachByChannel(dims, axis, (c, i) => {
    const v = Math.abs(w[i] ?? 0);
    if (v > (m[c] ?? 0)) m[c] = v;
  });
  return m;
}

/**
 * Symmetric per-channel int8 weights and int32 bias for a Conv / Gemm.
 *
 * `inputScale` is the scale of the node's (uint8) input activation. When a channel's
 * bias would not fit in int32 at scale inputScale × weightScale (tiny weights, large
 * bias), the weight scale of that channel is raised until it fits, as onnxruntime's
 * quantiser does since 1.17, instead of letting the bias wrap around.
 */
export function quantizeWeightsAndBias(
  w: Float32Array,
  dims: readonly number[],
  axis: number,
  bias: Float32Array | undefined,
  inputScale: number,
  /**
   * Weights already rounded on the round-to-nearest scales (`weightScales`), e.g. by
   * GPTQ (rounding.ts). A channel whose bias forces a larger scale is rounded to
   * nearest on that scale instead.
   */
  rounded?: ChannelQuantized,
): { weights: ChannelQuantized; bias?: BiasQuantized } {
  const scales = weightScales(w, dims, axis);
  const channels = scales.length;
  if (bias && bias.length !== channels) {
    throw new RangeError(`bias has ${bias.length} values for ${channels} channels`);
  }
  if (rounded && (rounded.values.length !== w.length || rounded.scales.length !== channels)) {
    throw new RangeError(
      `rounded weights have ${rounded.values.length} values / ${rounded.scales.length} scales for ${w.length} / ${channels}`,
    );
  }
  const raised = new Set<number>();
  for (let c = 0; c < channels; c++) {
    const b = Math.abs(bias?.[c] ?? 0);
    // Leave a margin below 2^31 so rounding cannot push the value over.
    const minScale = b / (inputScale * (I32_MAX - 1024));
    if ((scales[c] as number) < minScale) {
      scales[c] = Math.fround(minScale * 1.0001);
      raised.add(c);
    }
  }
  const values = new Int8Array(w.length);
  forEachByChannel(dims, axis, (c, i) => {
    if (rounded && !raised.has(c)) {
      values[i] = rounded.values[i] as number;
      return;
    }
    const q = roundHalfEven((w[i] ?? 0) / (scales[c] ?? 1));
    values[i] = Math.min(I8_MAX, Math.max(-I8_MAX, q));
  });
  if (!bias) return { weights: { values, scales } };
  const bScales = new Float32Array(channels);
  const bValues = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    const s = Math.fround(inputScale * (scales[c] ?? 1));
    bScales[c] = s;
    bValues[c] = Math.min(I32_MAX, Math.max(-I32_MAX, roundHalfEven((bias[c] ?? 0) / s)));
  }
  return { weights: { values, scales }, bias: { values: bValues, scales: bScales } };
}

/** Round-to-nearest per-channel scales: |w|max / 127; a dead channel (all 0) gets 1, as in onnxruntime. */
export function weightScales(w: Float32Array, dims: readonly number[], axis: number): Float32Array {
  const absMax = channelAbsMax(w, dims, axis);
  return Float32Array.from(absMax, (m) => (m > 0 ? Math.fround(m / I8_MAX) : 1));
}

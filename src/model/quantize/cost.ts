/**
 * What keeping a node in float costs: its multiply-adds per image. An int8 Conv / Gemm
 * saves time in proportion to its multiply-adds, so the mixed-precision search weighs
 * what a unit gains in accuracy against what it costs in speed: in the faceres network
 * (MobileNet v1 1.0) a depthwise conv or the whole dense head costs under 1 % of the
 * multiply-adds, the first pointwise convs 4–9 % each.
 *
 * Multiply-adds of a Conv or Gemm = weight elements × output positions per channel
 * (output elements / output channels): Conv `[Cout, Cin/g, kh, kw]` on an `[N, Cout, H, W]`
 * output gives Cout·Cin/g·kh·kw·H·W; Gemm `[in, out]` on `[N, out]` gives in·out.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import type { RgbImage } from '../../shared/image.js';
import { OnnxModel } from '../../runtime/ort.js';
import { pixelBatch, pixelInput, withOutputs } from './io.js';
import { graphOf, index } from './indexed.js';

/** Multiply-adds of one image through a node with `weightElements` weights and output `dims` (batch first, channels second). */
export function multiplyAdds(weightElements: number, dims: readonly number[]): number {
  const [batch = 1, channels = 1] = dims;
  const elements = dims.reduce((a, b) => a * b, 1);
  return weightElements * (elements / Math.max(1, batch) / Math.max(1, channels));
}

/** Multiply-adds per image of each node in `nodes` (Conv / Gemm with a constant weight), measured on one image. */
export async function nodeMultiplyAdds(
  model: OnnxTypes.IModelProto,
  nodes: readonly string[],
  image: RgbImage,
): Promise<Map<string, number>> {
  const ix = index(model);
  const wanted = new Set(nodes);
  const found = (graphOf(model).node ?? []).filter((n) => wanted.has(n.name ?? ''));
  const outputs = found.map((n) => n.output?.[0] ?? '');
  const input = pixelInput(model);
  const session = await OnnxModel.load(withOutputs(model, outputs));
  try {
    const out = await session.run(
      {
        [input.name]: { data: pixelBatch([image], input.height, input.width), dims: [1, input.height, input.width, 3] },
      },
      outputs,
    );
    const costs = new Map<string, number>();
    for (const n of found) {
      const w = ix.inits.get(n.input?.[1] ?? '');
      const weights = (w?.dims ?? []).reduce<number>((a, b) => a * Number(b), 1);
      const dims = out[n.output?.[0] ?? '']?.dims ?? [];
      costs.set(n.name ?? '', multiplyAdds(weights, dims.map(Number)));
    }
    return costs;
  } finally {
    await session.release();
  }
}

/**
 * Cost below which keeping a node float counts as this much (a share of the network's
 * multiply-adds): Q/DQ round trips around a float node cost time even when it computes
 * little, and without a floor a free unit with any gain would outrank everything.
 */
export const COST_FLOOR = 0.005;

/**
 * What a unit is worth to the search: how much it lowers the shortfall (before − after)
 * per share of the multiply-adds it turns back to float (floored at COST_FLOOR).
 */
export function worth(before: number, after: number, cost: number): number {
  return (before - after) / Math.max(cost, COST_FLOOR);
}

/** Each node's share of the total multiply-adds of `costs` (0 for a node not in it). */
export function shares(costs: ReadonlyMap<string, number>): Map<string, number> {
  let total = 0;
  for (const c of costs.values()) total += c;
  return new Map([...costs].map(([k, c]) => [k, total > 0 ? c / total : 0]));
}

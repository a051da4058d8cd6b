/**
 * Reading ONNX bytes and feeding images: shared by the quantiser, the comparison and
 * the benchmark.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import { onnx } from '../onnx/proto.js';
import { decodeModel, encodeModel } from '../onnx/builder.js';
import { DataError, ModelError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/image.js';

/** Decodes ONNX bytes; truncated or corrupt bytes give a ModelError. */
export function decodeOnnx(bytes: Uint8Array, source = 'model'): OnnxTypes.ModelProto {
  let model: OnnxTypes.ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (err) {
    throw new ModelError(
      `cannot read ONNX ${source}: ${(err as Error).message}. The file is corrupt or truncated: export it again (facegate export).`,
      { cause: err },
    );
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) {
    throw new ModelError(
      `ONNX ${source} has no graph nodes: it is empty, truncated or not an ONNX model; export it again (facegate export).`,
    );
  }
  return model;
}

export interface PixelInput {
  readonly name: string;
  readonly height: number;
  readonly width: number;
}

/** The uint8 NHWC pixel input the facegate contract specifies. */
export function pixelInput(model: OnnxTypes.IModelProto): PixelInput {
  const g = model.graph;
  const inits = new Set((g?.initializer ?? []).map((t) => t.name));
  const inputs = (g?.input ?? []).filter((v) => !inits.has(v.name));
  const vi = inputs[0];
  const tt = vi?.type?.tensorType;
  const dims = (tt?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null,
  );
  if (
    inputs.length !== 1 ||
    !vi?.name ||
    tt?.elemType !== onnx.TensorProto.DataType.UINT8 ||
    dims.length !== 4 ||
    dims[3] !== 3 ||
    !dims[1] ||
    !dims[2]
  ) {
    const got = inputs
      .map(
        (v) =>
          `${v.name}: elem ${v.type?.tensorType?.elemType} [${(v.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimParam || String(d.dimValue)).join(',')}]`,
      )
      .join('; ');
    throw new ModelError(
      `expected one uint8 NHWC input [batch,H,W,3] (facegate's 'pixels' contract), the model has: ${got || 'no inputs'}`,
    );
  }
  return { name: vi.name, height: dims[1], width: dims[2] };
}

/** Evenly spread subset (stable, covers every class folder of a sorted list). */
export function spread<T>(items: readonly T[], n: number): T[] {
  if (n >= items.length) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)] as T);
}

/** Packs images into one uint8 NHWC batch. */
export function pixelBatch(images: readonly RgbImage[], height: number, width: number): Uint8Array {
  const size = height * width * 3;
  const data = new Uint8Array(images.length * size);
  images.forEach((img, i) => {
    if (img.width !== width || img.height !== height || img.data.length !== size) {
      throw new DataError(
        `calibration image ${i} is ${img.width}×${img.height}; the model takes ${width}×${height} RGB (decodeRgb(file, { width: ${width}, height: ${height} }))`,
      );
    }
    data.set(img.data, i * size);
  });
  return data;
}

/** A copy of the graph with `tensors` added as (float) outputs, so a run returns them. */
export function withOutputs(model: OnnxTypes.IModelProto, tensors: readonly string[]): Uint8Array {
  const copy = decodeModel(encodeModel(model));
  const g = copy.graph as OnnxTypes.GraphProto;
  const have = new Set((g.output ?? []).map((o) => o.name));
  for (const t of tensors) {
    if (!have.has(t))
      g.output.push(
        onnx.ValueInfoProto.fromObject({
          name: t,
          type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } },
        }),
      );
  }
  return encodeModel(copy);
}

/**
 * The one batched run of the quantiser: images packed into uint8 NHWC batches of a
 * fixed size and fed to an onnxruntime session, asking it for chosen tensors.
 * Calibration, GPTQ statistics and bias correction use batches of 4 (they ask for many
 * activations at once, so memory is the bound); the mixed-precision measurement and
 * the int8-vs-fp32 comparison use batches of 8 (one or two small outputs).
 */
import { ModelError } from '../../shared/errors.js';
import type { RgbImage } from '../../shared/image.js';
import type { OnnxModel, TensorData } from '../../runtime/ort.js';
import { pixelBatch, type PixelInput } from './io.js';

/** Images per run when many activations are returned (calibration, GPTQ, bias correction). */
export const ACTIVATION_BATCH = 4;
/** Images per run when only the model's decision tensors are returned. */
export const DECISION_BATCH = 8;

/**
 * Calls `visit` with each batch of at most `size` images, in order: the packed pixel
 * tensor, the images and the index of the batch's first image. A wrongly sized image
 * throws a DataError when its batch is reached.
 */
export async function forEachBatch(
  images: readonly RgbImage[],
  input: Pick<PixelInput, 'height' | 'width'>,
  size: number,
  visit: (pixels: TensorData<Uint8Array>, batch: readonly RgbImage[], start: number) => Promise<void> | void,
): Promise<void> {
  for (let start = 0; start < images.length; start += size) {
    const batch = images.slice(start, start + size);
    const pixels = {
      data: pixelBatch(batch, input.height, input.width),
      dims: [batch.length, input.height, input.width, 3],
    };
    await visit(pixels, batch, start);
  }
}

/**
 * Runs `session` over `images` in batches of `size`, asking for `tensors` (which must be
 * float32: the session is built with them as extra outputs, see io.ts `withOutputs`),
 * and passes each batch's values to `visit` with the number of images in it.
 */
export async function runBatched(
  session: OnnxModel,
  input: PixelInput,
  images: readonly RgbImage[],
  tensors: readonly string[],
  size: number,
  visit: (values: ReadonlyMap<string, TensorData<Float32Array>>, count: number) => void,
): Promise<void> {
  await forEachBatch(images, input, size, async (pixels, batch) => {
    const out = await session.run({ [input.name]: pixels }, tensors);
    const values = new Map<string, TensorData<Float32Array>>();
    for (const t of tensors) {
      const v = out[t];
      if (!v || !(v.data instanceof Float32Array))
        throw new ModelError(`tensor ${t} is not float32: the quantiser reads float activations only`);
      values.set(t, { data: v.data, dims: v.dims });
    }
    visit(values, batch.length);
  });
}

/**
 * Image decoding with sharp: every image becomes 8-bit RGB (greyscale expanded to three
 * channels, alpha dropped), the layout every model input here expects.
 */
import sharp, { type OutputInfo } from 'sharp';
import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Interleaved 8-bit RGB pixels, row-major (HWC). */
export interface RgbImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/**
 * Crops of exactly width×height packed into one NHWC uint8 batch, the input every model here
 * takes; a crop of another size is a RangeError naming `what` wants it.
 */
export function rgbBatch(
  crops: readonly RgbImage[],
  width: number,
  height: number,
  what: string,
): { data: Uint8Array; dims: number[] } {
  const px = width * height * 3;
  const data = new Uint8Array(px * crops.length);
  crops.forEach((c, i) => {
    if (c.width !== width || c.height !== height)
      throw new RangeError(`crop is ${c.width}×${c.height}, ${what} wants ${width}×${height}`);
    data.set(c.data, i * px);
  });
  return { data, dims: [crops.length, height, width, 3] };
}

/**
 * The most pixels an image may have before it is decoded: 24 MP takes a 6000×4000 photo
 * for enrolment, far above any camera frame. A 16000×16000 PNG of 750 KB would otherwise
 * decode to 768 MB of pixels (sharp's own limit is 268 MP). Set from camera.maxImagePixels.
 */
export const DEFAULT_MAX_IMAGE_PIXELS = 24_000_000;
let maxImagePixels = DEFAULT_MAX_IMAGE_PIXELS;

/** Sets the pixel limit for every decode in this process (the daemon does it at start). */
export function setImagePixelLimit(pixels: number): void {
  maxImagePixels = pixels;
}

/** An image with more pixels than the limit: refused before its pixels are decoded. */
export class ImageTooLargeError extends Error {
  constructor(limit: number, options?: ErrorOptions) {
    super(
      `image has more than ${limit} pixels (camera.maxImagePixels); send a smaller image or raise the limit`,
      options,
    );
    this.name = 'ImageTooLargeError';
  }
}

export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png', '.gif', '.webp']);

export function isImageFile(file: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(file).toLowerCase());
}

/** Image files directly in `dir`, sorted by name (stable order for seeds and class indices). */
export async function listImages(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && isImageFile(e.name))
    .map((e) => path.join(dir, e.name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Decodes a file or buffer to RGB; with `size`, resizes to exactly width×height
 * (bilinear, aspect ratio not kept, like Keras `target_size`). Throws on a corrupt image.
 */
export async function decodeRgb(
  input: string | Buffer | Uint8Array,
  size?: { width: number; height: number },
): Promise<RgbImage> {
  const limit = maxImagePixels;
  let img = sharp(input, { failOn: 'error', animated: false, limitInputPixels: limit })
    .rotate()
    .removeAlpha()
    .toColourspace('srgb');
  if (size) img = img.resize(size.width, size.height, { fit: 'fill', kernel: 'linear' });
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await img.raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    // sharp reads the header first and refuses before it allocates the pixels.
    if (/exceeds pixel limit/i.test((err as Error).message)) throw new ImageTooLargeError(limit, { cause: err });
    throw err;
  }
  const { data, info } = out;
  if (info.channels === 3)
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
  // Greyscale that sharp kept single-channel: expand to RGB.
  const px = info.width * info.height;
  const rgb = new Uint8Array(px * 3);
  for (let i = 0; i < px; i++) {
    const v = data[i * info.channels] ?? 0;
    rgb[i * 3] = v;
    rgb[i * 3 + 1] = v;
    rgb[i * 3 + 2] = v;
  }
  return { data: rgb, width: info.width, height: info.height };
}

/**
 * Whole camera-like frames composed from face crops (ORL faces pasted on a larger
 * background), made in code at test/eval time so that no data is committed. Seeded.
 */
import sharp from 'sharp';
import { mulberry32 } from '../../src/train/rng.js';

export interface ComposeOptions {
  readonly width?: number;
  readonly height?: number;
  /** Face height in the frame as a multiple of the crop's own height, drawn in [min, max]. */
  readonly scale?: readonly [number, number];
  readonly seed: number;
}

export interface Composed {
  /** Encoded JPEG frame. */
  readonly jpeg: Buffer;
  /** Where the face crop was pasted (frame pixels). */
  readonly box: { x: number; y: number; width: number; height: number };
}

/** A textured background: colour gradient, a few soft blobs, pixel noise. */
export function background(width: number, height: number, seed: number): Buffer {
  const rnd = mulberry32(seed);
  const px = Buffer.alloc(width * height * 3);
  const base = [rnd() * 200, rnd() * 200, rnd() * 200];
  const blobs = Array.from({ length: 6 }, () => ({
    x: rnd() * width,
    y: rnd() * height,
    r: 40 + rnd() * 160,
    c: [rnd() * 255, rnd() * 255, rnd() * 255],
  }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        let v = (base[c] ?? 0) * (0.6 + (0.4 * x) / width) + 30 * (y / height);
        for (const b of blobs) {
          const d2 = ((x - b.x) ** 2 + (y - b.y) ** 2) / (b.r * b.r);
          if (d2 < 4) v = v * (1 - 0.5 * Math.exp(-d2)) + 0.5 * Math.exp(-d2) * (b.c[c] ?? 0);
        }
        px[o + c] = Math.max(0, Math.min(255, Math.round(v + (rnd() - 0.5) * 16)));
      }
    }
  }
  return px;
}

/** Pastes the face image file onto a background at a seeded position and scale. */
export async function composeFrame(face: string | Buffer, o: ComposeOptions): Promise<Composed> {
  const width = o.width ?? 640;
  const height = o.height ?? 480;
  const rnd = mulberry32(o.seed * 7919 + 17);
  const meta = await sharp(face).metadata();
  const [lo, hi] = o.scale ?? [1.6, 2.6];
  const s = lo + (hi - lo) * rnd();
  const fw = Math.round((meta.width ?? 92) * s);
  const fh = Math.round((meta.height ?? 112) * s);
  const x = Math.floor(rnd() * (width - fw));
  const y = Math.floor(rnd() * (height - fh));
  const resized = await sharp(face).resize(fw, fh).removeAlpha().toColourspace('srgb').png().toBuffer();
  const jpeg = await sharp(background(width, height, o.seed), { raw: { width, height, channels: 3 } })
    .composite([{ input: resized, left: x, top: y }])
    .jpeg({ quality: 90 })
    .toBuffer();
  return { jpeg, box: { x, y, width: fw, height: fh } };
}

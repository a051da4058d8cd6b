/**
 * Crop and align: a square crop with margin around a face, rotated so that the eyes are level,
 * sampled straight to the model's input size. Pure functions (no sharp): one bilinear pass does
 * crop, rotation and resize, so the device and training get bit-identical crops.
 */
import type { RgbImage } from '../shared/image.js';
import type { Box, Point } from '../shared/messages.js';

/** Where to cut: centre and side of the square in frame pixels, rotation in radians. */
export interface CropSquare {
  readonly cx: number;
  readonly cy: number;
  readonly side: number;
  /** Angle of the eye line (image x axis towards y axis); the crop is rotated by −angle. */
  readonly angle: number;
}

/** Output pixel (u, v) → source (x, y): x = a·u + b·v + c, y = d·u + e·v + f (pixel centres at .5). */
export interface Affine {
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
  readonly e: number;
  readonly f: number;
}

export interface AlignOptions {
  /** Side of the square crop as a multiple of the face box's longer side. */
  readonly margin: number;
  /** Level the eyes when the detector gave keypoints. */
  readonly rotate: boolean;
  /** Largest rotation applied, radians; beyond it the keypoints are likely wrong. */
  readonly maxAngle?: number;
}

/**
 * The angle of the line between the eyes (BlazeFace keypoints 0 and 1), taken from the
 * eye on the image's left to the one on its right; 0 for a level face.
 */
export function eyeAngle(keypoints: readonly Point[]): number | null {
  const p = keypoints[0];
  const q = keypoints[1];
  if (!p || !q) return null;
  const [l, r] = p.x <= q.x ? [p, q] : [q, p];
  return Math.atan2(r.y - l.y, r.x - l.x);
}

/** The square to cut for a face: centred on the box, side = margin × longer side. */
export function cropSquare(box: Box, keypoints: readonly Point[], options: AlignOptions): CropSquare {
  let angle = options.rotate ? (eyeAngle(keypoints) ?? 0) : 0;
  const maxAngle = options.maxAngle ?? Math.PI / 4;
  if (Math.abs(angle) > maxAngle) angle = 0;
  return {
    cx: box.x + box.width / 2,
    cy: box.y + box.height / 2,
    side: Math.max(box.width, box.height) * options.margin,
    angle,
  };
}

/** The affine map from an `size`×`size` output to the frame for a crop square. */
export function alignmentTransform(sq: CropSquare, size: number): Affine {
  const s = sq.side / size;
  const cos = Math.cos(sq.angle);
  const sin = Math.sin(sq.angle);
  // Source = centre + R(angle)·s·(u + 0.5 − size/2, v + 0.5 − size/2), in pixel-centre coordinates
  // (minus 0.5 to index arrays).
  const h = size / 2 - 0.5;
  return {
    a: s * cos,
    b: -s * sin,
    c: sq.cx - 0.5 - s * (cos * h - sin * h),
    d: s * sin,
    e: s * cos,
    f: sq.cy - 0.5 - s * (sin * h + cos * h),
  };
}

/** Applies an affine map to a point (output → source). */
export function applyAffine(m: Affine, u: number, v: number): Point {
  return { x: m.a * u + m.b * v + m.c, y: m.d * u + m.e * v + m.f };
}

/**
 * Samples an RGB image through `m` into a `width`×`height` image, bilinear, clamping at the
 * edges (a face at the border gets its border pixels repeated rather than black bars).
 * When the map shrinks by more than 2×, it averages a 2×2 / 3×3 … grid of bilinear samples
 * per output pixel so that large faces are not aliased.
 */
export function warpAffine(src: RgbImage, m: Affine, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const scale = Math.hypot(m.a, m.d);
  const n = Math.max(1, Math.min(4, Math.floor(scale)));
  const { data, width: W, height: H } = src;
  const k = n * n;
  const maxX = W - 1;
  const maxY = H - 1;
  const { a, b: mb, c, d, e, f } = m;
  // Sub-sample offsets within an output pixel: (s + 0.5) / n − 0.5, the same values for every pixel.
  const offs = new Float64Array(n);
  for (let s = 0; s < n; s++) offs[s] = (s + 0.5) / n - 0.5;
  // Hot loop (runs for every face of every frame): locals only, no closures or allocations. The
  // arithmetic is written in the same order as a per-sample `a·u + b·v + c`, so the output does
  // not depend on how the loop is arranged.
  if (n === 1) return warpBilinear(data, W, H, m, width, height, out);
  let o = 0;
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      let r = 0;
      let g = 0;
      let bl = 0;
      for (let sy = 0; sy < n; sy++) {
        const vv = v + offs[sy]!;
        const bv = mb * vv;
        const ev = e * vv;
        for (let sx = 0; sx < n; sx++) {
          const uu = u + offs[sx]!;
          let x = a * uu + bv + c;
          let y = d * uu + ev + f;
          x = x < 0 ? 0 : x > maxX ? maxX : x;
          y = y < 0 ? 0 : y > maxY ? maxY : y;
          const x0 = x | 0;
          const y0 = y | 0;
          const dx = x0 < maxX ? 3 : 0;
          const dy = y0 < maxY ? W * 3 : 0;
          const fx = x - x0;
          const fy = y - y0;
          const w00 = (1 - fx) * (1 - fy);
          const w01 = fx * (1 - fy);
          const w10 = (1 - fx) * fy;
          const w11 = fx * fy;
          const i00 = (y0 * W + x0) * 3;
          const i01 = i00 + dx;
          const i10 = i00 + dy;
          const i11 = i10 + dx;
          r += data[i00]! * w00 + data[i01]! * w01 + data[i10]! * w10 + data[i11]! * w11;
          g += data[i00 + 1]! * w00 + data[i01 + 1]! * w01 + data[i10 + 1]! * w10 + data[i11 + 1]! * w11;
          bl += data[i00 + 2]! * w00 + data[i01 + 2]! * w01 + data[i10 + 2]! * w10 + data[i11 + 2]! * w11;
        }
      }
      // (x + 0.5) | 0 is Math.round for the non-negative sums here (weights and pixels are ≥ 0),
      // and measured 3× faster in this loop than Math.round.
      if (k === 1) {
        out[o] = (r + 0.5) | 0;
        out[o + 1] = (g + 0.5) | 0;
        out[o + 2] = (bl + 0.5) | 0;
      } else {
        out[o] = (r / k + 0.5) | 0;
        out[o + 1] = (g / k + 0.5) | 0;
        out[o + 2] = (bl / k + 0.5) | 0;
      }
      o += 3;
    }
  }
  return { data: out, width, height };
}

/**
 * warpAffine with one sample a pixel (the usual case: a face crop is rarely more than twice the
 * model input), without the sub-sample loops: the same arithmetic, so the same bytes, ~2× faster.
 */
function warpBilinear(
  data: Uint8Array,
  W: number,
  H: number,
  m: Affine,
  width: number,
  height: number,
  out: Uint8Array,
): RgbImage {
  const maxX = W - 1;
  const maxY = H - 1;
  const { a, b: mb, c, d, e, f } = m;
  let o = 0;
  for (let v = 0; v < height; v++) {
    const bv = mb * v;
    const ev = e * v;
    for (let u = 0; u < width; u++) {
      let x = a * u + bv + c;
      let y = d * u + ev + f;
      x = x < 0 ? 0 : x > maxX ? maxX : x;
      y = y < 0 ? 0 : y > maxY ? maxY : y;
      const x0 = x | 0;
      const y0 = y | 0;
      const dx = x0 < maxX ? 3 : 0;
      const dy = y0 < maxY ? W * 3 : 0;
      const fx = x - x0;
      const fy = y - y0;
      const w00 = (1 - fx) * (1 - fy);
      const w01 = fx * (1 - fy);
      const w10 = (1 - fx) * fy;
      const w11 = fx * fy;
      const i00 = (y0 * W + x0) * 3;
      const i01 = i00 + dx;
      const i10 = i00 + dy;
      const i11 = i10 + dx;
      out[o] = (data[i00]! * w00 + data[i01]! * w01 + data[i10]! * w10 + data[i11]! * w11 + 0.5) | 0;
      out[o + 1] =
        (data[i00 + 1]! * w00 + data[i01 + 1]! * w01 + data[i10 + 1]! * w10 + data[i11 + 1]! * w11 + 0.5) | 0;
      out[o + 2] =
        (data[i00 + 2]! * w00 + data[i01 + 2]! * w01 + data[i10 + 2]! * w10 + data[i11 + 2]! * w11 + 0.5) | 0;
      o += 3;
    }
  }
  return { data: out, width, height };
}

/** Crop, level and resize one face to `size`×`size`. */
export function alignFace(
  src: RgbImage,
  box: Box,
  keypoints: readonly Point[],
  size: number,
  options: AlignOptions,
): RgbImage {
  return warpAffine(src, alignmentTransform(cropSquare(box, keypoints, options), size), size, size);
}

/**
 * Canonical positions of the image-left eye, image-right eye, nose tip and mouth centre in a
 * face crop, as fractions of the crop side. They are the five-point template of ArcFace-style
 * pipelines (112×112: eyes (38.29, 51.70) and (73.53, 51.50), nose (56.03, 71.74), mouth
 * corners (41.55, 92.37) and (70.73, 92.20); the mouth centre is the corners' mean), divided
 * by 112. BlazeFace gives one mouth point, so the template uses the corners' centre.
 */
export const CANONICAL_FACE: readonly Point[] = [
  { x: 38.2946 / 112, y: 51.6963 / 112 },
  { x: 73.5318 / 112, y: 51.5014 / 112 },
  { x: 56.0252 / 112, y: 71.7366 / 112 },
  { x: 56.1396 / 112, y: 92.2848 / 112 },
];

/**
 * The same four points where dlib's face chip puts them (dlib `get_face_chip_details` with
 * padding 0.25, the alignment its ResNet face descriptor was trained on): the eye centres
 * (means of the six points of each eye), the nose tip (point 30) and the mouth centre (mean
 * of inner-lip points 62 and 66) of dlib's mean 68-point face shape, each mapped by
 * (0.25 + p) / 1.5. The face sits higher and larger than in the ArcFace crop.
 * Source: dlib/image_transforms/interpolation.h (mean_face_shape_x / _y).
 */
export const DLIB_FACE: readonly Point[] = [
  { x: (0.25 + 0.225497) / 1.5, y: (0.25 + 0.215998) / 1.5 },
  { x: (0.25 + 0.754757) / 1.5, y: (0.25 + 0.215998) / 1.5 },
  { x: (0.25 + 0.490127) / 1.5, y: (0.25 + 0.515625) / 1.5 },
  { x: (0.25 + 0.490127) / 1.5, y: (0.25 + 0.808769) / 1.5 },
];

/** The landmark templates: where a crop puts the eyes, nose and mouth. */
export const faceTemplates = { arcface: CANONICAL_FACE, dlib: DLIB_FACE } as const;
export type FaceTemplate = keyof typeof faceTemplates;

/**
 * The canonical template for a crop that shows `zoom` times more around the face than the
 * template's own crop (zoom 1: the template itself), zoomed about the crop centre.
 */
export function canonicalTemplate(zoom: number, template: FaceTemplate = 'arcface'): Point[] {
  return faceTemplates[template].map((p) => ({ x: 0.5 + (p.x - 0.5) / zoom, y: 0.5 + (p.y - 0.5) / zoom }));
}

/**
 * Least-squares similarity transform (rotation, uniform scale, translation; no reflection)
 * taking the points `from` onto `to`: returns the affine map with to ≈ M·from. Needs at
 * least two distinct points; null when `from` has no spread.
 */
export function similarityTransform(from: readonly Point[], to: readonly Point[]): Affine | null {
  const n = Math.min(from.length, to.length);
  if (n < 2) return null;
  let fu = 0;
  let fv = 0;
  let tx = 0;
  let ty = 0;
  for (let i = 0; i < n; i++) {
    fu += from[i]!.x;
    fv += from[i]!.y;
    tx += to[i]!.x;
    ty += to[i]!.y;
  }
  fu /= n;
  fv /= n;
  tx /= n;
  ty /= n;
  let ss = 0;
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const u = from[i]!.x - fu;
    const v = from[i]!.y - fv;
    const x = to[i]!.x - tx;
    const y = to[i]!.y - ty;
    ss += u * u + v * v;
    sp += u * x + v * y;
    sq += u * y - v * x;
  }
  if (!(ss > 1e-12)) return null;
  const p = sp / ss;
  const q = sq / ss;
  // x = p·u − q·v + c, y = q·u + p·v + f
  return { a: p, b: -q, c: tx - p * fu + q * fv, d: q, e: p, f: ty - q * fu - p * fv };
}

/**
 * The four BlazeFace keypoints used for alignment, in template order: the eye on the image's
 * left, the eye on its right, the nose, the mouth. null when the detector gave fewer.
 */
export function alignmentPoints(keypoints: readonly Point[]): Point[] | null {
  const [e0, e1, nose, mouth] = keypoints;
  if (!e0 || !e1 || !nose || !mouth) return null;
  const [l, r] = e0.x <= e1.x ? [e0, e1] : [e1, e0];
  return [l, r, nose, mouth];
}

/**
 * Output pixel → frame map that puts the face's keypoints on the canonical template in a
 * `size`×`size` crop (pixel centres at .5 on both sides, as in alignmentTransform). null when
 * the keypoints are missing or degenerate, or when the fitted map disagrees with the box by
 * more than `maxAngle` or a factor 3 in scale (keypoints that wandered off the face).
 */
export function landmarkTransform(
  box: Box,
  keypoints: readonly Point[],
  size: number,
  zoom: number,
  maxAngle = Math.PI / 4,
  templateName: FaceTemplate = 'arcface',
): Affine | null {
  const pts = alignmentPoints(keypoints);
  if (!pts) return null;
  const template = canonicalTemplate(zoom, templateName).map((p) => ({ x: p.x * size - 0.5, y: p.y * size - 0.5 }));
  const m = similarityTransform(
    template,
    pts.map((p) => ({ x: p.x - 0.5, y: p.y - 0.5 })),
  );
  if (!m) return null;
  const scale = Math.hypot(m.a, m.d);
  const boxScale = Math.max(box.width, box.height) / size;
  if (Math.abs(Math.atan2(m.d, m.a)) > maxAngle || scale > 3 * boxScale * zoom || scale < (boxScale * zoom) / 3)
    return null;
  return m;
}

/**
 * dlib's mean face shape (dlib/image_transforms/interpolation.h, `mean_face_shape_x` / `_y`):
 * points 17 to 67 of its 68-point numbering, in a unit square, before padding.
 */
const DLIB_MEAN_X = [
  0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124, 0.904991, 0.98004, 0.490127,
  0.490127, 0.490127, 0.490127, 0.36688, 0.426036, 0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606,
  0.260918, 0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149, 0.340985, 0.428858, 0.490127,
  0.551395, 0.639268, 0.726104, 0.642159, 0.556721, 0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127,
  0.552157, 0.689874, 0.553364, 0.490127, 0.42689,
];
const DLIB_MEAN_Y = [
  0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454, 0.203352,
  0.307009, 0.409805, 0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852,
  0.231733, 0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099, 0.780233, 0.745405,
  0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805, 0.902192, 0.909281, 0.902192, 0.864805, 0.784792,
  0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182,
];

/**
 * The 68-point landmarks dlib's `get_face_chip_details` fits its chip to: the nose (27–35),
 * the eyes (36–47), the outer lip's upper half (48–54) and the inner lip's upper half
 * (60–64). Face.landmarks lists its points in this order.
 */
export const DLIB_CHIP_POINTS: readonly number[] = [
  ...Array.from({ length: 28 }, (_, i) => 27 + i),
  ...Array.from({ length: 5 }, (_, i) => 60 + i),
];

/** dlib's default chip padding: the mean shape's unit square grows by this share of its side on every side. */
export const DLIB_CHIP_PADDING = 0.25;

/**
 * Where dlib's face chip puts DLIB_CHIP_POINTS in a `size`×`size` crop, in pixel-index
 * coordinates (pixel centres at integers): mean shape point p → ((padding + p) / (1 + 2 padding)) · size − 0.5.
 */
export function dlibChipTemplate(size: number, padding = DLIB_CHIP_PADDING): Point[] {
  return DLIB_CHIP_POINTS.map((i) => ({
    x: ((padding + DLIB_MEAN_X[i - 17]!) / (1 + 2 * padding)) * size - 0.5,
    y: ((padding + DLIB_MEAN_Y[i - 17]!) / (1 + 2 * padding)) * size - 0.5,
  }));
}

/**
 * dlib's face chip from dense landmarks (Face.landmarks, DLIB_CHIP_POINTS in frame pixels):
 * the least-squares similarity transform putting them on dlib's mean face shape, as dlib's
 * `get_face_chip_details` (padding 0.25) defines the chip its ResNet descriptor was trained
 * on. null when the points are missing or degenerate.
 */
export function meshChipTransform(landmarks: readonly Point[], size: number): Affine | null {
  if (landmarks.length !== DLIB_CHIP_POINTS.length) return null;
  return similarityTransform(
    dlibChipTemplate(size),
    landmarks.map((p) => ({ x: p.x - 0.5, y: p.y - 0.5 })),
  );
}

/**
 * How a face is cut: `box` (square around the detector box, eyes levelled), `landmarks`
 * (keypoints on the canonical template) or `mesh` (dense landmarks on dlib's mean face shape,
 * meshChipTransform; the `landmarks` cut where a face has none).
 */
export type AlignMethod = 'box' | 'landmarks' | 'mesh';

export interface FaceAlignment extends AlignOptions {
  readonly method: AlignMethod;
  /** landmarks: how much more than the template's crop the crop shows (1 = the template itself). */
  readonly zoom: number;
  /** landmarks: where the crop puts the eyes, nose and mouth (default `arcface`). */
  readonly template?: FaceTemplate;
}

/**
 * The one face warp of the project (enrolment, training, evaluation and the device): the map
 * for a detected face, by `method`. A mesh alignment without usable `landmarks` (the face's
 * dense landmarks) falls back to the landmarks one; a landmarks alignment whose keypoints are
 * unusable falls back to the box.
 */
export function faceTransform(
  box: Box,
  keypoints: readonly Point[],
  size: number,
  o: FaceAlignment,
  landmarks?: readonly Point[],
): Affine {
  if (o.method === 'mesh' && landmarks) {
    const m = meshChipTransform(landmarks, size);
    if (m) return m;
  }
  if (o.method === 'landmarks' || o.method === 'mesh') {
    const m = landmarkTransform(box, keypoints, size, o.zoom, o.maxAngle, o.template);
    if (m) return m;
  }
  return alignmentTransform(cropSquare(box, keypoints, o), size);
}

/**
 * Dense face landmarks for dlib's face chip (gallery.landmarks mesh): `@vladmandic/human`'s
 * facemesh (468 points, MediaPipe's numbering), prepared as a built-in model like BlazeFace
 * (src/model/builtin.ts), run on a square crop around each detected face. Of its points, the
 * ones that stand for dlib's 68-point landmarks 27–54 and 60–64 (DLIB_CHIP_POINTS) are kept on
 * the face, in frame pixels, for meshChipTransform (src/detect/align.ts).
 */
import { OnnxModel } from '../runtime/ort.js';
import { ModelError } from '../shared/errors.js';
import type { RgbImage } from '../shared/image.js';
import type { Face, Point } from '../shared/messages.js';
import { alignmentTransform, applyAffine, cropSquare, warpAffine, type Affine, type CropSquare } from './align.js';

/** The mesh model's input side. */
export const MESH_INPUT = 192;
/** Its crop: a square of this many times the detector box's longer side about the box centre, eyes levelled (as `@vladmandic/human` cuts it). */
export const MESH_MARGIN = 1.4;
/** Mesh points in the model's output: 468 × (x, y, z), x and y in input pixels. */
export const MESH_POINTS = 468;

/**
 * For each of DLIB_CHIP_POINTS (in that order), the mesh points whose mean stands for it: a
 * correspondence between MediaPipe's face mesh and dlib's 68 points as published for
 * converting one to the other (nose bridge and tip, nostrils, eye corners and lids, lips).
 */
export const MESH_FOR_DLIB: readonly (readonly number[])[] = [
  [168, 6], // 27: nose bridge, top
  [197, 195], // 28
  [5], // 29
  [4], // 30: nose tip
  [75], // 31: nostrils, left to right
  [97],
  [2],
  [326],
  [305], // 35
  [33], // 36: the image-left eye, outer corner, then round the lids
  [160],
  [158],
  [133], // 39: inner corner
  [153],
  [144],
  [362], // 42: the image-right eye, inner corner
  [385],
  [387],
  [263], // 45: outer corner
  [373],
  [380],
  [61], // 48: outer lip, left corner, across the upper lip
  [40],
  [37],
  [0],
  [267],
  [270],
  [291], // 54: right corner
  [78], // 60: inner lip, left corner, across the upper lip
  [81],
  [13],
  [311],
  [308], // 64
];

/** The square the mesh model sees for a face (MESH_MARGIN, eyes levelled). */
export function meshCrop(face: Pick<Face, 'box' | 'keypoints'>): CropSquare {
  return cropSquare(face.box, face.keypoints, { margin: MESH_MARGIN, rotate: true });
}

/**
 * The dlib chip points in frame pixels from one face's mesh output (`points`: 468 × (x, y, z)
 * in crop pixels) and the crop's map (crop pixel → frame pixel index, alignmentTransform): each
 * the mean of its MESH_FOR_DLIB points. Pure.
 */
export function dlibPointsFromMesh(points: ArrayLike<number>, crop: Affine): Point[] {
  return MESH_FOR_DLIB.map((ix) => {
    let x = 0;
    let y = 0;
    for (const i of ix) {
      const p = applyAffine(crop, points[3 * i]!, points[3 * i + 1]!);
      x += p.x;
      y += p.y;
    }
    // Pixel index → frame pixels (centres at .5), as keypoints are.
    return { x: x / ix.length + 0.5, y: y / ix.length + 0.5 };
  });
}

/** The face mesh on onnxruntime: adds `landmarks` (DLIB_CHIP_POINTS) to detected faces. */
export class FaceMesh {
  private constructor(
    private readonly model: OnnxModel,
    private readonly input: string,
    private readonly output: string,
  ) {}

  static async load(source: string | Uint8Array, o: { threads?: number } = {}): Promise<FaceMesh> {
    const model = await OnnxModel.load(source, { threads: o.threads });
    const sig = model.signature();
    const input = sig.inputs[0];
    const output = sig.outputs.find((x) => x.shape.at(-1) === MESH_POINTS * 3);
    if (!input || !output || input.shape[1] !== MESH_INPUT || input.shape[2] !== MESH_INPUT) {
      await model.release();
      throw new ModelError(
        `face mesh ${model.source} needs a float32 [N, ${MESH_INPUT}, ${MESH_INPUT}, 3] input and an [N, ${MESH_POINTS * 3}] output: prepare it again with facegate models prepare --force`,
      );
    }
    return new FaceMesh(model, input.name, output.name);
  }

  /** The faces with their landmarks (one batch for all faces of the image). */
  async landmarks(img: RgbImage, faces: readonly Face[]): Promise<Face[]> {
    if (faces.length === 0) return [];
    const S = MESH_INPUT;
    const px = S * S * 3;
    const maps = faces.map((f) => alignmentTransform(meshCrop(f), S));
    const data = new Float32Array(px * faces.length);
    maps.forEach((m, i) => {
      const crop = warpAffine(img, m, S, S).data;
      for (let j = 0; j < px; j++) data[i * px + j] = crop[j]! / 255;
    });
    const out = (await this.model.run({ [this.input]: { data, dims: [faces.length, S, S, 3] } }, [this.output]))[
      this.output
    ]?.data;
    if (!(out instanceof Float32Array) || out.length !== faces.length * MESH_POINTS * 3)
      throw new ModelError(`face mesh ${this.model.source} returned no [${faces.length}, ${MESH_POINTS * 3}] points`);
    const n = MESH_POINTS * 3;
    return faces.map((f, i) => ({ ...f, landmarks: dlibPointsFromMesh(out.subarray(i * n, (i + 1) * n), maps[i]!) }));
  }

  close(): Promise<void> {
    return this.model.release();
  }
}

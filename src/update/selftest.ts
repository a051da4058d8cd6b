/**
 * The install self-test: reference images travel inside the bundle with the answers the
 * model gave for them when the bundle was made (`facegate bundle create` runs the model).
 * Before a kiosk swaps to a new model it runs the model on the same images and must get
 * the same answers: same label, probabilities and embedding within a tolerance (int8
 * kernels may round differently on another CPU). That catches a model that does not
 * load, a wrong or corrupt file that still hashes right because it was signed by
 * mistake, and a runtime on the kiosk that computes something else.
 *
 * The runner sits behind `ModelRunner` so the self-test can move onto the recognition
 * pipeline without changing the bundle format: what is recorded is the model's raw
 * output for an input-sized crop, which is what the pipeline feeds the model.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import type { Manifest } from '../model/manifest.js';
import { MODEL_FP32_FILE, MODEL_INT8_FILE } from '../model/manifest.js';
import type { RgbImage } from '../shared/image.js';
import { decodeRgb } from '../shared/image.js';
import { ModelError } from '../shared/errors.js';
import { verifyModelDir } from '../model/dir/directory.js';

export const SELFTEST_DIR = 'selftest';
export const SELFTEST_ANSWERS = `${SELFTEST_DIR}/answers.json`;

/** What one model file said for one image. */
export interface Answer {
  readonly label: string;
  readonly probabilities: readonly number[];
  readonly embedding: readonly number[];
}

export const answerSchema = z
  .object({
    label: z.string(),
    probabilities: z.array(z.number()),
    embedding: z.array(z.number()),
  })
  .strict();

export const answersSchema = z
  .object({
    formatVersion: z.literal(1),
    tolerance: z
      .object({
        probability: z.number().min(0).max(1).describe('largest allowed absolute difference of any class probability'),
        embeddingCosine: z
          .number()
          .min(-1)
          .max(1)
          .describe('smallest allowed cosine between recorded and computed embedding'),
      })
      .strict(),
    cases: z
      .array(
        z
          .object({
            image: z.string().describe('bundle path of the reference image (PNG at the model input size)'),
            source: z.string().describe('file name it was made from, for the operator'),
            results: z.record(z.string(), answerSchema).describe('per model file (model.onnx, model.int8.onnx)'),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type SelfTestAnswers = z.infer<typeof answersSchema>;

export const DEFAULT_TOLERANCE = { probability: 0.02, embeddingCosine: 0.99 } as const;

/** Runs a model file of a model directory on input-sized RGB crops. */
export interface ModelRunner {
  answer(modelDir: string, manifest: Manifest, modelFile: string, images: readonly RgbImage[]): Promise<Answer[]>;
}

/** The ONNX model files of a directory that a kiosk may run, in a fixed order. */
export function modelFilesOf(manifest: Manifest): string[] {
  const files = [MODEL_FP32_FILE, MODEL_INT8_FILE].filter((f) => f in manifest.files);
  if (files.length === 0)
    throw new ModelError(`model ${manifest.version} has neither ${MODEL_FP32_FILE} nor ${MODEL_INT8_FILE}`);
  return files;
}

/**
 * The device's own recognition code (src/recognise/recogniser.ts): the model file at the
 * precision it belongs to, the references and thresholds of the manifest. The answer's
 * label is the device's decision: the name, or `refused:<candidate>`. Models without a
 * recognition section (not calibrated yet) fall back to the raw model's argmax.
 */
export class DeviceModelRunner implements ModelRunner {
  private readonly raw = new OnnxModelRunner();

  async answer(
    modelDir: string,
    manifest: Manifest,
    modelFile: string,
    images: readonly RgbImage[],
  ): Promise<Answer[]> {
    if (!manifest.recognition) return this.raw.answer(modelDir, manifest, modelFile, images);
    const { Recogniser } = await import('../recognise/recogniser.js');
    const rec = await Recogniser.load({
      modelDir,
      threads: 1,
      precision: modelFile === MODEL_INT8_FILE ? 'int8' : 'fp32',
    });
    try {
      const out: Answer[] = [];
      for (const img of images) {
        const [d] = await rec.describe([img]);
        if (!d) throw new ModelError(`model ${modelFile} gave no description`);
        const face = { frameId: 0, box: { x: 0, y: 0, width: img.width, height: img.height }, score: 1, keypoints: [] };
        const m = rec.match(face, d);
        out.push({
          label: m.label ?? `refused:${m.candidate}`,
          probabilities: Array.from(d.probabilities),
          embedding: Array.from(d.vector),
        });
      }
      return out;
    } finally {
      await rec.close();
    }
  }
}

/** onnxruntime on the raw model: argmax of `probabilities`, plus the embedding. */
export class OnnxModelRunner implements ModelRunner {
  async answer(
    modelDir: string,
    manifest: Manifest,
    modelFile: string,
    images: readonly RgbImage[],
  ): Promise<Answer[]> {
    const { OnnxModel } = await import('../runtime/ort.js');
    const model = await OnnxModel.load(path.join(modelDir, modelFile), { threads: 1 });
    try {
      const { height, width, name } = manifest.input;
      const probName = manifest.outputs.probabilities;
      const embName = manifest.outputs.embedding;
      const out: Answer[] = [];
      for (const img of images) {
        if (img.width !== width || img.height !== height) {
          throw new ModelError(`self-test image is ${img.width}×${img.height}, the model takes ${width}×${height}`);
        }
        const r = await model.run({ [name]: { data: img.data, dims: [1, height, width, 3] } }, [probName, embName]);
        const probs = Array.from((r[probName]?.data as Float32Array | undefined) ?? []);
        const emb = Array.from((r[embName]?.data as Float32Array | undefined) ?? []);
        if (probs.length !== manifest.classes.length) {
          throw new ModelError(
            `model ${modelFile} gives ${probs.length} probabilities for ${manifest.classes.length} classes`,
          );
        }
        let best = 0;
        for (let i = 1; i < probs.length; i++) if ((probs[i] ?? -Infinity) > (probs[best] ?? -Infinity)) best = i;
        out.push({ label: manifest.classes[best] ?? String(best), probabilities: probs, embedding: emb });
      }
      return out;
    } finally {
      await model.release();
    }
  }
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 && nb === 0) return 1;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Why `got` is not the recorded answer, or null when it is. */
export function compareAnswer(recorded: Answer, got: Answer, tolerance: SelfTestAnswers['tolerance']): string | null {
  if (recorded.label !== got.label) return `label ${got.label}, recorded ${recorded.label}`;
  if (recorded.probabilities.length !== got.probabilities.length) {
    return `${got.probabilities.length} probabilities, recorded ${recorded.probabilities.length}`;
  }
  let worst = 0;
  for (let i = 0; i < got.probabilities.length; i++) {
    const d = Math.abs((got.probabilities[i] ?? NaN) - (recorded.probabilities[i] ?? NaN));
    if (!(d <= worst)) worst = d; // NaN propagates to a failure
  }
  if (!(worst <= tolerance.probability))
    return `probability off by ${worst.toFixed(4)} (tolerance ${tolerance.probability})`;
  if (recorded.embedding.length !== got.embedding.length)
    return `embedding size ${got.embedding.length}, recorded ${recorded.embedding.length}`;
  const c = cosine(recorded.embedding, got.embedding);
  if (!(c >= tolerance.embeddingCosine))
    return `embedding cosine ${c.toFixed(4)} (needs ≥ ${tolerance.embeddingCosine})`;
  return null;
}

/** Runs the self-test on an unpacked bundle's model; throws ModelError with the first mismatch. */
export async function runSelfTest(
  modelDir: string,
  manifest: Manifest,
  answers: SelfTestAnswers,
  imageDir: string,
  runner: ModelRunner,
): Promise<void> {
  const images: RgbImage[] = [];
  for (const c of answers.cases) images.push(await decodeRgb(path.join(imageDir, c.image)));
  for (const file of modelFilesOf(manifest)) {
    const got = await runner.answer(modelDir, manifest, file, images);
    answers.cases.forEach((c, i) => {
      const recorded = c.results[file];
      if (!recorded) throw new ModelError(`self-test has no recorded answer for ${file}`);
      const why = compareAnswer(recorded, got[i] as Answer, answers.tolerance);
      if (why) throw new ModelError(`self-test failed on ${file}, image ${c.source}: ${why}`);
    });
  }
}

/**
 * Checks an unpacked bundle in `dir` (its `model/` against its manifest) and runs the
 * self-test on it (kiosk install and `facegate bundle verify`). `model`: its manifest,
 * when the caller has verified the directory already. Returns the number of reference images.
 */
export async function selfTestUnpacked(dir: string, runner: ModelRunner, model?: Manifest): Promise<number> {
  const modelDir = path.join(dir, 'model');
  model ??= await verifyModelDir(modelDir);
  const answers = answersSchema.parse(
    JSON.parse(await readFile(path.join(dir, ...SELFTEST_ANSWERS.split('/')), 'utf8')),
  );
  await runSelfTest(modelDir, model, answers, dir, runner);
  return answers.cases.length;
}

/** Encodes an RGB crop as PNG (lossless, so the kiosk decodes the exact pixels). */
export async function encodePng(img: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: 3 },
  })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/**
 * Deterministic stand-in references when the operator gives none: a gradient, stripes,
 * a checkerboard and flat colours. They prove the file loads and computes what it did
 * at packing time; real enrolment faces (`--reference`) also exercise the class scores.
 */
export function syntheticReferences(width: number, height: number): { source: string; image: RgbImage }[] {
  const make = (f: (x: number, y: number) => [number, number, number]): RgbImage => {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const [r, g, b] = f(x, y);
        const i = (y * width + x) * 3;
        data[i] = r;
        data[i + 1] = g;
        data[i + 2] = b;
      }
    }
    return { data, width, height };
  };
  return [
    {
      source: 'synthetic:gradient',
      image: make((x, y) => [Math.floor((255 * x) / width), Math.floor((255 * y) / height), 128]),
    },
    { source: 'synthetic:stripes', image: make((x) => (Math.floor(x / 16) % 2 ? [230, 40, 40] : [20, 20, 200])) },
    {
      source: 'synthetic:checker',
      image: make((x, y) => ((Math.floor(x / 28) + Math.floor(y / 28)) % 2 ? [250, 250, 250] : [10, 60, 10])),
    },
    { source: 'synthetic:warm', image: make((x, y) => [200, 120 + ((x * y) % 50), 40]) },
  ];
}

export async function loadReferences(
  files: readonly string[],
  width: number,
  height: number,
): Promise<{ source: string; image: RgbImage }[]> {
  const out: { source: string; image: RgbImage }[] = [];
  for (const f of files) out.push({ source: path.basename(f), image: await decodeRgb(f, { width, height }) });
  return out;
}

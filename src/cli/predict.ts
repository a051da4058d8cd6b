/**
 * `facegate predict --model DIR IMAGE… [--annotate OUT] [--json]`: every face in every image,
 * with its box, name or `unknown`, and score; `--annotate` draws them.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { precisionChoices, type PrecisionChoice } from '../model/manifest.js';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../shared/errors.js';

interface PredictCliOptions {
  model: string;
  annotate?: string;
  json: boolean;
  precision: PrecisionChoice;
  threads?: number;
  minFaceSize?: number;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`must be a non-negative number, got "${v}"`);
  return n;
}

const round = (x: number, d = 4): number => Math.round(x * 10 ** d) / 10 ** d;

/** Where the annotated copy of `image` goes: OUT itself for one image with an image extension, else OUT/<name>. */
export async function annotatePath(
  out: string,
  image: string,
  count: number,
  taken: Set<string> = new Set(),
): Promise<string> {
  const isFile = count === 1 && /\.(png|jpe?g|webp)$/i.test(out);
  if (isFile) {
    await mkdir(path.dirname(path.resolve(out)), { recursive: true });
    return out;
  }
  let isDir = false;
  try {
    isDir = (await stat(out)).isDirectory();
  } catch {
    /* created below */
  }
  if (!isDir) await mkdir(out, { recursive: true });
  const ext = path.extname(image).toLowerCase();
  const stem = path.basename(image, path.extname(image));
  const suffix = ['.png', '.jpg', '.jpeg', '.webp'].includes(ext) ? ext : '.png';
  // Same file name from different folders (s1/9.png, s2/9.png): prefix the folder, then a counter.
  let name = stem + suffix;
  if (taken.has(name)) name = `${path.basename(path.dirname(path.resolve(image)))}-${stem}${suffix}`;
  for (let i = 2; taken.has(name); i++) name = `${stem}-${i}${suffix}`;
  taken.add(name);
  return path.join(out, name);
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('Find and recognise every face in images; strangers are "unknown"')
    .argument('<images...>', 'image files')
    .requiredOption('--model <dir>', 'model directory (from facegate train)')
    .option('--annotate <out>', 'write the images with boxes and names: a file for one image, else a folder')
    .option('--json', 'print one JSON object per image, one per line', false)
    .addOption(
      new Option(
        '--precision <p>',
        'which model file to run (auto: int8 when its recorded check agreed with fp32 on ≥ 99 %, else fp32)',
      )
        .choices(precisionChoices)
        .default('auto'),
    )
    .option('--threads <n>', 'onnxruntime threads', (v: string): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a positive integer, got "${v}"`);
      return n;
    })
    .option('--min-face-size <px>', 'ignore faces smaller than this (longer side, pixels)', positiveNumber)
    .action(async (images: string[], o: PredictCliOptions) => {
      const { RecognitionPipeline } = await import('../recognise/pipeline.js');
      const { decodeRgb } = await import('../shared/image.js');
      const { writeAnnotated } = await import('./../recognise/annotate.js');
      const pipeline = await RecognitionPipeline.load({
        modelDir: o.model,
        precision: o.precision,
        threads: o.threads,
        minFaceSize: o.minFaceSize,
      });
      let failures = 0;
      const taken = new Set<string>();
      try {
        for (const [i, file] of images.entries()) {
          let bytes: Buffer;
          try {
            bytes = await readFile(file);
          } catch (err) {
            throw new DataError(
              `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
              { cause: err },
            );
          }
          let img;
          try {
            img = await decodeRgb(bytes);
          } catch (err) {
            failures++;
            const msg = `${file}: not a readable image (${(err as Error).message.split('\n')[0]})`;
            if (o.json) process.stdout.write(JSON.stringify({ image: file, error: msg }) + '\n');
            else process.stderr.write(`facegate: ${msg}\n`);
            continue;
          }
          const { matches, skipped } = await pipeline.processImage(img, i);
          const faces = matches.map((m) => ({
            box: {
              x: round(m.face.box.x, 1),
              y: round(m.face.box.y, 1),
              width: round(m.face.box.width, 1),
              height: round(m.face.box.height, 1),
            },
            name: m.label ?? 'unknown',
            score: round(m.similarity),
            candidate: m.candidate,
            probability: round(m.probability),
            margin: round(m.margin),
            detection: round(m.face.score),
          }));
          const skippedOut = skipped.map((s) => ({ box: s.crop.face.box, reason: s.reason }));
          let annotated: string | undefined;
          if (o.annotate) {
            annotated = await annotatePath(o.annotate, file, images.length, taken);
            await writeAnnotated(
              img,
              [
                ...matches.map((m) => ({
                  box: m.face.box,
                  text: `${m.label ?? 'unknown'} ${m.similarity.toFixed(2)}`,
                  kind: m.label ? ('known' as const) : ('unknown' as const),
                })),
                ...skipped.map((s) => ({ box: s.crop.face.box, text: s.reason, kind: 'skipped' as const })),
              ],
              annotated,
            );
          }
          if (o.json) {
            process.stdout.write(
              JSON.stringify({
                image: file,
                width: img.width,
                height: img.height,
                faces,
                skipped: skippedOut,
                ...(annotated ? { annotated } : {}),
              }) + '\n',
            );
          } else {
            const head =
              `${file}: ${faces.length === 0 ? 'no face' : `${faces.length} face${faces.length > 1 ? 's' : ''}`}` +
              (skipped.length ? ` (${skipped.length} skipped: ${skipped.map((s) => s.reason).join(', ')})` : '') +
              (annotated ? ` → ${annotated}` : '');
            process.stdout.write(
              [
                head,
                ...faces.map(
                  (f) =>
                    `  ${f.name.padEnd(16)} score ${f.score.toFixed(3)}  box ${f.box.x},${f.box.y} ${f.box.width}×${f.box.height}` +
                    (f.name === 'unknown' ? `  (nearest ${f.candidate})` : ''),
                ),
              ].join('\n') + '\n',
            );
          }
        }
      } finally {
        await pipeline.close();
      }
      if (failures) process.exitCode = 2;
    });
}

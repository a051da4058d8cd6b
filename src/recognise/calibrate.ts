/**
 * Calibration at training time: references per person and a similarity threshold for a
 * target false-accept rate, measured by treating each known person in turn as a stranger
 * (leave-one-person-out). Pure functions; `facegate train` calls `buildRecognitionSection`.
 */
import type { CropSettings, RecognitionSection } from '../model/manifest.js';
import { buildReferences, centre, nearestReference, type Vector } from './similarity.js';
import { thresholdForFar, errorRates, gaussianTailThreshold, type ScoredProbe } from './thresholds.js';

/** The strict default: at most one stranger in a thousand named. */
export const DEFAULT_TARGET_FAR = 0.001;
export const DEFAULT_MIN_MARGIN = 0.1;

export interface LabelledVector {
  readonly label: string;
  readonly vector: Vector;
}

export interface CalibrationInput {
  /** Descriptors of the enrolment (training) images. */
  readonly enrol: readonly LabelledVector[];
  /** Descriptors of held-out images of the same people (validation split). */
  readonly heldOut: readonly LabelledVector[];
  readonly targetFar: number;
  readonly subtractMean?: boolean;
}

export interface Calibration {
  readonly threshold: number;
  readonly impostorScores: number[];
  readonly genuine: ScoredProbe[];
  readonly far: number;
  readonly frr: number;
}

/**
 * For each person p: references from everybody else's enrolment images (mean included),
 * and every image of p (enrolment and held out) scored as a stranger. Genuine scores are the
 * held-out images against the full references. The threshold is the lowest one that keeps
 * the impostors' false-accept rate ≤ targetFar.
 */
export function calibrateThreshold(input: CalibrationInput): Calibration {
  const subtractMean = input.subtractMean ?? true;
  const labels = [...new Set(input.enrol.map((s) => s.label))].sort();
  if (labels.length < 2) throw new RangeError(`calibration needs at least 2 people, got ${labels.length}`);
  const impostorScores: number[] = [];
  for (const p of labels) {
    const others = input.enrol.filter((s) => s.label !== p);
    const { mean, references } = buildReferences(others, subtractMean);
    for (const probe of [...input.enrol, ...input.heldOut]) {
      if (probe.label !== p) continue;
      impostorScores.push(nearestReference(centre(probe.vector, mean), references).similarity);
    }
  }
  const { mean, references } = buildReferences(input.enrol, subtractMean);
  const genuine: ScoredProbe[] = input.heldOut.map((s) => {
    const n = nearestReference(centre(s.vector, mean), references);
    return { truth: s.label, predicted: n.label, score: n.similarity };
  });
  // The stricter of the observed quantile and the normal-tail extrapolation (see gaussianTailThreshold).
  const threshold = Math.max(
    thresholdForFar(impostorScores, input.targetFar),
    gaussianTailThreshold(impostorScores, input.targetFar),
  );
  const far = impostorScores.filter((s) => s >= threshold).length / impostorScores.length;
  const frr = genuine.length ? errorRates(genuine, threshold).frr : 0;
  return { threshold, impostorScores, genuine, far, frr };
}

/** Rounds for JSON (7 significant digits: float32 precision, a third of the bytes). */
function compact(v: Vector): number[] {
  return Array.from(v, (x) => Number(x.toPrecision(7)));
}

export interface RecognitionSectionInput {
  readonly enrol: readonly LabelledVector[];
  readonly heldOut: readonly LabelledVector[];
  /** Which model output the vectors came from. */
  readonly source: 'features' | 'embedding';
  readonly targetFar?: number;
  readonly minMargin?: number;
  readonly crop: CropSettings;
  /** Force subtracting the enrolment mean (or not); chosen by calibration when omitted. */
  readonly subtractMean?: boolean;
}

/**
 * The manifest's `recognition` section: references from all enrolment images, threshold
 * calibrated leave-one-person-out. Throws a RangeError on fewer than 3 people.
 */
export function buildRecognitionSection(input: RecognitionSectionInput): RecognitionSection {
  const targetFar = input.targetFar ?? DEFAULT_TARGET_FAR;
  // Subtracting the enrolment mean helped faceres on an LFW subset (FACTS.md), but on the
  // ORL open set (s31…s40 as strangers) it let in more strangers with detected faces and
  // refused more known faces with MobileNet 0.25 features: calibrate both, keep the one that
  // refuses fewer held-out faces at the target FAR (ties: do not subtract).
  const withMean = calibrateThreshold({ enrol: input.enrol, heldOut: input.heldOut, targetFar, subtractMean: true });
  const withoutMean =
    input.subtractMean === true
      ? null
      : calibrateThreshold({ enrol: input.enrol, heldOut: input.heldOut, targetFar, subtractMean: false });
  const subtract = input.subtractMean ?? (withoutMean !== null && withMean.frr < withoutMean.frr);
  const cal = subtract ? withMean : (withoutMean as Calibration);
  const { mean, references } = buildReferences(input.enrol, subtract);
  return {
    score: 'centroid-cosine',
    source: input.source,
    mean: mean ? compact(mean) : null,
    references: Object.fromEntries([...references].map(([k, v]) => [k, compact(v)])),
    threshold: Math.max(-1, cal.threshold),
    minMargin: input.minMargin ?? DEFAULT_MIN_MARGIN,
    targetFar,
    crop: input.crop,
    calibration: {
      method: 'leave-one-person-out',
      impostorProbes: cal.impostorScores.length,
      genuineProbes: cal.genuine.length,
      far: cal.far,
      frr: cal.frr,
    },
  };
}

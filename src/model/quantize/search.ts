/**
 * The automatic mixed-precision search: which int8 Conv / Gemm nodes to keep in float
 * so that the int8 model's deviation from fp32 on held-out images (mixed.ts) meets the
 * target, within a budget of float nodes (never more than half of the int8 nodes).
 *
 * 1. Measure the deviation with every planned node int8 (bias-corrected). If it meets
 *    the target, or the budget is below one node, keep nothing float.
 * 2. Candidate units (`floatUnits`): each int8 node alone; each int8 node together
 *    with the int8 nodes that read its (activation's) output, which also keeps that
 *    tensor float; and the stem, the first k int8 nodes in graph order for k = 3 … the
 *    budget. Each unit is measured kept float on its own (its nodes get their fp32
 *    biases back; the other nodes keep their corrected ones) and the units are ranked
 *    by that error, lowest first.
 * 3. Greedy forward selection: at each step, of the units that add a node not yet kept
 *    and stay within the budget, the RESCORE best-ranked are measured together with
 *    the units already chosen, and the one giving the lowest error is added; those
 *    measured are ranked first by their new error for the next step. It stops when the
 *    target is met or no unit fits. When it never met the target, the prefix of the
 *    chosen units with the lowest error is kept.
 * 4. The caller's plan is made again with the chosen nodes float, the tensors it newly
 *    quantises are calibrated, the biases are corrected again, and the final deviation
 *    is measured.
 */
import type { OnnxTypes } from '../onnx/proto.js';
import type { RgbImage } from '../../shared/image.js';
import { moduleLogger } from '../../shared/logger.js';
import { pixelBatch, pixelInput, spread } from './io.js';
import { applyQdq, planQuantization, type FloatNode, type QuantPlan } from './graph.js';
import type { ChannelQuantized } from './params.js';
import type { ActivationCalibration } from './calibration.js';
import { restoreBiases, type CorrectedModel } from './bias.js';
import {
  DEFAULT_TARGET,
  decisionTensor,
  decisionValues,
  deviation,
  featuresTensor,
  meets,
  shortfall,
  type DecisionSample,
  type Deviation,
  type KioskDecision,
  type MixedPrecisionTarget,
  type NodeSensitivity,
} from './mixed.js';

const log = moduleLogger('quantize');

/** What the automatic mixed-precision search measured and chose. */
export interface MixedPrecisionReport {
  /** Held-out images measured on, and whether they were disjoint from the calibration images. */
  readonly images: number;
  readonly heldOut: boolean;
  /** The tensor compared (logits, embedding or the first output). */
  readonly tensor: string;
  /** The features tensor compared too (cosine per image), when the model has one. */
  readonly features?: string;
  /** Whether the kiosk's decision (nearest reference at the threshold, and the margin) was compared. */
  readonly decision: boolean;
  readonly target: Required<MixedPrecisionTarget>;
  /** All nodes int8 (after bias correction). */
  readonly before: Deviation;
  /** With `keptFloat` in float (after bias correction again). */
  readonly after: Deviation;
  readonly meetsTarget: boolean;
  /** Units the search kept float, in the order it chose them. */
  readonly keptFloat: readonly NodeSensitivity[];
  /** The units with the lowest error when float alone (up to 8), for the record. */
  readonly mostSensitive: readonly NodeSensitivity[];
}

function resolveTarget(t: MixedPrecisionTarget | undefined): Required<MixedPrecisionTarget> {
  return {
    minAgreement: t?.minAgreement ?? 0.99,
    maxRelativeError: t?.maxRelativeError ?? DEFAULT_TARGET.maxRelativeError,
    maxFloatNodes: t?.maxFloatNodes ?? DEFAULT_TARGET.maxFloatNodes,
    images: t?.images ?? DEFAULT_TARGET.images,
    minFeatureCosine: t?.minFeatureCosine ?? DEFAULT_TARGET.minFeatureCosine,
    minDecisionAgreement: t?.minDecisionAgreement ?? DEFAULT_TARGET.minDecisionAgreement,
  };
}

/** Candidates re-measured at each step of the greedy search (the best-ranked so far). */
const RESCORE = 8;

/**
 * Candidate units for the search: each int8 node alone (removes its weight rounding),
 * and each quantised activation between int8 nodes with its producer and int8 consumers
 * (keeping them float removes that tensor's uint8 rounding as well).
 */
function floatUnits(fp32: OnnxTypes.IModelProto, plan: QuantPlan, maxNodes: number): string[][] {
  const nodes = fp32.graph?.node ?? [];
  const ints = new Set(plan.intNodes);
  const absorbed = new Set(plan.absorbed);
  const units: string[][] = plan.intNodes.map((n) => [n]);
  for (const n of nodes) {
    if (!ints.has(n.name ?? '')) continue;
    let out = n.output?.[0] ?? '';
    const act = nodes.find((c) => absorbed.has(c.name ?? '') && c.input?.[0] === out);
    if (act) out = act.output?.[0] ?? out;
    const consumers = nodes
      .filter((c) => ints.has(c.name ?? '') && (c.input ?? []).includes(out))
      .map((c) => c.name ?? '');
    if (consumers.length > 0) units.push([n.name ?? '', ...consumers]);
  }
  // The stem: the first k int8 nodes in graph order. Early layers' rounding is amplified
  // by every later layer (in MobileNet 0.25 the first depthwise convs have gains up to
  // ~75), but one of them alone rarely helps: its neighbours' rounding remains.
  for (let k = 3; k <= Math.min(maxNodes, plan.intNodes.length - 1); k++) units.push(plan.intNodes.slice(0, k));
  return units;
}

/**
 * The search (see the header): the units to keep float, with the deviation before and
 * every unit's error when it alone is float (ranked, lowest first).
 */
async function searchFloatNodes(
  fp32: OnnxTypes.IModelProto,
  keep: ReadonlySet<string>,
  plan: QuantPlan,
  corrected: OnnxTypes.IModelProto,
  calibration: ActivationCalibration,
  held: readonly RgbImage[],
  target: Required<MixedPrecisionTarget>,
  rounded: ReadonlyMap<string, ChannelQuantized>,
  decide: KioskDecision | undefined,
): Promise<{
  tensor: string;
  features: string | undefined;
  logits: boolean;
  reference: DecisionSample[];
  before: Deviation;
  keptFloat: NodeSensitivity[];
  sensitivities: NodeSensitivity[];
  values: (model: OnnxTypes.IModelProto) => Promise<Deviation>;
}> {
  const { name: tensor, logits } = decisionTensor(fp32);
  const features = featuresTensor(fp32, tensor);
  const probabilities = logits && decide !== undefined && features !== undefined;
  const outputs = { ...(features ? { features } : {}), probabilities };
  const reference = await decisionValues(fp32, tensor, held, outputs);
  const values = async (model: OnnxTypes.IModelProto): Promise<Deviation> =>
    deviation(reference, await decisionValues(model, tensor, held, outputs), decide);
  const score = (d: Deviation): number => shortfall(d, target);
  const measure = async (extra: readonly string[]): Promise<Deviation> => {
    const p = extra.length ? planQuantization(fp32, new Set([...keep, ...extra])) : plan;
    await calibration.ensure(p);
    const model = applyQdq(
      extra.length ? restoreBiases(corrected, fp32, new Set(extra)) : corrected,
      p,
      calibration.params,
      undefined,
      rounded,
    );
    return values(model);
  };
  const before = await measure([]);
  if (meets(before, target, logits) || target.maxFloatNodes < 1)
    return { tensor, features, logits, reference, before, keptFloat: [], sensitivities: [], values };
  const sensitivities: NodeSensitivity[] = [];
  const scores = new Map<string, number>();
  for (const unit of floatUnits(fp32, plan, target.maxFloatNodes)) {
    const d = await measure(unit);
    const s = sensitivity(unit, d);
    scores.set(s.name, score(d));
    sensitivities.push(s);
  }
  sensitivities.sort((a, b) => (scores.get(a.name) ?? 0) - (scores.get(b.name) ?? 0));
  // Greedy forward selection: each step adds the unit that lowers the shortfall most with
  // the units already chosen (errors do not add up: bias correction of later layers
  // absorbs part of earlier layers' error), trying the RESCORE best-ranked candidates.
  const kept: NodeSensitivity[] = [];
  const nodesOf = (units: readonly NodeSensitivity[]): string[] => [...new Set(units.flatMap((u) => u.nodes))];
  let ranking = sensitivities;
  let current = before;
  let best: { kept: NodeSensitivity[]; d: Deviation } = { kept: [], d: before };
  while (!meets(current, target, logits)) {
    const chosen = new Set(nodesOf(kept));
    const open = ranking.filter(
      (u) => u.nodes.some((n) => !chosen.has(n)) && nodesOf([...kept, u]).length <= target.maxFloatNodes,
    );
    if (open.length === 0) break;
    const scored: { unit: NodeSensitivity; d: Deviation }[] = [];
    for (const unit of open.slice(0, RESCORE))
      scored.push({ unit, d: kept.length === 0 ? await measure(unit.nodes) : await measure(nodesOf([...kept, unit])) });
    scored.sort((x, y) => score(x.d) - score(y.d));
    const step = scored[0];
    if (!step) break;
    kept.push(sensitivity(step.unit.nodes, step.d));
    current = step.d;
    log.debug({ kept: kept.map((k) => k.name), ...current }, 'mixed precision: step');
    if (score(current) < score(best.d)) best = { kept: [...kept], d: current };
    const order = new Map(scored.map((x, i) => [x.unit.name, i]));
    ranking = [...open].sort(
      (x, y) => (order.get(x.name) ?? RESCORE + open.indexOf(x)) - (order.get(y.name) ?? RESCORE + open.indexOf(y)),
    );
  }
  if (meets(current, target, logits)) best = { kept, d: current };
  return { tensor, features, logits, reference, before, keptFloat: best.kept, sensitivities, values };
}

/** A unit with what was measured when it was float (with the units chosen before it). */
function sensitivity(nodes: readonly string[], d: Deviation): NodeSensitivity {
  return {
    name: nodes.join('+'),
    nodes,
    relativeErrorWhenFloat: d.relativeError,
    ...(d.features ? { minFeatureCosineWhenFloat: d.features.minCosine } : {}),
    ...(d.decisionAgreement !== undefined ? { decisionAgreementWhenFloat: d.decisionAgreement } : {}),
  };
}

/** What the mixed-precision stage starts from. */
export interface MixedPrecisionInput {
  readonly fp32: OnnxTypes.IModelProto;
  /** Nodes kept float on request. */
  readonly keep: ReadonlySet<string>;
  /** The plan with every possible node int8, and its bias-corrected model. */
  readonly plan: QuantPlan;
  readonly corrected: CorrectedModel;
  readonly calibration: ActivationCalibration;
  /** Bias correction (or none) of a plan. */
  readonly correct: (plan: QuantPlan) => Promise<CorrectedModel>;
  readonly rounded: ReadonlyMap<string, ChannelQuantized>;
  /** The calibration images given, and those picked from them. */
  readonly given: readonly RgbImage[];
  readonly picked: readonly RgbImage[];
  readonly heldOut?: readonly RgbImage[];
  readonly target?: MixedPrecisionTarget;
  /** The kiosk's decision on features and probabilities; its agreement with fp32 is part of the target. */
  readonly decide?: KioskDecision;
}

/** What the mixed-precision stage chose: the final plan, its corrected model and the report. */
export interface MixedPrecisionResult {
  readonly plan: QuantPlan;
  readonly corrected: CorrectedModel;
  readonly report: MixedPrecisionReport;
  /** Whether the deviation was measured on a classifier's logits. */
  readonly logits: boolean;
}

/**
 * Runs the search on held-out images (`heldOut`, else the given calibration images
 * that were not picked, else the picked ones) and redoes the plan, calibration and
 * bias correction with the chosen nodes float.
 */
export async function mixedPrecision(m: MixedPrecisionInput): Promise<MixedPrecisionResult> {
  const { fp32, keep, calibration, rounded } = m;
  const input = pixelInput(fp32);
  const pickedSet = new Set(m.picked);
  const unused = m.heldOut ?? m.given.filter((x) => !pickedSet.has(x));
  const asked = resolveTarget(m.target);
  // Never more than half of the int8 nodes: a model that needs more is reported
  // (meetsTarget false), not quietly turned back into a float model.
  const target = { ...asked, maxFloatNodes: Math.min(asked.maxFloatNodes, Math.floor(m.plan.intNodes.length / 2)) };
  const held = spread(unused.length > 0 ? unused : m.picked, target.images);
  pixelBatch(held, input.height, input.width);
  const search = await searchFloatNodes(
    fp32,
    keep,
    m.plan,
    m.corrected.model,
    calibration,
    held,
    target,
    rounded,
    m.decide,
  );
  const autoFloat = search.keptFloat;
  let { plan, corrected } = m;
  let after = search.before;
  if (autoFloat.length > 0) {
    plan = planQuantization(fp32, new Set([...keep, ...autoFloat.flatMap((k) => k.nodes)]));
    await calibration.ensure(plan);
    corrected = await m.correct(plan);
    after = await search.values(applyQdq(corrected.model, plan, calibration.params, undefined, rounded));
  }
  const report: MixedPrecisionReport = {
    images: held.length,
    heldOut: unused.length > 0,
    tensor: search.tensor,
    ...(search.features ? { features: search.features } : {}),
    decision: search.before.decisionAgreement !== undefined,
    target,
    before: search.before,
    after,
    meetsTarget: meets(after, target, search.logits),
    keptFloat: autoFloat,
    mostSensitive: search.sensitivities.slice(0, 8),
  };
  log.info({ keptFloat: autoFloat.map((k) => k.name), before: search.before, after }, 'mixed precision');
  return { plan, corrected, report, logits: search.logits };
}

/** The plan's float nodes, with the search's measurements as the reason for those it kept float. */
export function explainFloatNodes(
  floatNodes: readonly FloatNode[],
  mixed: MixedPrecisionReport,
  logits: boolean,
): FloatNode[] {
  return floatNodes.map((f) => {
    const k = mixed.keptFloat.find((a) => a.nodes.includes(f.name));
    return k
      ? {
          ...f,
          reason: `kept float by automatic mixed precision: relative ${logits ? 'logits' : mixed.tensor} error on ${mixed.images} ${mixed.heldOut ? 'held-out training' : 'calibration'} images ${mixed.before.relativeError.toFixed(4)} with every node int8, ${k.relativeErrorWhenFloat.toFixed(4)} once ${k.nodes.length > 1 ? `${k.name} (and the activations between them) were` : 'this node was'} float too; ${mixed.after.relativeError.toFixed(4)} in the end (target ${mixed.target.maxRelativeError})`,
        }
      : f;
  });
}

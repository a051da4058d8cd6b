/**
 * Vector maths for refusing strangers: cosine similarity to per-person centroids of
 * descriptors with the enrolment mean subtracted (FACTS.md: subtracting the mean cut false
 * accepts about threefold on an LFW subset). Pure functions.
 */

export type Vector = Float32Array | readonly number[];

export function dot(a: Vector, b: Vector): number {
  const n = Math.min(a.length, b.length);
  let s = 0;
  for (let i = 0; i < n; i++) s += (a[i] ?? 0) * (b[i] ?? 0);
  return s;
}

export function norm(a: Vector): number {
  return Math.sqrt(dot(a, a));
}

/** Cosine similarity in −1..1; 0 when either vector is zero. */
export function cosine(a: Vector, b: Vector): number {
  const d = norm(a) * norm(b);
  return d > 0 ? dot(a, b) / d : 0;
}

/** Unit-length copy; a zero vector stays zero. */
export function l2normalize(a: Vector): Float32Array {
  const n = norm(a);
  const out = new Float32Array(a.length);
  if (n > 0) for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) / n;
  return out;
}

/** Element-wise mean of equally long vectors. */
export function meanVector(vs: readonly Vector[]): Float32Array {
  const first = vs[0];
  if (!first) throw new RangeError('meanVector of no vectors');
  const out = new Float32Array(first.length);
  for (const v of vs) for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) + (v[i] ?? 0);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / vs.length;
  return out;
}

/** The descriptor as compared: unit length, then the enrolment mean subtracted. */
export function centre(v: Vector, mean: Vector | null): Float32Array {
  const u = l2normalize(v);
  if (mean) for (let i = 0; i < u.length; i++) u[i] = (u[i] ?? 0) - (mean[i] ?? 0);
  return u;
}

/** Enrolment: the mean of the unit descriptors, and per label the unit centroid of the centred ones. */
export function buildReferences(
  samples: readonly { readonly label: string; readonly vector: Vector }[],
  subtractMean: boolean,
): { mean: Float32Array | null; references: Map<string, Float32Array> } {
  const mean = subtractMean ? meanVector(samples.map((s) => l2normalize(s.vector))) : null;
  const byLabel = new Map<string, Float32Array[]>();
  for (const s of samples) {
    const list = byLabel.get(s.label) ?? [];
    list.push(centre(s.vector, mean));
    byLabel.set(s.label, list);
  }
  const references = new Map<string, Float32Array>();
  for (const [label, list] of byLabel) references.set(label, l2normalize(meanVector(list)));
  return { mean, references };
}

export interface Nearest {
  readonly label: string;
  readonly similarity: number;
  /** Similarity to the runner-up reference (−1 when there is only one). */
  readonly secondSimilarity: number;
}

/** The nearest reference by cosine to an already-centred descriptor. */
export function nearestReference(centred: Vector, references: ReadonlyMap<string, Vector>): Nearest {
  let best = { label: '', similarity: -Infinity };
  let second = -1;
  for (const [label, ref] of references) {
    const s = cosine(centred, ref);
    if (s > best.similarity) {
      second = Number.isFinite(best.similarity) ? best.similarity : -1;
      best = { label, similarity: s };
    } else if (s > second) second = s;
  }
  if (!Number.isFinite(best.similarity)) throw new RangeError('nearestReference with no references');
  return { ...best, secondSimilarity: second };
}

/** Numerically stable softmax (for models whose output is logits). */
export function softmax(logits: Vector): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] ?? -Infinity);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] ?? 0) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / sum;
  return out;
}

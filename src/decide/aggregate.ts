/**
 * Probe-side aggregation, as pure functions: a track's frames pooled into one descriptor, the
 * unit mean of their unit descriptors, so that evidence accumulates across frames instead of
 * each frame being judged alone against the same threshold. Its score is compared with a
 * stricter threshold than a single frame's (a mean of several photos of a stranger also
 * scores higher against the gallery): see `aggregateThreshold` in src/gallery/match.ts.
 */

/** The unit-length mean of the unit-length copies of `vectors` (all of one length); zero when they cancel. */
export function meanDescriptor(vectors: readonly Float32Array[]): Float32Array {
  const first = vectors[0];
  if (!first) throw new RangeError('the mean of no descriptors is undefined: pool at least one frame');
  const sum = new Float64Array(first.length);
  for (const v of vectors) {
    if (v.length !== first.length)
      throw new RangeError(
        `descriptors of ${v.length} and ${first.length} values: pool frames of one descriptor model`,
      );
    let s = 0;
    for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = 0; i < v.length; i++) sum[i] = sum[i]! + v[i]! * inv;
  }
  let s = 0;
  for (let i = 0; i < sum.length; i++) s += sum[i]! * sum[i]!;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  return Float32Array.from(sum, (x) => x * inv);
}

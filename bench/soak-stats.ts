/**
 * The soak benchmark's arithmetic, as pure functions (tested on small fixtures in
 * test/bench/soak-stats.test.ts): percentiles, the order of alternating phases, and how sure a
 * ratio between two settings is (a bootstrap within phases and the spread across blocks).
 */
import { mulberry32 } from '../src/train/rng.js';

/** The value at rank ⌊q·n⌋ of an ascending array (q = 0.99 of 100 values is the largest); NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export function summarise(values: readonly number[]): LatencySummary {
  const s = [...values].sort((a, b) => a - b);
  return {
    count: s.length,
    p50: quantile(s, 0.5),
    p95: quantile(s, 0.95),
    p99: quantile(s, 0.99),
    max: s.length ? (s.at(-1) as number) : NaN,
  };
}

export type Setting = 'A' | 'B';

/**
 * `blocks` ABBA blocks: A B B A A B B A … Each setting is as often first as last in every
 * block, so a drift that is linear in time (the machine's other load rising, caches warming)
 * weighs on both settings alike.
 */
export function abbaOrder(blocks: number): Setting[] {
  if (!Number.isInteger(blocks) || blocks < 1) throw new RangeError(`need a whole number of blocks ≥ 1, got ${blocks}`);
  const out: Setting[] = [];
  for (let i = 0; i < blocks; i++) out.push('A', 'B', 'B', 'A');
  return out;
}

/** Draws each phase's values again with replacement, as many as it had (the phases stay as measured). */
function resample(phases: readonly (readonly number[])[], random: () => number): number[] {
  const out: number[] = [];
  for (const p of phases) for (let i = 0; i < p.length; i++) out.push(p[Math.floor(random() * p.length)] as number);
  return out;
}

export interface RatioEstimate {
  /** stat(B) / stat(A) on the values as measured. */
  readonly ratio: number;
  /** The 2.5th and 97.5th percentiles of the bootstrap ratios. */
  readonly lo: number;
  readonly hi: number;
}

/**
 * The ratio stat(B) / stat(A) with a 95 % bootstrap interval. Values are resampled within
 * each phase (a stratified bootstrap), so the interval shows how much the ratio would move
 * with other events drawn from the same phases; it does not show how much the phases
 * themselves differ (see blockRatios for that).
 */
export function bootstrapRatio(
  a: readonly (readonly number[])[],
  b: readonly (readonly number[])[],
  stat: (sorted: readonly number[]) => number,
  reps = 1000,
  seed = 1,
): RatioEstimate {
  const of = (v: number[]): number => stat(v.sort((x, y) => x - y));
  const ratio = of(b.flat()) / of(a.flat());
  const random = mulberry32(seed);
  const ratios: number[] = [];
  for (let i = 0; i < reps; i++) ratios.push(of(resample(b, random)) / of(resample(a, random)));
  ratios.sort((x, y) => x - y);
  return { ratio, lo: quantile(ratios, 0.025), hi: quantile(ratios, 0.975) };
}

/** The arithmetic mean (NaN when empty). */
export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((x, y) => x + y, 0) / values.length : NaN;
}

export interface PhaseValues {
  readonly setting: Setting;
  readonly values: readonly number[];
}

/**
 * The ratio stat(B) / stat(A) within each run of `size` consecutive phases (an ABBA block is
 * 4), pooling a block's phases of each setting: how far the ratio moves from block to block
 * with the machine's load. A block without both settings gives no ratio.
 */
export function blockRatios(
  phases: readonly PhaseValues[],
  size: number,
  stat: (sorted: readonly number[]) => number,
): number[] {
  const out: number[] = [];
  for (let i = 0; i + size <= phases.length; i += size) {
    const block = phases.slice(i, i + size);
    const pool = (s: Setting): number[] =>
      block
        .filter((p) => p.setting === s)
        .flatMap((p) => [...p.values])
        .sort((x, y) => x - y);
    const a = pool('A');
    const b = pool('B');
    if (a.length && b.length) out.push(stat(b) / stat(a));
  }
  return out;
}

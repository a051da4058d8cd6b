/**
 * Model versions compare by their numeric and text runs: `20260128.101500` <
 * `20260128.101501`, `1.10` > `1.9`, `2.0-rc1` < `2.0-rc2`. Plain string order would
 * rank `1.10` below `1.9`, so a replayed old bundle could pass as newer.
 */
export function compareVersions(a: string, b: string): number {
  const split = (v: string): string[] => v.match(/\d+|[^\d]+/g) ?? [];
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (x !== y) {
      if (nx !== ny) return nx ? 1 : -1; // a number ranks above text at the same place
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/** Versions become directory names: only safe characters. */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

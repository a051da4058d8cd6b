/** Temperatures the kernel exposes (/sys/class/thermal/thermal_zone*: `type` and `temp` in millidegrees). */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export interface Temperature {
  readonly zone: string;
  readonly type: string;
  readonly celsius: number;
}

export function readTemperatures(dir = '/sys/class/thermal'): Temperature[] {
  let zones: string[];
  try {
    zones = readdirSync(dir).filter((z) => z.startsWith('thermal_zone'));
  } catch {
    return []; // no thermal zones here (containers, some VMs)
  }
  const out: Temperature[] = [];
  for (const zone of zones.sort()) {
    try {
      const milli = Number(readFileSync(path.join(dir, zone, 'temp'), 'utf8').trim());
      if (!Number.isFinite(milli)) continue;
      let type = zone;
      try {
        type = readFileSync(path.join(dir, zone, 'type'), 'utf8').trim();
      } catch {
        /* type is optional */
      }
      out.push({ zone, type, celsius: Math.round(milli / 100) / 10 });
    } catch {
      /* unreadable zone (disabled sensor): skip */
    }
  }
  return out;
}

/**
 * Enrolment photos for gallery tests: real faces from ../shared (Yale, LFW), and the same
 * photos given one defect each with sharp at test time (nothing is committed).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { sharedPaths } from './shared.js';

export function yale(subject: number, condition: string): Buffer {
  return readFileSync(path.join(sharedPaths.yale, `subject${String(subject).padStart(2, '0')}`, `${condition}.gif`));
}

/** As PNG (sharp reads GIF, but composing and re-encoding are simpler from PNG). */
export async function yalePng(subject: number, condition: string): Promise<Buffer> {
  return sharp(yale(subject, condition)).png().toBuffer();
}

/** Yale photos of a person, by condition (the normally lit ones). */
export const ENROL_CONDITIONS = ['normal', 'happy', 'glasses'] as const;
export const PROBE_CONDITIONS = ['sad', 'sleepy', 'surprised', 'wink'] as const;

/** Each defect, made from a real photo. */
export const defects = {
  /** A strip of the background beside the face. */
  noFace: async (): Promise<Buffer> =>
    sharp(yale(1, 'normal')).extract({ left: 0, top: 0, width: 70, height: 243 }).png().toBuffer(),
  /** Two people side by side. */
  severalFaces: async (): Promise<Buffer> =>
    sharp({ create: { width: 640, height: 243, channels: 3, background: '#808080' } })
      .composite([
        { input: await yalePng(1, 'normal'), left: 0, top: 0 },
        { input: await yalePng(2, 'normal'), left: 320, top: 0 },
      ])
      .png()
      .toBuffer(),
  /** The photo shrunk to 40 % on a canvas of the original size: the face is about 50 px. */
  tooSmall: async (): Promise<Buffer> =>
    sharp({ create: { width: 320, height: 243, channels: 3, background: '#b0b0b0' } })
      .composite([{ input: await sharp(yale(1, 'normal')).resize(128, 97).png().toBuffer(), left: 96, top: 73 }])
      .png()
      .toBuffer(),
  blurred: async (): Promise<Buffer> => sharp(yale(1, 'normal')).blur(4).png().toBuffer(),
  tooDark: async (): Promise<Buffer> => sharp(yale(1, 'normal')).linear(0.18, 0).png().toBuffer(),
  /** A real photo of a man turned well to the side (LFW). */
  turned: (): Buffer => readFileSync(path.join(sharedPaths.lfwDev, 'people', 'Ahmad_Masood', 'Ahmad_Masood_0002.jpg')),
  badImage: (): Buffer => Buffer.from('this is not an image'),
};

/** Every regular file under a folder (recursively). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Files under `dir` whose bytes contain any of the needles. */
export function filesContaining(dir: string, needles: readonly Buffer[]): string[] {
  return filesUnder(dir).filter((f) => {
    if (statSync(f).size === 0) return false;
    const data = readFileSync(f);
    return needles.some((n) => data.includes(n));
  });
}

/**
 * A camera frame (480×360 JPEG) with Yale `subject`'s photo in `condition` in the middle of
 * a grey scene, or the empty scene for null: a person at the door as the kiosk camera sees them.
 */
export async function yaleFrame(subject: number | null, condition = 'normal'): Promise<Buffer> {
  const scene = sharp({ create: { width: 480, height: 360, channels: 3, background: '#787878' } });
  if (subject === null) return scene.jpeg({ quality: 90 }).toBuffer();
  return scene
    .composite([
      {
        input: await sharp(yale(subject, condition)).removeAlpha().toColourspace('srgb').png().toBuffer(),
        left: 80,
        top: 58,
      },
    ])
    .jpeg({ quality: 90 })
    .toBuffer();
}

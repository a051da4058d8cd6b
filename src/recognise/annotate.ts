/**
 * `predict --annotate`: the image with a box and a name on every face (the tutorial's
 * `draw_test`, for every face). An SVG overlay composed by sharp; DejaVu Sans renders the text.
 */
import sharp from 'sharp';
import type { RgbImage } from '../shared/image.js';
import type { Box } from '../shared/messages.js';

export interface Annotation {
  readonly box: Box;
  readonly text: string;
  /** green for a known person, red for unknown, grey for a skipped face. */
  readonly kind: 'known' | 'unknown' | 'skipped';
}

const COLOURS = { known: '#2ca02c', unknown: '#d62728', skipped: '#999999' } as const;

function escapeXml(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );
}

/** The overlay for a width×height image (pure; tested as text). */
export function overlaySvg(width: number, height: number, annotations: readonly Annotation[]): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(10, Math.round(Math.min(width, height) / 30));
  const parts = annotations.map((a) => {
    const c = COLOURS[a.kind];
    const { x, y, width: w, height: h } = a.box;
    const labelY = y - font * 1.4 >= 0 ? y - font * 1.4 : y + h;
    const textW = Math.ceil(a.text.length * font * 0.62) + 8;
    return (
      `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${c}" stroke-width="${stroke}"/>` +
      `<rect x="${x.toFixed(1)}" y="${labelY.toFixed(1)}" width="${textW}" height="${(font * 1.4).toFixed(1)}" fill="${c}"/>` +
      `<text x="${(x + 4).toFixed(1)}" y="${(labelY + font * 1.05).toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="white">${escapeXml(a.text)}</text>`
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** Draws the annotations on an already decoded image and writes it to `out` (format from the extension). */
export async function writeAnnotated(img: RgbImage, annotations: readonly Annotation[], out: string): Promise<void> {
  const svg = overlaySvg(img.width, img.height, annotations);
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .toFile(out);
}

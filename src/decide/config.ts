/**
 * The `decide` section of the kiosk configuration (included by src/config/schema.ts), and
 * the options of the Decider. Declared once; every key has a description and a default.
 */
import { z } from 'zod';

export const deciderOptionsSchema = z
  .object({
    k: z.number().int().positive().describe('frames of the window that must agree').default(3),
    n: z.number().int().positive().describe('sliding window length, frames').default(5),
    cooldownMs: z
      .number()
      .nonnegative()
      .describe('after naming a person, do not name them again for this long')
      .default(10_000),
    iouThreshold: z.number().min(0).max(1).describe('box overlap for a face to continue a track').default(0.3),
    maxAgeFrames: z.number().int().nonnegative().describe('frames a track survives without its face').default(10),
    pool: z
      .boolean()
      .describe(
        "pool a track's frames: once it has k frames, the mean descriptor of its last n frames may name the person at a stricter threshold of its own, besides the vote, where at least k − 1 of those frames name them too (gallery recognition with the default scoring, flip and centroid)",
      )
      .default(true),
  })
  .strict()
  .refine((o) => o.k <= o.n, { message: 'k must not exceed n', path: ['k'] });
export type DeciderOptions = z.input<typeof deciderOptionsSchema>;

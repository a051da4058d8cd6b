/**
 * The `updates` section of the kiosk configuration (included by src/config/schema.ts).
 * Declared once; every key has a description and a default.
 */
import { z } from 'zod';

export const updatesConfigSchema = z
  .object({
    enabled: z
      .boolean()
      .describe('accept model bundles over MQTT; when false the kiosk runs model.dir and ignores offers')
      .default(false),
    publicKeys: z
      .array(z.string().min(1))
      .describe(
        'Ed25519 public keys (PEM text, or paths of .pub files from `facegate keygen`) whose signatures are trusted; several allow key rotation',
      )
      .default([]),
    modelsDir: z
      .string()
      .min(1)
      .describe(
        'where installed models, the current/previous pointers and the probation marker live (must be on one filesystem, writable by the daemon)',
      )
      .default('models/store'),
    maxBundleBytes: z
      .number()
      .int()
      .positive()
      .describe('offers of larger bundles are refused before any byte is transferred')
      .default(256 * 1024 * 1024),
    probationMinutes: z
      .number()
      .positive()
      .describe(
        'a new model must run this long before it is final; a restart before then returns to the previous model',
      )
      .default(10),
    allowForced: z
      .boolean()
      .describe(
        'accept bundles signed as forced (install even when not newer: a signed downgrade); forced bundles always carry an expiry',
      )
      .default(true),
    transferTimeoutMs: z
      .number()
      .int()
      .positive()
      .describe('an incomplete transfer with no new chunk for this long is dropped and reported (milliseconds)')
      .default(60_000),
    allowedUrlPrefixes: z
      .array(
        z
          .url({ protocol: /^https$/ })
          .refine(
            (u) => u.endsWith('/'),
            'must end with "/" (so https://host does not also allow https://host.evil.example)',
          ),
      )
      .describe(
        'HTTPS URL prefixes (ending in /) the kiosk may download offered bundles from; empty = offers by URL are refused and bundles come in chunks over MQTT only',
      )
      .default([]),
    downloadTimeoutMs: z
      .number()
      .int()
      .positive()
      .describe('longest time to download a bundle offered by HTTPS URL (milliseconds)')
      .default(10 * 60_000),
  })
  .strict()
  .superRefine((u, ctx) => {
    if (u.enabled && u.publicKeys.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['publicKeys'],
        message: 'updates are enabled but no public key is trusted: add the .pub file from `facegate keygen`',
      });
    }
  })
  .describe('remote model updates: signed bundles, atomic swap, rollback')
  .prefault({});

export type UpdatesConfig = z.infer<typeof updatesConfigSchema>;

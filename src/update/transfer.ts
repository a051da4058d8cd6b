/**
 * The wire format of a bundle delivery over MQTT.
 *
 * Offer (JSON, QoS 1, `<base>/<kiosk>/update/offer` or `<base>/fleet/update/offer`):
 * the bundle's signed manifest and signatures, so a kiosk refuses an untrusted, old or
 * oversized bundle before a single chunk arrives; then the size and sha256 of the whole
 * file and either the chunk layout (chunk size, count, sha256 of each chunk) or an
 * HTTPS URL to fetch it from. Nothing in the offer is trusted beyond the signature: the
 * reassembled file is verified again in full before install.
 *
 * Chunk (binary, QoS 1, `.../update/chunk`): 16 ASCII hex characters of the transfer id,
 * a 4-byte big-endian chunk index, then the chunk's bytes.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { formatIssues } from '../shared/validation.js';
import {
  bundleManifestSchema,
  parseHeader,
  signatureSchema,
  type BundleManifest,
  type BundleSignature,
} from './bundle.js';
import { UpdateRejected } from './errors.js';
import { sha256 } from '../model/dir/hash.js';

export const DEFAULT_CHUNK_BYTES = 256 * 1024;
export const MAX_CHUNKS = 100_000;
const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

const offerShape = z
  .object({
    type: z.literal('facegate-model-offer'),
    transferId: z
      .string()
      .regex(/^[0-9a-f]{16}$/)
      .describe('names the chunks of this transfer'),
    version: z.string().describe("bundle version (the signed manifest's, repeated for people reading the topic)"),
    forced: z.boolean(),
    size: z.number().int().positive().describe('bundle size in bytes'),
    sha256: hex64.describe('sha256 of the whole bundle file'),
    manifest: bundleManifestSchema,
    signatures: z.array(signatureSchema).min(1).max(16),
    chunkSize: z
      .number()
      .int()
      .positive()
      .max(64 * 1024 * 1024)
      .nullable(),
    chunks: z.number().int().positive().max(MAX_CHUNKS).nullable(),
    chunkSha256: z.array(hex64).max(MAX_CHUNKS).nullable(),
    url: z
      .url({ protocol: /^https$/ })
      .nullable()
      .describe('HTTPS URL of the bundle instead of chunks'),
  })
  .strict();
const OFFER_KEYS: ReadonlySet<string> = new Set(Object.keys(offerShape.shape));
export const offerSchema = offerShape.superRefine((o, ctx) => {
  if (o.version !== o.manifest.version)
    ctx.addIssue({ code: 'custom', path: ['version'], message: 'differs from the signed manifest' });
  if (o.forced !== o.manifest.forced)
    ctx.addIssue({ code: 'custom', path: ['forced'], message: 'differs from the signed manifest' });
  if (o.url === null) {
    if (o.chunkSize === null || o.chunks === null || o.chunkSha256 === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['chunks'],
        message: 'an offer without url needs chunkSize, chunks and chunkSha256',
      });
    } else {
      if (o.chunks !== Math.ceil(o.size / o.chunkSize))
        ctx.addIssue({ code: 'custom', path: ['chunks'], message: 'does not match size / chunkSize' });
      if (o.chunkSha256.length !== o.chunks)
        ctx.addIssue({ code: 'custom', path: ['chunkSha256'], message: 'needs one hash per chunk' });
    }
  }
});
export type Offer = z.infer<typeof offerSchema>;

export function parseOffer(payload: Buffer): Offer {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new UpdateRejected('malformed offer: not JSON');
  }
  // Cheap checks first: a flood of garbage must not cost a full schema validation (and an
  // issue per missing key) each, and an offer with thousands of unknown keys must not
  // make a message listing all of them.
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new UpdateRejected('malformed offer: not a JSON object');
  if ((raw as { type?: unknown }).type !== 'facegate-model-offer')
    throw new UpdateRejected('malformed offer: type is not "facegate-model-offer"');
  let unknown = 0;
  let firstUnknown = '';
  for (const k in raw) {
    if (OFFER_KEYS.has(k)) continue;
    if (unknown++ === 0) firstUnknown = k;
  }
  if (unknown > 0)
    throw new UpdateRejected(
      `malformed offer: unknown key ${JSON.stringify(firstUnknown.slice(0, 40))}${unknown > 1 ? ` and ${unknown - 1} more` : ''}`,
    );
  const r = offerSchema.safeParse(raw);
  if (!r.success) throw new UpdateRejected(`malformed offer: ${formatIssues(r.error.issues).replace(/\n/g, '; ')}`);
  return r.data;
}

/** Builds the offer for a bundle file's bytes. */
export function makeOffer(
  bundle: Buffer,
  options: { chunkSize?: number; url?: string | null } = {},
): { offer: Offer; chunks: Buffer[] } {
  const header = parseHeader(bundle);
  const transferId = randomBytes(8).toString('hex');
  const url = options.url ?? null;
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_BYTES;
  const chunks: Buffer[] = [];
  if (url === null)
    for (let o = 0; o < bundle.length; o += chunkSize)
      chunks.push(bundle.subarray(o, Math.min(o + chunkSize, bundle.length)));
  const manifest: BundleManifest = header.manifest;
  const signatures: BundleSignature[] = [...header.signatures];
  const offer: Offer = {
    type: 'facegate-model-offer',
    transferId,
    version: manifest.version,
    forced: manifest.forced,
    size: bundle.length,
    sha256: sha256(bundle),
    manifest,
    signatures,
    chunkSize: url === null ? chunkSize : null,
    chunks: url === null ? chunks.length : null,
    chunkSha256: url === null ? chunks.map((c) => sha256(c)) : null,
    url,
  };
  return { offer, chunks: chunks.map((c, i) => encodeChunk(transferId, i, c)) };
}

export function encodeChunk(transferId: string, index: number, data: Buffer): Buffer {
  const head = Buffer.alloc(20);
  head.write(transferId, 0, 16, 'ascii');
  head.writeUInt32BE(index, 16);
  return Buffer.concat([head, data]);
}

export function decodeChunk(payload: Buffer): { transferId: string; index: number; data: Buffer } | null {
  if (payload.length < 20) return null;
  const transferId = payload.subarray(0, 16).toString('ascii');
  if (!/^[0-9a-f]{16}$/.test(transferId)) return null;
  return { transferId, index: payload.readUInt32BE(16), data: payload.subarray(20) };
}

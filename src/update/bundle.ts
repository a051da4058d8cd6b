/**
 * The bundle: one file that carries a model directory to a kiosk.
 *
 * Layout (all integers big-endian):
 *
 *   8 bytes   magic "FGBUNDL1"
 *   4 bytes   header length H
 *   H bytes   header, UTF-8 JSON: { "manifest": {...}, "signatures": [{ keyId, algorithm, signature }] }
 *   ...       the files, concatenated in the byte order of their names, each exactly
 *             manifest.files[name].bytes long; nothing after the last one
 *
 * The signature is Ed25519 over `facegate-bundle-v1\n` + canonicalJson(manifest). The
 * manifest holds the sha256 and size of every file, so one signature covers all bytes;
 * the header itself is never trusted before the signature checks out. Signatures live
 * beside the manifest, so `bundle sign` adds one without touching what it covers.
 * A plain tar would need a separate signature file; this keeps it to one file and a
 * parser of forty lines that rejects anything unexpected (no paths with `..`, no links).
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { MANIFEST_FILE } from '../model/manifest.js';
import { formatIssues } from '../shared/validation.js';
import { writeFileAtomic } from '../shared/fs.js';
import { canonicalBytes } from './canonical.js';
import { UpdateRejected } from './errors.js';
import { signBytes, verifyBytes, type PublicKey } from './keys.js';
import type { KeyObject } from 'node:crypto';
import { sha256 } from '../model/dir/hash.js';
import { verifyModelDir } from '../model/dir/directory.js';
import { compareVersions, VERSION_PATTERN } from './version.js';
import {
  DEFAULT_TOLERANCE,
  SELFTEST_ANSWERS,
  SELFTEST_DIR,
  encodePng,
  loadReferences,
  modelFilesOf,
  syntheticReferences,
  type ModelRunner,
  type SelfTestAnswers,
} from './selftest.js';

export const BUNDLE_MAGIC = Buffer.from('FGBUNDL1', 'ascii');
export const SIGNATURE_CONTEXT = Buffer.from('facegate-bundle-v1\n', 'utf8');
/** Model files live under this folder inside a bundle. */
export const MODEL_PREFIX = 'model/';
/** A header larger than this is refused before parsing (it holds names and hashes only). */
export const MAX_HEADER_BYTES = 1024 * 1024;

/** Relative POSIX paths of plain names: no `..`, no leading `/`, no backslashes. */
const safePath = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/, 'must be a relative path of plain names');

export const bundleManifestSchema = z
  .object({
    format: z.literal('facegate-bundle').describe('marks a facegate model bundle'),
    formatVersion: z.literal(1).describe('bundle format version'),
    version: z
      .string()
      .regex(VERSION_PATTERN, 'letters, digits and . _ + - only')
      .describe("model version (the model manifest's); must be newer than the running one unless forced"),
    createdAt: z.iso.datetime().describe('when the bundle was made'),
    forced: z.boolean().describe('install even when not newer than the running version (a signed downgrade)'),
    expiresAt: z.iso
      .datetime()
      .nullable()
      .describe(
        'a kiosk refuses the bundle after this time; required for forced bundles so a signed downgrade cannot be replayed forever',
      ),
    kiosks: z
      .array(z.string().min(1))
      .nullable()
      .describe('kiosk ids allowed to install it; null = any kiosk that trusts the key'),
    labels: z
      .array(z.string().min(1))
      .min(2)
      .describe("class names, index i is output i (the model manifest's classes)"),
    thresholds: z
      .record(z.string(), z.number())
      .nullable()
      .describe(
        "the model's recognition thresholds (threshold, minMargin, targetFar); the full section is in model/manifest.json",
      ),
    files: z
      .record(
        safePath,
        z
          .object({
            sha256: z.string().regex(/^[0-9a-f]{64}$/),
            bytes: z.number().int().nonnegative(),
          })
          .strict(),
      )
      .describe('every file in the bundle: model/<file> and selftest/<file>'),
  })
  .strict()
  .refine((m) => !m.forced || m.expiresAt !== null, {
    message: 'a forced bundle needs expiresAt',
    path: ['expiresAt'],
  });
export type BundleManifest = z.infer<typeof bundleManifestSchema>;

export const signatureSchema = z
  .object({
    keyId: z.string().regex(/^[0-9a-f]{16}$/),
    algorithm: z.literal('ed25519'),
    signature: z
      .string()
      .regex(/^[A-Za-z0-9+/]+=*$/)
      .describe('base64'),
  })
  .strict();
export type BundleSignature = z.infer<typeof signatureSchema>;

export const headerSchema = z
  .object({
    manifest: z.unknown(),
    signatures: z.array(signatureSchema).max(16),
  })
  .strict();

export interface BundleHeader {
  readonly manifest: BundleManifest;
  readonly signatures: readonly BundleSignature[];
  /** Offset of the first file's bytes. */
  readonly dataOffset: number;
}

/** The byte ranges of the files in a bundle, in layout order. */
export function layout(
  manifest: BundleManifest,
  dataOffset: number,
): { name: string; offset: number; bytes: number; sha256: string }[] {
  let offset = dataOffset;
  return Object.keys(manifest.files)
    .sort(byteOrder)
    .map((name) => {
      const f = manifest.files[name] as { sha256: string; bytes: number };
      const entry = { name, offset, bytes: f.bytes, sha256: f.sha256 };
      offset += f.bytes;
      return entry;
    });
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function signedBytes(manifest: BundleManifest): Buffer {
  return Buffer.concat([SIGNATURE_CONTEXT, canonicalBytes(manifest)]);
}

export function signManifest(manifest: BundleManifest, key: { id: string; key: KeyObject }): BundleSignature {
  return {
    keyId: key.id,
    algorithm: 'ed25519',
    signature: signBytes(key.key, signedBytes(manifest)).toString('base64'),
  };
}

/** Parses a header; throws UpdateRejected. Nothing in it is trusted yet. */
export function parseHeader(buf: Buffer): BundleHeader {
  if (buf.length < 12 || !buf.subarray(0, 8).equals(BUNDLE_MAGIC)) throw new UpdateRejected('not a facegate bundle');
  const len = buf.readUInt32BE(8);
  if (len > MAX_HEADER_BYTES) throw new UpdateRejected('malformed bundle: header too large');
  if (buf.length < 12 + len) throw new UpdateRejected('truncated bundle: header incomplete');
  let raw: unknown;
  try {
    raw = JSON.parse(buf.subarray(12, 12 + len).toString('utf8'));
  } catch {
    throw new UpdateRejected('malformed bundle: header is not JSON');
  }
  const h = headerSchema.safeParse(raw);
  if (!h.success)
    throw new UpdateRejected(`malformed bundle header: ${formatIssues(h.error.issues).replace(/\n/g, '; ')}`);
  const m = bundleManifestSchema.safeParse(h.data.manifest);
  if (!m.success)
    throw new UpdateRejected(`malformed bundle manifest: ${formatIssues(m.error.issues).replace(/\n/g, '; ')}`);
  return { manifest: m.data, signatures: h.data.signatures, dataOffset: 12 + len };
}

export function encodeHeader(manifest: BundleManifest, signatures: readonly BundleSignature[]): Buffer {
  const json = Buffer.from(JSON.stringify({ manifest, signatures }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([BUNDLE_MAGIC, len, json]);
}

/** Checks the signatures; returns the id of the trusted key that signed. */
export function verifySignature(
  manifest: BundleManifest,
  signatures: readonly BundleSignature[],
  keys: readonly PublicKey[],
): string {
  if (signatures.length === 0)
    throw new UpdateRejected('unsigned bundle', 'Sign it: facegate bundle sign --key <private key>');
  const data = signedBytes(manifest);
  let knownButBad = false;
  for (const s of signatures) {
    const key = keys.find((k) => k.id === s.keyId);
    if (!key) continue;
    if (verifyBytes(key.key, data, Buffer.from(s.signature, 'base64'))) return key.id;
    knownButBad = true;
  }
  if (knownButBad) throw new UpdateRejected('bad signature: the manifest was changed after signing');
  throw new UpdateRejected(
    `signed by unknown key ${signatures.map((s) => s.keyId).join(', ')}`,
    'Add its public key to updates.publicKeys or sign with a trusted key',
  );
}

export interface VerifyPolicy {
  /** This kiosk's id, checked against the manifest's `kiosks`. */
  readonly kioskId?: string;
  /** The running version; the bundle must be newer unless forced. Null: nothing installed yet. */
  readonly runningVersion?: string | null;
  readonly allowForced?: boolean;
  readonly now?: Date;
}

/** The policy checks on a signed manifest: expiry, target, version order. */
export function checkPolicy(manifest: BundleManifest, policy: VerifyPolicy): void {
  const now = policy.now ?? new Date();
  if (manifest.expiresAt !== null && Date.parse(manifest.expiresAt) < now.getTime()) {
    throw new UpdateRejected(`bundle ${manifest.version} expired at ${manifest.expiresAt}`);
  }
  if (manifest.kiosks !== null && policy.kioskId !== undefined && !manifest.kiosks.includes(policy.kioskId)) {
    throw new UpdateRejected(`bundle ${manifest.version} is not for kiosk ${policy.kioskId}`);
  }
  const running = policy.runningVersion ?? null;
  if (running !== null && compareVersions(manifest.version, running) <= 0) {
    if (!manifest.forced)
      throw new UpdateRejected(
        `version ${manifest.version} is not newer than running ${running}`,
        'Make a new version, or a forced bundle (bundle create --force) to go back',
      );
    if (!policy.allowForced)
      throw new UpdateRejected(`forced bundle ${manifest.version} refused: updates.allowForced is false`);
  }
}

export interface VerifiedBundle {
  readonly manifest: BundleManifest;
  readonly keyId: string;
  readonly dataOffset: number;
}

/**
 * Verifies a whole bundle in memory: header, signature against `keys`, size, and the
 * sha256 of every file. Throws UpdateRejected with the reason.
 */
export function verifyBundleBytes(buf: Buffer, keys: readonly PublicKey[]): VerifiedBundle {
  const header = parseHeader(buf);
  const keyId = verifySignature(header.manifest, header.signatures, keys);
  const entries = layout(header.manifest, header.dataOffset);
  const end = entries.reduce((o, e) => o + e.bytes, header.dataOffset);
  if (buf.length < end) throw new UpdateRejected(`truncated bundle: ${buf.length} of ${end} bytes`);
  if (buf.length > end) throw new UpdateRejected(`malformed bundle: ${buf.length - end} bytes after the last file`);
  for (const e of entries) {
    if (sha256(buf.subarray(e.offset, e.offset + e.bytes)) !== e.sha256) {
      throw new UpdateRejected(`tampered bundle: ${e.name} does not match the signed manifest`);
    }
  }
  if (!(`${MODEL_PREFIX}${MANIFEST_FILE}` in header.manifest.files))
    throw new UpdateRejected(`malformed bundle: no ${MODEL_PREFIX}${MANIFEST_FILE}`);
  if (!(SELFTEST_ANSWERS in header.manifest.files))
    throw new UpdateRejected(`malformed bundle: no ${SELFTEST_ANSWERS}`);
  return { manifest: header.manifest, keyId, dataOffset: header.dataOffset };
}

/** Reads a bundle's header without checking anything beyond its form (for `bundle sign`). */
export async function readBundle(file: string): Promise<{ header: BundleHeader; bytes: Buffer }> {
  const bytes = await readFile(file);
  return { header: parseHeader(bytes), bytes };
}

export function packBundle(
  manifest: BundleManifest,
  files: ReadonlyMap<string, Buffer>,
  signatures: readonly BundleSignature[],
): Buffer {
  const parts: Buffer[] = [encodeHeader(manifest, signatures)];
  for (const e of layout(manifest, 0)) {
    const data = files.get(e.name);
    if (!data) throw new Error(`packBundle: no data for ${e.name}`);
    parts.push(data);
  }
  return Buffer.concat(parts);
}

/** Re-packs a bundle with one more signature (replacing an older one by the same key). */
export async function signBundleFile(
  file: string,
  key: { id: string; key: KeyObject },
  out = file,
): Promise<BundleSignature> {
  const { header, bytes } = await readBundle(file);
  const sig = signManifest(header.manifest, key);
  const signatures = [...header.signatures.filter((s) => s.keyId !== key.id), sig];
  await writeFileAtomic(
    out,
    Buffer.concat([encodeHeader(header.manifest, signatures), bytes.subarray(header.dataOffset)]),
  );
  return sig;
}

export interface CreateOptions {
  readonly modelDir: string;
  /** Face crops (or any images) for the self-test; synthetic patterns when empty. */
  readonly references?: readonly string[];
  readonly forced?: boolean;
  /** Required when forced; default for forced bundles: 7 days after creation. */
  readonly expiresAt?: Date | null;
  readonly kiosks?: readonly string[] | null;
  readonly tolerance?: SelfTestAnswers['tolerance'];
  readonly runner: ModelRunner;
  readonly key?: { id: string; key: KeyObject };
  readonly now?: Date;
}

/** Builds a bundle from a model directory: verifies it, records self-test answers, signs. */
export async function createBundle(o: CreateOptions): Promise<{ bytes: Buffer; manifest: BundleManifest }> {
  const model = await verifyModelDir(o.modelDir);
  const files = new Map<string, Buffer>();
  files.set(`${MODEL_PREFIX}${MANIFEST_FILE}`, await readFile(path.join(o.modelDir, MANIFEST_FILE)));
  for (const name of Object.keys(model.files)) {
    if (safePath.safeParse(name).success !== true)
      throw new UpdateRejected(`model file name ${name} cannot go into a bundle`);
    files.set(`${MODEL_PREFIX}${name}`, await readFile(path.join(o.modelDir, name)));
  }
  const { width, height } = model.input;
  const refs =
    o.references && o.references.length > 0
      ? await loadReferences(o.references, width, height)
      : syntheticReferences(width, height);
  const cases: SelfTestAnswers['cases'] = refs.map((r, i) => ({
    image: `${SELFTEST_DIR}/ref-${i}.png`,
    source: r.source,
    results: {},
  }));
  for (const [i, r] of refs.entries()) files.set(`${SELFTEST_DIR}/ref-${i}.png`, await encodePng(r.image));
  for (const file of modelFilesOf(model)) {
    const answers = await o.runner.answer(
      o.modelDir,
      model,
      file,
      refs.map((r) => r.image),
    );
    answers.forEach((a, i) => {
      (cases[i] as SelfTestAnswers['cases'][number]).results[file] = {
        label: a.label,
        probabilities: [...a.probabilities],
        embedding: [...a.embedding],
      };
    });
  }
  const answers: SelfTestAnswers = { formatVersion: 1, tolerance: o.tolerance ?? { ...DEFAULT_TOLERANCE }, cases };
  files.set(SELFTEST_ANSWERS, Buffer.from(JSON.stringify(answers)));

  const now = o.now ?? new Date();
  const forced = o.forced ?? false;
  const expiresAt =
    o.expiresAt !== undefined ? o.expiresAt : forced ? new Date(now.getTime() + 7 * 24 * 3600 * 1000) : null;
  const manifest: BundleManifest = {
    format: 'facegate-bundle',
    formatVersion: 1,
    version: model.version,
    createdAt: now.toISOString(),
    forced,
    expiresAt: expiresAt ? expiresAt.toISOString() : null,
    kiosks: o.kiosks ? [...o.kiosks] : null,
    labels: [...model.classes],
    thresholds: model.recognition
      ? {
          threshold: model.recognition.threshold,
          minMargin: model.recognition.minMargin,
          targetFar: model.recognition.targetFar,
        }
      : null,
    files: Object.fromEntries(
      [...files.entries()]
        .sort(([a], [b]) => byteOrder(a, b))
        .map(([n, d]) => [n, { sha256: sha256(d), bytes: d.length }]),
    ),
  };
  const checked = bundleManifestSchema.safeParse(manifest);
  if (!checked.success)
    throw new UpdateRejected(`cannot build bundle: ${formatIssues(checked.error.issues).replace(/\n/g, '; ')}`);
  const signatures = o.key ? [signManifest(manifest, o.key)] : [];
  return { bytes: packBundle(manifest, files, signatures), manifest };
}

/**
 * Writes the verified bundle's files under `dir` (created; must not exist), each file
 * synced. Model files go to `dir/model`, self-test files to `dir/selftest`.
 */
export async function extractBundle(buf: Buffer, verified: VerifiedBundle, dir: string): Promise<void> {
  await mkdir(dir, { recursive: false });
  for (const e of layout(verified.manifest, verified.dataOffset)) {
    const target = path.join(dir, ...e.name.split('/'));
    if (!target.startsWith(dir + path.sep))
      throw new UpdateRejected(`malformed bundle: path ${e.name} leaves the folder`);
    await mkdir(path.dirname(target), { recursive: true });
    const fh = await open(target, 'wx', 0o644);
    try {
      await fh.writeFile(buf.subarray(e.offset, e.offset + e.bytes));
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

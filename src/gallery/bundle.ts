/**
 * People bundles: an operator enrols once and every kiosk of the fleet gets the people.
 *
 * A people bundle is one JSON file `{ manifest, signatures }`. The manifest lists people
 * (id, name, groups, validity, their face templates of one descriptor, as base64 float32)
 * and the ids of people removed. It is signed with the update keys (Ed25519, as model
 * bundles) over `facegate-people-v1\n` + canonical JSON of the manifest: a different context
 * than model bundles, so neither signature can pass for the other.
 *
 * A kiosk installs a bundle only when it is signed by a trusted key (updates.publicKeys),
 * made for it (kiosks), made with the descriptor it runs, and signed after the last people
 * bundle it installed (the update history): a captured older bundle cannot be replayed.
 * Removal is final: the ids a bundle removed are remembered, and no bundle brings them back.
 *
 * Format 1 carries templates only: a kiosk running another descriptor cannot use them and
 * refuses the bundle. Format 2 (`export-bundle --with-crops`) also carries the kept enrolment
 * crop each template was made from (PNG, base64; face images): a kiosk running another
 * descriptor computes its own templates from them, as after a model change, and keeps the
 * crops only when its own gallery.keepCrops says so. Without crops the exporter still writes
 * format 1, which kiosks of every release read.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalBytes } from '../update/canonical.js';
import { UpdateRejected } from '../update/errors.js';
import { PeopleHistory } from '../update/history.js';
import { signBytes, verifyBytes, type PublicKey } from '../update/keys.js';
import type { KioskDb } from '../state/db.js';
import { formatIssues } from '../shared/validation.js';
import type { GalleryStore } from './store.js';

export const PEOPLE_SIGNATURE_CONTEXT = Buffer.from('facegate-people-v1\n', 'utf8');

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a person id (uuid)');

export const peopleManifestSchema = z
  .object({
    format: z.literal('facegate-people').describe('marks a facegate people bundle'),
    formatVersion: z
      .union([z.literal(1), z.literal(2)])
      .describe('people bundle format version: 1 templates only, 2 templates and the face crops they were made from'),
    createdAt: z.iso.datetime().describe('when it was signed; a kiosk installs only bundles newer than the last one'),
    kiosks: z.array(z.string().min(1)).nullable().describe('kiosk ids that may install it; null = every kiosk'),
    descriptor: z.string().min(1).describe('id of the face descriptor the templates were made by'),
    people: z
      .array(
        z
          .object({
            id: uuid,
            name: z.string().min(1),
            groups: z.array(z.string()),
            validFrom: z.string().nullable(),
            validUntil: z.string().nullable(),
            templates: z
              .array(z.string().regex(/^[A-Za-z0-9+/]+=*$/))
              .min(1)
              .describe('base64 float32 vectors'),
            crops: z
              .array(z.string().regex(/^[A-Za-z0-9+/]+=*$/))
              .optional()
              .describe('format 2: the kept enrolment crop (PNG, base64) each template was made from, in order'),
          })
          .strict(),
      )
      .describe('people to enrol (or update), with the ids they have on the kiosk that exported them'),
    removed: z.array(uuid).describe('ids of people to erase; final: no later bundle brings them back'),
  })
  .strict()
  .superRefine((m, ctx) => {
    m.people.forEach((p, i) => {
      if (m.formatVersion === 1 && p.crops !== undefined)
        ctx.addIssue({ code: 'custom', path: ['people', i, 'crops'], message: 'format 1 carries no crops' });
      if (m.formatVersion === 2 && p.crops?.length !== p.templates.length)
        ctx.addIssue({
          code: 'custom',
          path: ['people', i, 'crops'],
          message: 'format 2 carries one crop per template',
        });
    });
  });
export type PeopleManifest = z.infer<typeof peopleManifestSchema>;

const signatureSchema = z
  .object({ keyId: z.string().regex(/^[0-9a-f]{16}$/), algorithm: z.literal('ed25519'), signature: z.string() })
  .strict();
const peopleBundleSchema = z.object({ manifest: z.unknown(), signatures: z.array(signatureSchema).max(16) }).strict();

function signed(m: PeopleManifest): Buffer {
  return Buffer.concat([PEOPLE_SIGNATURE_CONTEXT, canonicalBytes(m)]);
}

const encode = (v: Float32Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
function decode(b64: string): Float32Array {
  const b = Buffer.from(b64, 'base64');
  if (b.length === 0 || b.length % 4 !== 0)
    throw new UpdateRejected('malformed people bundle: a template is not float32');
  const out = new Float32Array(b.length / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/**
 * Makes a signed people bundle from a kiosk's gallery: `names` (all people when empty) with
 * their templates of `descriptor`, and `removed` ids to erase on every kiosk. `withCrops`
 * adds the kept enrolment crop of each template (format 2) so kiosks running another
 * descriptor can compute their own templates.
 */
export function createPeopleBundle(o: {
  store: GalleryStore;
  descriptor: string;
  names?: readonly string[];
  removed?: readonly string[];
  kiosks?: readonly string[] | null;
  withCrops?: boolean;
  key: { id: string; key: KeyObject };
  now?: Date;
}): { bytes: Buffer; manifest: PeopleManifest } {
  const everyone = o.store.people();
  const chosen = o.names?.length
    ? o.names.map((n) => {
        const p = o.store.person(n);
        if (!p) throw new UpdateRejected(`nobody enrolled as ${n}`, 'See facegate enrol list');
        return p;
      })
    : everyone;
  const people = chosen.map((p) => {
    const own = o.store.templates(p.id).filter((t) => t.descriptor === o.descriptor);
    if (own.length === 0)
      throw new UpdateRejected(`${p.name} has no template of descriptor ${o.descriptor}`, 'Enrol them again');
    let crops: string[] | undefined;
    if (o.withCrops) {
      if (own.some((t) => t.cropFile === null))
        throw new UpdateRejected(
          `${p.name} has no kept enrolment crops (gallery.keepCrops was false when they were enrolled)`,
          'Export without --with-crops, leave them out (--person), or remove and enrol them again with gallery.keepCrops true',
        );
      crops = own.map((t) => o.store.readCrop(p.id, t.cropFile as string).toString('base64'));
    }
    return {
      id: p.id,
      name: p.name,
      groups: [...p.groups],
      validFrom: p.validFrom,
      validUntil: p.validUntil,
      templates: own.map((t) => encode(t.vector)),
      ...(crops ? { crops } : {}),
    };
  });
  const manifest = peopleManifestSchema.parse({
    format: 'facegate-people',
    formatVersion: o.withCrops ? 2 : 1,
    createdAt: (o.now ?? new Date()).toISOString(),
    kiosks: o.kiosks?.length ? [...o.kiosks] : null,
    descriptor: o.descriptor,
    people,
    removed: [...(o.removed ?? [])],
  });
  const signature = { keyId: o.key.id, algorithm: 'ed25519' as const, signature: '' };
  signature.signature = signBytes(o.key.key, signed(manifest)).toString('base64');
  return { bytes: Buffer.from(JSON.stringify({ manifest, signatures: [signature] })), manifest };
}

/** Parses a people bundle and checks its signature against the trusted keys; nothing in it is trusted before. */
export function readPeopleBundle(bytes: Buffer, keys: readonly PublicKey[]): PeopleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UpdateRejected('not a people bundle: not JSON');
  }
  const b = peopleBundleSchema.safeParse(raw);
  if (!b.success)
    throw new UpdateRejected(`malformed people bundle: ${formatIssues(b.error.issues).replace(/\n/g, '; ')}`);
  const m = peopleManifestSchema.safeParse(b.data.manifest);
  if (!m.success)
    throw new UpdateRejected(`malformed people bundle manifest: ${formatIssues(m.error.issues).replace(/\n/g, '; ')}`);
  if (b.data.signatures.length === 0) throw new UpdateRejected('unsigned people bundle');
  const data = signed(m.data);
  let knownButBad = false;
  for (const s of b.data.signatures) {
    const key = keys.find((k) => k.id === s.keyId);
    if (!key) continue;
    if (verifyBytes(key.key, data, Buffer.from(s.signature, 'base64'))) return m.data;
    knownButBad = true;
  }
  if (knownButBad) throw new UpdateRejected('bad signature: the people bundle was changed after signing');
  throw new UpdateRejected(
    `people bundle signed by unknown key ${b.data.signatures.map((s) => s.keyId).join(', ')}`,
    'Add its public key to updates.publicKeys or sign with a trusted key',
  );
}

export interface PeopleInstallResult {
  readonly put: number;
  readonly removed: number;
  /** People of the bundle not installed: removed by an earlier bundle (removal is final). */
  readonly skipped: readonly string[];
  /** People whose templates this kiosk computed from the bundle's crops (the bundle's descriptor is not its own). */
  readonly fromCrops: number;
}

export interface PeopleInstallOptions {
  readonly store: GalleryStore;
  readonly db: KioskDb;
  readonly keys: readonly PublicKey[];
  readonly kioskId: string;
  /** The descriptor this kiosk runs. */
  readonly descriptor: string;
  /** gallery.keepCrops of this kiosk: whether a bundle's crops are kept as files. */
  readonly keepCrops: boolean;
  /**
   * Templates of this kiosk's descriptor for encoded enrolment crops, in order (the gallery's
   * recompute-from-crops path); absent: a bundle of another descriptor is refused.
   */
  readonly describeCrops?: (crops: readonly Buffer[]) => Promise<Float32Array[]>;
  /** Called with the manifest once its signature is verified (its signing time names the bundle). */
  readonly verified?: (m: PeopleManifest) => void;
}

/** Installs a people bundle into the kiosk's gallery; UpdateRejected (with the reason) when it must not be. */
export async function installPeopleBundle(bytes: Buffer, o: PeopleInstallOptions): Promise<PeopleInstallResult> {
  const m = readPeopleBundle(bytes, o.keys);
  o.verified?.(m);
  if (m.kiosks !== null && !m.kiosks.includes(o.kioskId))
    throw new UpdateRejected(`people bundle is for kiosks ${m.kiosks.join(', ')}, not ${o.kioskId}`);
  const own = m.descriptor === o.descriptor;
  if (!own && (m.formatVersion === 1 || !o.describeCrops))
    throw new UpdateRejected(
      `people bundle templates were made by descriptor ${m.descriptor}; this kiosk runs ${o.descriptor} and the bundle carries no face crops to compute its own from`,
      'Export the bundle with --with-crops, or from a kiosk that runs the same model',
    );
  const history = new PeopleHistory(o.db);
  history.open();
  const id = createHash('sha256').update(signed(m)).digest('hex');
  history.check(id, m.createdAt);
  const removedIds = new Set(m.removed);
  const kept = m.people.filter((p) => !removedIds.has(p.id) && !history.removed(p.id));
  const skipped = m.people.filter((p) => !kept.includes(p)).map((p) => p.name);
  const people: Parameters<GalleryStore['applyBundle']>[1][number][] = [];
  for (const p of kept) {
    const crops = p.crops?.map((c) => Buffer.from(c, 'base64'));
    let vectors: Float32Array[];
    if (own) vectors = p.templates.map(decode);
    else {
      try {
        vectors = await (o.describeCrops as NonNullable<typeof o.describeCrops>)(crops ?? []);
      } catch (err) {
        throw new UpdateRejected(
          `cannot compute templates of ${p.name} from the bundle's crops: ${(err as Error).message}`,
        );
      }
    }
    people.push({
      id: p.id,
      name: p.name,
      groups: p.groups,
      validFrom: p.validFrom,
      validUntil: p.validUntil,
      vectors,
      ...(o.keepCrops && crops ? { crops } : {}),
    });
  }
  const r = o.store.applyBundle(o.descriptor, people, m.removed, () => {
    // Checked again: another bundle may have been installed while crops were described.
    history.check(id, m.createdAt);
    history.record(id, m.createdAt, m.removed);
  });
  return { put: r.put, removed: r.removed.length, skipped, fromCrops: own ? 0 : people.length };
}

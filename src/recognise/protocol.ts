/**
 * The gallery evaluation protocol on a folder of labelled photos (`DIR/<person>/photos`) and a
 * folder of strangers, e.g. LFW laid out as `people/` and `singletons/`:
 *
 * - people with at least `minPhotos` photos are enrolled with their first `enrol` photos (by
 *   file name); their other photos are genuine probes, and one person's probes, in file order,
 *   are one visit;
 * - the other people (fewer photos) form the impostor pool: never enrolled, never probes;
 *   they are where a threshold may be calibrated, so calibration never sees a probe;
 * - every photo under the strangers folder is one stranger probe (and a one-photo visit).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DataError } from '../shared/errors.js';
import { listImages } from '../shared/image.js';

export interface ProtocolOptions {
  /** People with at least this many photos are enrolled (default 6). */
  readonly minPhotos?: number;
  /** Photos enrolled per person, the first by file name (default 3). */
  readonly enrol?: number;
}

export interface PersonPhotos {
  readonly person: string;
  readonly files: readonly string[];
}

export interface GalleryProtocol {
  readonly minPhotos: number;
  readonly enrolPerPerson: number;
  /** Enrolled people: `files` are the enrolment photos. */
  readonly enrolled: readonly PersonPhotos[];
  /** The same people's other photos: genuine probes. */
  readonly probes: readonly PersonPhotos[];
  /** People with too few photos: the impostor pool for calibration. */
  readonly pool: readonly PersonPhotos[];
  /** Stranger photos (never enrolled). */
  readonly strangers: readonly string[];
}

async function subfolders(dir: string, what: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch (err) {
    throw new DataError(
      `cannot read ${what} ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}. Pass a folder with one sub-folder of photos per person.`,
      { cause: err },
    );
  }
}

async function imagesBelow(dir: string, what: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await subfolders(dir, what)) out.push(...(await listImages(path.join(dir, sub))));
  out.push(...(await listImages(dir)));
  return out.sort();
}

/** Splits `people` (and `strangers`) as the protocol says. */
export async function galleryProtocol(
  people: string,
  strangers: string | undefined,
  o: ProtocolOptions = {},
): Promise<GalleryProtocol> {
  const minPhotos = o.minPhotos ?? 6;
  const enrolPerPerson = o.enrol ?? 3;
  if (!(enrolPerPerson >= 1 && minPhotos > enrolPerPerson))
    throw new DataError(
      `the protocol needs 1 ≤ enrol (${enrolPerPerson}) < min photos (${minPhotos}) so that every enrolled person has a probe`,
    );
  const enrolled: PersonPhotos[] = [];
  const probes: PersonPhotos[] = [];
  const pool: PersonPhotos[] = [];
  for (const person of await subfolders(people, '--data')) {
    const files = await listImages(path.join(people, person));
    if (files.length >= minPhotos) {
      enrolled.push({ person, files: files.slice(0, enrolPerPerson) });
      probes.push({ person, files: files.slice(enrolPerPerson) });
    } else if (files.length > 0) pool.push({ person, files });
  }
  if (enrolled.length < 2)
    throw new DataError(
      `--data ${people}: only ${enrolled.length} people have ≥ ${minPhotos} photos; the gallery protocol needs at least 2 (lower --min-photos?)`,
    );
  return {
    minPhotos,
    enrolPerPerson,
    enrolled,
    probes,
    pool,
    strangers: strangers ? await imagesBelow(strangers, '--unknown') : [],
  };
}

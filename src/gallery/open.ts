/**
 * Opens the gallery for a process (the daemon, the CLI): the store in the kiosk database,
 * the descriptor and the detector. One function so that every path builds it the same way.
 */
import path from 'node:path';
import type { BlazeFaceDetector } from '../detect/blazeface.js';
import { loadDetector } from '../detect/model.js';
import { KioskDb, kioskDbPath } from '../state/db.js';
import type { GalleryConfig, GalleryNorm } from './config.js';
import { loadBuiltinDescriptor, type FaceDescriptor } from './descriptor.js';
import { FaceGallery, type FrameFeed } from './service.js';
import { GalleryStore } from './store.js';

export interface OpenGalleryOptions {
  readonly config: GalleryConfig;
  readonly stateDir: string;
  /** The daemon's shared kiosk database; opened (and closed again) here when absent. */
  readonly db?: KioskDb;
  readonly threads?: number;
  readonly detectorCacheDir?: string;
  readonly minDetectionScore?: number;
  /** The detector input's longer side (model.detectorSize). */
  readonly detectorSize?: number;
  /** Another descriptor than the built-in one (a model directory's, tests). */
  readonly descriptor?: FaceDescriptor;
  readonly frames?: FrameFeed;
}

export interface OpenGallery {
  readonly gallery: FaceGallery;
  readonly store: GalleryStore;
  readonly descriptor: FaceDescriptor;
  readonly detector: BlazeFaceDetector;
  /** gallery.norm, which a model directory's own descriptor is scored by too. */
  readonly norm: GalleryNorm;
  close(): Promise<void>;
}

export function galleryFilesDir(stateDir: string): string {
  return path.join(path.resolve(stateDir), 'gallery');
}

export async function openGallery(o: OpenGalleryOptions): Promise<OpenGallery> {
  const owned = !o.db;
  const db = o.db ?? KioskDb.open(kioskDbPath(path.resolve(o.stateDir)));
  try {
    const store = new GalleryStore(db, galleryFilesDir(o.stateDir));
    store.open();
    const descriptor =
      o.descriptor ??
      (await loadBuiltinDescriptor({
        name: o.config.descriptor,
        flip: o.config.flip,
        rule: o.config.rule,
        norm: o.config.norm,
        landmarks: o.config.landmarks,
        cacheDir: o.config.descriptorCacheDir,
        threads: o.threads,
      }));
    const detector = await loadDetector({
      threads: o.threads,
      ...(o.detectorCacheDir ? { cacheDir: o.detectorCacheDir } : {}),
      ...(o.minDetectionScore !== undefined ? { minScore: o.minDetectionScore } : {}),
      ...(o.detectorSize !== undefined ? { longSide: o.detectorSize } : {}),
      // The mesh's landmarks for the dlib chip, on every face the gallery's detector finds (enrolment, kiosk, recomputed templates).
      ...(o.config.landmarks === 'mesh' && !o.descriptor ? { landmarks: 'mesh' as const } : {}),
    });
    const gallery = new FaceGallery({
      store,
      descriptor,
      detector,
      config: o.config,
      ...(o.frames ? { frames: o.frames } : {}),
    });
    return {
      gallery,
      store,
      descriptor,
      detector,
      norm: o.config.norm,
      async close() {
        await detector.close();
        if (!o.descriptor) await descriptor.close();
        if (owned) db.close();
      },
    };
  } catch (err) {
    if (owned) db.close();
    throw err;
  }
}

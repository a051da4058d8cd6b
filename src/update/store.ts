/**
 * The kiosk's model store: installed versions on disk, the `current` pointer, and the
 * rules that keep a valid model behind it whatever happens.
 *
 *   <modelsDir>/versions/<version>-<id>/   model/ (the model directory), selftest/, bundle.json
 *   <modelsDir>/current  -> versions/...   symlink; replaced by rename(2), which is atomic
 *   <modelsDir>/previous -> ...            the model before the last swap, kept for rollback
 *   <modelsDir>/good -> ...                the last model that passed its probation (or verified at a
 *                                          start with no swap pending): never collected, so a chain of
 *                                          installs during probations cannot delete the last good one
 *   <modelsDir>/probation.json             written before a swap, removed once the new
 *                                          model ran `probationMinutes` without a restart
 *   <modelsDir>/state.json                 running / previous / last update state
 *   <modelsDir>/staging/, transfers/       temporary; emptied at every start
 *
 * Before anything is installed there is no `current`: the kiosk runs the configured
 * `model.dir` (the fallback), which a rollback can return to (pointers may name it by
 * absolute path). A pointer never names a half-written folder: a version folder is
 * complete, synced and self-tested before it is renamed into versions/.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Manifest } from '../model/manifest.js';
import { syncDir, writeFileAtomic } from '../shared/fs.js';
import {
  checkPolicy,
  extractBundle,
  parseHeader,
  verifyBundleBytes,
  verifySignature,
  encodeHeader,
  type BundleManifest,
  type VerifyPolicy,
} from './bundle.js';
import { StoreError, UpdateRejected } from './errors.js';
import { crashPoint } from './hooks.js';
import type { PublicKey } from './keys.js';
import { digestFile } from '../model/dir/hash.js';
import { verifyModelDir } from '../model/dir/directory.js';
import { selfTestUnpacked, type ModelRunner } from './selftest.js';

export const BUNDLE_HEADER_FILE = 'bundle.json';

/** The model the kiosk runs. */
export interface ActiveModel {
  /** The model directory (holds manifest.json). */
  readonly dir: string;
  readonly version: string;
  /** 'store': installed from a signed bundle; 'fallback': the configured model.dir. */
  readonly source: 'store' | 'fallback';
}

export const updateStateSchema = z
  .object({
    running: z.string().nullable().describe('version the kiosk runs'),
    previous: z.string().nullable().describe('version kept for rollback'),
    state: z
      .string()
      .nullable()
      .describe('installed | rejected: <reason> | rolled back: <reason>; null before any update'),
    offered: z.string().nullable().describe('version the last update was about'),
    at: z.string().nullable().describe('time of the last update state (ISO 8601)'),
    probationUntil: z.string().nullable().describe('end of the probation of the running model, if still on probation'),
  })
  .strict();
export type UpdateState = z.infer<typeof updateStateSchema>;

const pointerSchema = z.object({ target: z.string(), version: z.string() }).strict();
const markerSchema = z
  .object({
    version: z.string(),
    target: z.string().describe('what current points to after the swap'),
    previous: pointerSchema.nullable().describe('what current pointed to before (null: the fallback)'),
    oldPrevious: pointerSchema.nullable().describe('what previous pointed to before'),
    swappedAt: z.string(),
    until: z.string(),
    rollback: z.string().optional().describe('set when a rollback started: the state it reports'),
  })
  .strict();
type Marker = z.infer<typeof markerSchema>;

type Pointer = 'current' | 'previous' | 'good';

/** At most this many version folders stay in versions/ (current, previous, the last good one, a rollback's). */
export const MAX_VERSION_FOLDERS = 4;

export interface StoreOptions {
  readonly dir: string;
  /** The configured model directory, run while nothing is installed. */
  readonly fallbackDir: string;
  readonly keys: readonly PublicKey[];
  readonly runner: ModelRunner;
  readonly probationMinutes: number;
  readonly log: Logger;
  readonly now?: () => Date;
}

export class ModelStore {
  private readonly now: () => Date;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: StoreOptions) {
    this.now = o.now ?? ((): Date => new Date());
  }

  get dir(): string {
    return this.o.dir;
  }
  private p(...parts: string[]): string {
    return path.join(this.o.dir, ...parts);
  }

  /** Runs store operations one at a time (an install, a rollback, a probation pass). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  // ---------- pointers ----------

  private async readPointer(name: Pointer): Promise<string | null> {
    try {
      return await readlink(this.p(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Points `name` at `target` (null removes it) with a temp symlink and a rename. */
  private async setPointer(name: Pointer, target: string | null, step?: string): Promise<void> {
    if (target === null) {
      await rm(this.p(name), { force: true });
    } else {
      const tmp = this.p(`${name}.tmp`);
      await rm(tmp, { force: true });
      await symlink(target, tmp);
      if (step) crashPoint(step);
      await rename(tmp, this.p(name));
    }
    await syncDir(this.o.dir);
  }

  private resolve(target: string): string {
    return path.isAbsolute(target) ? target : this.p(target);
  }

  /** The model directory a pointer target names: a store version's model/, or the target itself. */
  private modelDirOf(target: string): string {
    const abs = this.resolve(target);
    return path.isAbsolute(target) ? abs : path.join(abs, 'model');
  }

  // ---------- verification ----------

  /**
   * Checks an installed version folder: its bundle header's signature against the
   * configured keys, every file against the signed hashes, and the model manifest.
   * Returns the model's manifest (its version is the bundle's).
   */
  async verifyVersionDir(versionDir: string): Promise<Manifest> {
    const header = parseHeader(await readFile(path.join(versionDir, BUNDLE_HEADER_FILE)));
    verifySignature(header.manifest, header.signatures, this.o.keys);
    for (const [name, want] of Object.entries(header.manifest.files)) {
      const have = await digestFile(path.join(versionDir, ...name.split('/')));
      if (have.sha256 !== want.sha256 || have.bytes !== want.bytes) {
        throw new UpdateRejected(`${name} in ${versionDir} does not match its signed manifest`);
      }
    }
    const model = await verifyModelDir(path.join(versionDir, 'model'));
    if (model.version !== header.manifest.version)
      throw new UpdateRejected(`model version ${model.version} differs from bundle version ${header.manifest.version}`);
    if (JSON.stringify(model.classes) !== JSON.stringify(header.manifest.labels))
      throw new UpdateRejected('model classes differ from the signed labels');
    return model;
  }

  /** Verifies what a pointer target names; returns the active model it gives. */
  private async verifyTarget(target: string): Promise<ActiveModel> {
    if (path.isAbsolute(target)) {
      const m = await verifyModelDir(target);
      return { dir: target, version: m.version, source: target === this.o.fallbackDir ? 'fallback' : 'store' };
    }
    const m = await this.verifyVersionDir(this.resolve(target));
    return { dir: this.modelDirOf(target), version: m.version, source: 'store' };
  }

  private async fallback(): Promise<ActiveModel> {
    try {
      const m = await verifyModelDir(this.o.fallbackDir);
      return { dir: this.o.fallbackDir, version: m.version, source: 'fallback' };
    } catch (err) {
      throw new StoreError(
        `no valid model to run: nothing usable in ${this.o.dir} and the configured model.dir ${this.o.fallbackDir} fails its check (${(err as Error).message})`,
        { cause: err },
      );
    }
  }

  // ---------- state ----------

  async readState(): Promise<UpdateState> {
    try {
      const parsed = updateStateSchema.safeParse(JSON.parse(await readFile(this.p('state.json'), 'utf8')));
      if (parsed.success) return parsed.data;
    } catch {
      /* missing or unreadable: start afresh */
    }
    return { running: null, previous: null, state: null, offered: null, at: null, probationUntil: null };
  }

  private async writeState(s: UpdateState, step?: string): Promise<void> {
    await writeFileAtomic(
      this.p('state.json'),
      JSON.stringify(s, null, 2),
      step ? { beforeRename: () => crashPoint(step) } : {},
    );
  }

  /** Records the outcome of an update attempt that did not change the running model. */
  async recordRejected(offered: string | null, reason: string): Promise<UpdateState> {
    return this.serial(async () => {
      const s = await this.readState();
      const next = { ...s, state: `rejected: ${reason}`, offered, at: this.now().toISOString() };
      await this.writeState(next);
      return next;
    });
  }

  private async readMarker(): Promise<Marker | null> {
    let raw: string;
    try {
      raw = await readFile(this.p('probation.json'), 'utf8');
    } catch {
      return null;
    }
    try {
      return markerSchema.parse(JSON.parse(raw));
    } catch {
      // A marker that does not parse still means a swap was under way.
      return { version: '?', target: '', previous: null, oldPrevious: null, swappedAt: '', until: '' };
    }
  }

  // ---------- start ----------

  /**
   * Run at every start, before the model is loaded: removes temporary files, rolls back
   * a swap whose probation did not pass, verifies the model behind `current` (falling
   * back to `previous`, then to the configured model) and returns the model to run.
   */
  async recover(): Promise<{ active: ActiveModel; state: UpdateState }> {
    return this.serial(async () => {
      await mkdir(this.p('versions'), { recursive: true });
      // Folders of an install that never reached its marker: name them in the state.
      const interrupted = new Set<string>();
      const versionOfFolder = (name: string): string => name.replace(/-[0-9a-f]{8}$/, '');
      for (const d of await readdir(this.p('staging')).catch(() => [] as string[])) interrupted.add(versionOfFolder(d));
      await rm(this.p('staging'), { recursive: true, force: true });
      await rm(this.p('transfers'), { recursive: true, force: true });
      for (const f of ['current.tmp', 'previous.tmp', 'good.tmp', 'probation.json.tmp', 'state.json.tmp'])
        await rm(this.p(f), { force: true });
      for (const f of await readdir(this.o.dir)) if (f.endsWith('.tmp')) await rm(this.p(f), { force: true });

      let state = await this.readState();
      let marker = await this.readMarker();
      if (marker && marker.target === '') {
        // The marker does not parse: which swap it was about is unknown. A `current` that
        // verifies is kept (never wipe a valid model over a damaged note); else pickValid
        // goes back to previous, the last good one, or the fallback.
        this.o.log.error('the probation marker is unreadable; keeping current if it verifies');
        await rm(this.p('probation.json'), { force: true });
        await syncDir(this.o.dir);
        state = { ...state, state: 'rolled back: probation marker unreadable; kept the model that verifies' };
        marker = null;
      }
      if (marker) {
        const current = await this.readPointer('current');
        const swapped = current !== null && current === marker.target;
        const reason = swapped
          ? `restarted during the probation of ${marker.version}`
          : `install of ${marker.version} interrupted`;
        this.o.log.warn({ version: marker.version, swapped }, `rolling back: ${reason}`);
        state = await this.undoSwap(marker, `rolled back: ${reason}`);
      }

      if (!marker) for (const d of await this.unreferenced()) interrupted.add(versionOfFolder(d));
      if (!marker && interrupted.size > 0) {
        const v = [...interrupted].join(', ');
        this.o.log.warn({ version: v }, 'an install was interrupted by a restart before the swap');
        state = {
          ...state,
          state: `rejected: install of ${v} interrupted by a restart`,
          offered: v,
          at: this.now().toISOString(),
        };
      }
      const active = await this.pickValid(state);
      state = { ...state, running: active.version, probationUntil: null };
      await this.writeState(state);
      // No swap pending: what runs now verified, so it is the last good one.
      if (active.source === 'store') await this.setPointer('good', await this.readPointer('current'));
      await this.collectGarbage();
      return { active, state };
    });
  }

  /** current → marker.previous, previous → marker.oldPrevious, state, marker removed. Idempotent. */
  private async undoSwap(found: Marker, reason: string): Promise<UpdateState> {
    let marker = found;
    if (marker.rollback === undefined) {
      // Record the reason first: a crash during the rollback repeats it with the same words.
      marker = { ...marker, rollback: reason };
      await writeFileAtomic(this.p('probation.json'), JSON.stringify(marker, null, 2));
      crashPoint('rollback-marked');
    }
    await this.setPointer('current', marker.previous?.target ?? null, 'rollback-current-written');
    crashPoint('rollback-current-placed');
    await this.setPointer('previous', marker.oldPrevious?.target ?? null, 'rollback-previous-written');
    const s = await this.readState();
    const next: UpdateState = {
      running: marker.previous?.version ?? s.running,
      previous: marker.oldPrevious?.version ?? null,
      state: marker.rollback ?? reason,
      offered: marker.version,
      at: this.now().toISOString(),
      probationUntil: null,
    };
    await this.writeState(next, 'rollback-state-written');
    crashPoint('rollback-state-placed');
    await rm(this.p('probation.json'), { force: true });
    await syncDir(this.o.dir);
    return next;
  }

  /** The first of current, previous, fallback that verifies; repairs the pointers to it. */
  private async pickValid(state: UpdateState): Promise<ActiveModel> {
    const current = await this.readPointer('current');
    if (current === null) return this.fallback();
    try {
      return await this.verifyTarget(current);
    } catch (err) {
      const why = (err as Error).message;
      this.o.log.error({ err: why }, 'current model fails verification; returning to the previous one');
      const previous = await this.readPointer('previous');
      const good = await this.readPointer('good');
      let active: ActiveModel | undefined;
      let target: string | null = null;
      for (const t of [previous, good]) {
        if (t === null || t === current) continue;
        try {
          active = await this.verifyTarget(t);
          target = t;
          break;
        } catch {
          /* try the next one */
        }
      }
      active ??= await this.fallback();
      await this.setPointer('current', target);
      await this.setPointer('previous', null);
      Object.assign(state, {
        state: `rolled back: model failed verification at start (${why})`,
        at: this.now().toISOString(),
        previous: null,
      });
      return active;
    }
  }

  /** Version folders that neither pointer nor the marker names. */
  private async unreferenced(): Promise<string[]> {
    const keep = new Set<string>();
    for (const name of ['current', 'previous', 'good'] as const) {
      const t = await this.readPointer(name);
      if (t && !path.isAbsolute(t)) keep.add(path.basename(t));
    }
    const marker = await this.readMarker();
    for (const t of [marker?.target, marker?.previous?.target, marker?.oldPrevious?.target])
      if (t && !path.isAbsolute(t)) keep.add(path.basename(t));
    return (await readdir(this.p('versions'))).filter((d) => !keep.has(d));
  }

  private async collectGarbage(): Promise<void> {
    for (const d of await this.unreferenced()) await rm(this.p('versions', d), { recursive: true, force: true });
  }

  // ---------- install ----------

  /** The model that `current` names now (verified by hashes only; cheap enough per install). */
  async active(): Promise<ActiveModel> {
    const current = await this.readPointer('current');
    if (current === null) return this.fallback();
    return this.verifyTarget(current);
  }

  /**
   * Installs a bundle: verify (signature, hashes, policy), extract to staging, verify
   * again from disk, load and self-test, move into versions/, write the probation marker,
   * swap `current`. Throws UpdateRejected (nothing changed) with the reason.
   * The caller activates the returned model and calls `rollback` if that fails.
   */
  async install(
    bundle: Buffer,
    policy: VerifyPolicy,
  ): Promise<{ installed: ActiveModel; previous: ActiveModel; manifest: BundleManifest }> {
    return this.serial(async () => {
      const verified = verifyBundleBytes(bundle, this.o.keys);
      // Bounded store: only what the pointers and the marker name stays (MAX_VERSION_FOLDERS).
      await this.collectGarbage();
      const before = await this.active();
      checkPolicy(verified.manifest, { ...policy, runningVersion: policy.runningVersion ?? before.version });
      const { manifest } = verified;

      const id = `${manifest.version}-${randomBytes(4).toString('hex')}`;
      await mkdir(this.p('staging'), { recursive: true });
      const staging = this.p('staging', id);
      try {
        await extractBundle(bundle, verified, staging);
        await writeFileAtomic(
          path.join(staging, BUNDLE_HEADER_FILE),
          encodeHeader(manifest, parseHeader(bundle).signatures),
        );
        await syncDir(staging);
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        if (err instanceof UpdateRejected) throw err;
        throw new UpdateRejected(`cannot write the model to ${this.o.dir}: ${(err as Error).message}`, undefined, {
          cause: err,
        });
      }
      crashPoint('staged');

      try {
        // What is on disk now is what gets run: check it, not the bytes in memory.
        await selfTestUnpacked(staging, this.o.runner, await this.verifyVersionDir(staging));
      } catch (err) {
        await rm(staging, { recursive: true, force: true });
        if (err instanceof UpdateRejected) throw err;
        throw new UpdateRejected(`model failed its self-test: ${(err as Error).message}`, undefined, { cause: err });
      }
      crashPoint('tested');

      const target = path.join('versions', id);
      await rename(staging, this.p(target));
      await syncDir(this.p('versions'));
      crashPoint('version-placed');

      const currentBefore = await this.readPointer('current');
      const previousBefore = await this.readPointer('previous');
      const previousVersion = previousBefore ? await this.versionOf(previousBefore) : null;
      const now = this.now();
      const marker: Marker = {
        version: manifest.version,
        target,
        previous: currentBefore ? { target: currentBefore, version: before.version } : null,
        oldPrevious: previousBefore && previousVersion ? { target: previousBefore, version: previousVersion } : null,
        swappedAt: now.toISOString(),
        until: new Date(now.getTime() + this.o.probationMinutes * 60_000).toISOString(),
      };
      await writeFileAtomic(this.p('probation.json'), JSON.stringify(marker, null, 2), {
        beforeRename: () => crashPoint('marker-written'),
        syncDir: true,
      });
      crashPoint('marker-placed');

      // previous → what runs now; a first install names the fallback by absolute path.
      await this.setPointer('previous', currentBefore ?? path.resolve(this.o.fallbackDir), 'previous-written');
      crashPoint('previous-placed');
      await this.setPointer('current', target, 'current-written');
      crashPoint('swapped');

      const s = await this.readState();
      await this.writeState(
        {
          ...s,
          running: manifest.version,
          previous: before.version,
          state: 'installed',
          offered: manifest.version,
          at: this.now().toISOString(),
          probationUntil: marker.until,
        },
        'state-written',
      );
      crashPoint('installed');
      await this.collectGarbage(); // what the replaced marker named is free now
      return {
        installed: { dir: this.modelDirOf(target), version: manifest.version, source: 'store' },
        previous: before,
        manifest,
      };
    });
  }

  private async versionOf(target: string): Promise<string | null> {
    try {
      if (path.isAbsolute(target)) return (await verifyModelDir(target)).version;
      const header = parseHeader(await readFile(path.join(this.resolve(target), BUNDLE_HEADER_FILE)));
      return header.manifest.version;
    } catch {
      return null;
    }
  }

  /** Marks the probation of the running model as passed (removes the marker). */
  async passProbation(version: string): Promise<boolean> {
    return this.serial(async () => {
      const marker = await this.readMarker();
      if (!marker || marker.version !== version) return false;
      crashPoint('probation-passed');
      await this.setPointer('good', marker.target);
      await unlink(this.p('probation.json'));
      await syncDir(this.o.dir);
      const s = await this.readState();
      await this.writeState({ ...s, probationUntil: null });
      await this.collectGarbage();
      return true;
    });
  }

  /** The probation marker's end time, if a swap is on probation. */
  async probationUntil(): Promise<Date | null> {
    const m = await this.readMarker();
    return m && m.until ? new Date(m.until) : null;
  }

  /**
   * Returns to the model before the last swap (while its marker is present); the caller
   * then activates the returned model. Null when there is nothing to roll back.
   */
  async rollback(reason: string): Promise<{ active: ActiveModel; state: UpdateState } | null> {
    return this.serial(async () => {
      const marker = await this.readMarker();
      if (!marker) return null;
      const state = await this.undoSwap(marker, `rolled back: ${reason}`);
      const active = await this.pickValid(state);
      await this.writeState({ ...state, running: active.version });
      await this.collectGarbage();
      return { active, state: { ...state, running: active.version } };
    });
  }
}

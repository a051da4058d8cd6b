import type { Command } from 'commander';
import { addBrokerOptions, brokerFromFlags } from './broker.js';

/**
 * `facegate enrol`: people of the kiosk's gallery, recognised without retraining. Works beside
 * a running daemon (same kiosk database; the daemon sees a change on its next frame).
 */
interface Common {
  config?: string;
}
interface AddOptions extends Common {
  group: string[];
  validFrom?: string;
  validUntil?: string;
  force?: boolean;
}

const collect = (v: string, all: string[]): string[] => [...all, v];

async function withGallery<T>(
  opts: Common,
  fn: (
    g: import('../gallery/open.js').OpenGallery,
    cfg: import('../config/schema.js').Config,
    db: import('../state/db.js').KioskDb,
  ) => Promise<T>,
  frames?: boolean,
): Promise<T> {
  const { loadConfig } = await import('../config/load.js');
  const cfg = loadConfig(opts.config ? { file: opts.config } : {});
  const { logger } = await import('../shared/logger.js');
  if (!process.env.FACEGATE_LOG_LEVEL && !process.env.LOG_LEVEL) logger.level = 'warn';
  const { openGallery } = await import('../gallery/open.js');
  let feed: import('../gallery/service.js').FrameFeed | undefined;
  let closeCamera: () => Promise<void> = () => Promise.resolve();
  if (frames) {
    // The kiosk's own camera, opened here (stop the daemon first: a camera serves one reader).
    const { createSource } = await import('../capture/camera.js');
    const source = createSource(cfg.camera);
    const listeners = new Set<(image: Buffer) => void>();
    await source.open({
      frame: (image) => listeners.forEach((l) => l(image)),
      error: (err) => process.stderr.write(`facegate: camera: ${err.message}\n`),
      end: () => undefined,
    });
    closeCamera = () => source.close();
    feed = (onImage) => {
      listeners.add(onImage);
      return () => listeners.delete(onImage);
    };
  }
  const { KioskDb, kioskDbPath } = await import('../state/db.js');
  const path = await import('node:path');
  const db = KioskDb.open(kioskDbPath(path.resolve(cfg.state.dir)));
  const g = await openGallery({
    db,
    config: cfg.gallery,
    stateDir: cfg.state.dir,
    threads: cfg.model.threads,
    detectorSize: cfg.model.detectorSize,
    ...(cfg.model.detectorCacheDir ? { detectorCacheDir: cfg.model.detectorCacheDir } : {}),
    ...(feed ? { frames: feed } : {}),
  });
  try {
    return await fn(g, cfg, db);
  } finally {
    await closeCamera();
    await g.close();
    db.close();
  }
}

function personLine(p: import('../gallery/service.js').PersonRecord): string {
  const validity = p.validFrom || p.validUntil ? `  valid ${p.validFrom ?? '…'} – ${p.validUntil ?? '…'}` : '';
  const groups = p.groups.length ? `  groups ${p.groups.join(',')}` : '';
  return `${p.name}  (${p.templates} templates, id ${p.id})${groups}${validity}`;
}

function printResult(r: import('../gallery/service.js').EnrolResult): void {
  process.stdout.write(`enrolled ${personLine(r.person)}: ${r.accepted} photo(s) accepted\n`);
  for (const x of r.rejected) process.stdout.write(`  photo ${x.index + 1} not used: ${x.message}\n`);
}

export function registerEnrol(program: Command): void {
  const enrol = program
    .command('enrol')
    .description(
      'people recognised at this kiosk without retraining: add, from-camera, list, show, remove, export, export-bundle, install-bundle, publish-bundle',
    );
  const cfgOpt = (c: Command): Command =>
    c.option('-c, --config <file>', 'config file merged over config/default.json (state.dir, gallery.*)');

  cfgOpt(
    enrol
      .command('add')
      .description('enrol NAME from photos (at least gallery.minPhotos good ones: one face, front-on, lit, sharp)')
      .argument('<name>', 'the name events will carry')
      .argument('<photos...>', 'photo files (JPEG, PNG)')
      .option('-g, --group <group>', 'a group the person belongs to (repeatable)', collect, [])
      .option('--valid-from <iso>', 'first moment the person is let in (ISO date-time)')
      .option('--valid-until <iso>', 'last moment the person is let in (ISO date-time)')
      .option('--force', 'enrol even when the face already matches someone enrolled'),
  ).action(async (name: string, photos: string[], opts: AddOptions) => {
    const { readFile } = await import('node:fs/promises');
    const { DataError } = await import('../shared/errors.js');
    const buffers = await Promise.all(
      photos.map((p) =>
        readFile(p).catch((err: Error) => {
          throw new DataError(`cannot read ${p}: ${err.message}`);
        }),
      ),
    );
    await withGallery(opts, async ({ gallery }) => {
      printResult(
        await gallery.enrolPhotos(name, buffers, {
          groups: opts.group,
          validFrom: opts.validFrom ?? null,
          validUntil: opts.validUntil ?? null,
          force: opts.force ?? false,
        }),
      );
    });
  });

  cfgOpt(
    enrol
      .command('from-camera')
      .description("enrol NAME from the kiosk's own camera (stop facegate run first, or use the admin page)")
      .argument('<name>')
      .option('--frames <n>', 'good frames to take (default gallery.cameraFrames)', (v) => Number(v))
      .option('--timeout <s>', 'give up after this many seconds (default gallery.cameraTimeoutMs)', (v) => Number(v))
      .option('-g, --group <group>', 'a group the person belongs to (repeatable)', collect, [])
      .option('--force', 'enrol even when the face already matches someone enrolled'),
  ).action(async (name: string, opts: AddOptions & { frames?: number; timeout?: number }) => {
    await withGallery(
      opts,
      async ({ gallery }) => {
        process.stdout.write(`look at the camera, ${name}…\n`);
        let lastHint = '';
        const r = await gallery.enrolFromCamera(
          name,
          {
            groups: opts.group,
            force: opts.force ?? false,
            ...(opts.frames ? { frames: opts.frames } : {}),
            ...(opts.timeout ? { timeoutMs: opts.timeout * 1000 } : {}),
          },
          (p) => {
            const line = p.hint ?? `${p.good}/${p.needed} good frames`;
            if (line !== lastHint) process.stdout.write(`  ${line}\n`);
            lastHint = line;
          },
        );
        printResult(r);
      },
      true,
    );
  });

  cfgOpt(enrol.command('list').description('everyone enrolled').option('--json', 'as JSON')).action(
    async (opts: Common & { json?: boolean }) => {
      await withGallery(opts, async ({ gallery }) => {
        const people = gallery.list();
        if (opts.json) process.stdout.write(`${JSON.stringify(people, null, 2)}\n`);
        else if (people.length === 0) process.stdout.write('nobody enrolled: facegate enrol add NAME PHOTOS…\n');
        else for (const p of people) process.stdout.write(`${personLine(p)}\n`);
        return Promise.resolve();
      });
    },
  );

  cfgOpt(enrol.command('show').description('one person (name or id)').argument('<person>')).action(
    async (who: string, opts: Common) => {
      await withGallery(opts, async ({ gallery }) => {
        const p = gallery.get(who);
        if (!p) {
          const { DataError } = await import('../shared/errors.js');
          throw new DataError(`nobody enrolled as ${who}: see facegate enrol list`);
        }
        process.stdout.write(`${JSON.stringify(p, null, 2)}\n`);
      });
    },
  );

  cfgOpt(
    enrol
      .command('remove')
      .description('erase a person: templates, kept crops, thumbnail (final)')
      .argument('<person>', 'name or id'),
  ).action(async (who: string, opts: Common) => {
    await withGallery(opts, ({ gallery }) => {
      const p = gallery.get(who);
      gallery.remove(who);
      process.stdout.write(
        `removed ${p?.name ?? who} (id ${p?.id ?? '?'}): templates, crops and thumbnail erased\n` +
          // The daemon announces it too (now, or at its next start); say now what the fleet needs.
          `other kiosks keep this person until a signed removal reaches them: facegate enrol export-bundle --remove ${p?.id ?? who} on the operator's workstation\n`,
      );
      return Promise.resolve();
    });
  });

  cfgOpt(
    enrol
      .command('export-bundle')
      .description(
        'sign a people bundle for the fleet: people of this gallery (all, or --person) and ids to erase everywhere (--remove)',
      )
      .requiredOption('-k, --key <file>', 'private update key (facegate keygen)')
      .requiredOption('-o, --out <file>', 'bundle file to write (0600)')
      .option('-p, --person <name>', 'a person to include (repeatable; default: everyone)', collect, [])
      .option('--remove <id>', 'id of a person to erase on every kiosk, final (repeatable)', collect, [])
      .option('--kiosk <id>', 'only these kiosks may install it (repeatable; default: every kiosk)', collect, [])
      .option(
        '--with-crops',
        'also carry the kept enrolment crops (face images) so kiosks running another descriptor compute their own templates',
      ),
  ).action(
    async (
      opts: Common & {
        key: string;
        out: string;
        person: string[];
        remove: string[];
        kiosk: string[];
        withCrops?: boolean;
      },
    ) => {
      const { loadPrivateKey } = await import('../update/keys.js');
      const { createPeopleBundle } = await import('../gallery/bundle.js');
      const key = await loadPrivateKey(opts.key);
      await withGallery(opts, async ({ gallery, store }) => {
        const { bytes, manifest } = createPeopleBundle({
          store,
          descriptor: gallery.descriptorId,
          names: opts.person,
          removed: opts.remove,
          kiosks: opts.kiosk,
          withCrops: opts.withCrops ?? false,
          key,
        });
        const { writeFile } = await import('node:fs/promises');
        await writeFile(opts.out, bytes, { mode: 0o600 });
        process.stdout.write(
          `wrote ${opts.out}: ${manifest.people.length} people${opts.withCrops ? ' with their face crops' : ''}, ${manifest.removed.length} removals, ${bytes.length} bytes, signed ${manifest.createdAt} by key ${key.id}\n`,
        );
        const { DEFAULT_MAX_PACKET_BYTES } = await import('../publish/mqtt.js');
        if (bytes.length > DEFAULT_MAX_PACKET_BYTES)
          process.stderr.write(
            `warning: ${bytes.length} bytes is more than kiosks read from MQTT by default (mqtt.maxPacketBytes ${DEFAULT_MAX_PACKET_BYTES}): export fewer people per bundle (--person), or install it by hand (enrol install-bundle)\n`,
          );
      });
    },
  );

  cfgOpt(
    enrol
      .command('install-bundle')
      .description(
        'install a signed people bundle into this kiosk (key in updates.publicKeys; newer than the last one)',
      )
      .argument('<file>', 'people bundle (facegate enrol export-bundle)'),
  ).action(async (file: string, opts: Common) => {
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(file);
    await withGallery(opts, async ({ gallery, store }, cfg, db) => {
      const { loadPublicKeys } = await import('../update/keys.js');
      const { installPeopleBundle } = await import('../gallery/bundle.js');
      const keys = await loadPublicKeys(cfg.updates.publicKeys);
      if (keys.length === 0) {
        const { DataError } = await import('../shared/errors.js');
        throw new DataError('no trusted keys: list the public update key(s) in updates.publicKeys');
      }
      const r = await installPeopleBundle(bytes, {
        store,
        db,
        keys,
        kioskId: cfg.mqtt.kioskId,
        descriptor: gallery.descriptorId,
        keepCrops: cfg.gallery.keepCrops,
        describeCrops: (crops) => gallery.describeCrops(crops),
      });
      process.stdout.write(
        `installed ${file}: ${r.put} people enrolled or updated${r.fromCrops ? ` (${r.fromCrops} with templates computed here from their face crops)` : ''}, ${r.removed} erased${r.skipped.length ? `, not brought back (removed before): ${r.skipped.join(', ')}` : ''}\n`,
      );
    });
  });

  addBrokerOptions(
    enrol
      .command('publish-bundle')
      .description(
        "send a signed people bundle to kiosks over MQTT (QoS 1) and wait for each kiosk's answer on <base>/<kiosk>/people",
      )
      .argument('<file>', 'people bundle (facegate enrol export-bundle)')
      .option('--kiosk <id>', 'target kiosk id (repeatable)', collect, [])
      .option('--fleet', 'every kiosk (<base>/fleet/update/people)')
      .option('--wait <seconds>', "wait this long for the kiosks' answers (0: do not wait)", (v) => Number(v), 60),
  ).action(
    async (
      file: string,
      opts: import('../publish/operator.js').OperatorBrokerFlags & { kiosk: string[]; fleet?: boolean; wait: number },
    ) => {
      const { readFile } = await import('node:fs/promises');
      const { publishPeopleBundle } = await import('../gallery/receiver.js');
      const { FacegateError } = await import('../shared/errors.js');
      if (!Number.isFinite(opts.wait) || opts.wait < 0)
        throw new FacegateError('--wait must be a number of seconds ≥ 0');
      const broker = await brokerFromFlags(opts);
      const { topics, verdicts } = await publishPeopleBundle({
        brokerUrl: broker.url,
        baseTopic: broker.baseTopic,
        kiosks: opts.kiosk,
        fleet: opts.fleet ?? false,
        bundle: await readFile(file),
        clientOptions: broker.clientOptions,
        waitMs: opts.wait * 1000,
        onVerdict: (kiosk, s) =>
          process.stdout.write(
            `${kiosk}: ${s.state}${s.state === 'installed' ? ` (${s.put} enrolled or updated, ${s.removed} erased${s.fromCrops ? `, ${s.fromCrops} from crops` : ''})` : ''}\n`,
          ),
      });
      process.stdout.write(`sent ${file} to ${topics.join(', ')}\n`);
      if (opts.wait === 0) return;
      const failed = [...verdicts.values()].filter((s) => s.state !== 'installed').length;
      const missing = opts.fleet ? 0 : opts.kiosk.filter((k) => !verdicts.has(k)).length;
      if (missing)
        process.stdout.write(
          `${missing} kiosk(s) did not answer within ${opts.wait} s (is updates.enabled on, and the kiosk online? A kiosk offline now never gets this bundle: send it again)\n`,
        );
      if (failed || missing) process.exitCode = 1;
    },
  );

  cfgOpt(
    enrol
      .command('export')
      .description('everything stored about a person, as JSON (templates, kept crops as base64, files)')
      .argument('<person>', 'name or id')
      .option('-o, --out <file>', 'write to this file (0600) instead of stdout'),
  ).action(async (who: string, opts: Common & { out?: string }) => {
    await withGallery(opts, async ({ gallery }) => {
      const text = `${JSON.stringify(gallery.exportPerson(who), null, 2)}\n`;
      if (opts.out) {
        const { writeFile } = await import('node:fs/promises');
        await writeFile(opts.out, text, { mode: 0o600 });
        process.stdout.write(`wrote ${opts.out}\n`);
      } else process.stdout.write(text);
    });
  });
}

/**
 * Remote model updates, operator side: `facegate keygen`, `facegate bundle create|sign|verify`,
 * `facegate publish-model`. See docs/updates.md.
 */
import type { Command } from 'commander';
import { FacegateError } from '../shared/errors.js';
import type { OperatorBrokerFlags } from '../publish/operator.js';
import { addBrokerOptions, brokerFromFlags } from './broker.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new FacegateError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

export function registerUpdate(program: Command): void {
  program
    .command('keygen')
    .description(
      'make an Ed25519 key pair for signing model bundles (private key mode 0600; give kiosks only the .pub file)',
    )
    .requiredOption(
      '--out <dir>',
      'folder for facegate-update.key and facegate-update.pub (created; an existing key is never overwritten)',
    )
    .action(async (opts: { out: string }) => {
      const { generateKeyPair } = await import('../update/keys.js');
      const k = await generateKeyPair(opts.out);
      process.stdout.write(
        `key id ${k.id}\nprivate key: ${k.privateKeyFile} (keep it off the kiosks; back it up offline)\npublic key:  ${k.publicKeyFile} (add to updates.publicKeys on every kiosk)\n`,
      );
    });

  const bundle = program
    .command('bundle')
    .description('pack, sign and check model bundles (one file: model directory + self-test + signature)');

  bundle
    .command('create')
    .description(
      "pack a model directory into a bundle; runs the model on reference images and records its answers for the kiosk's self-test",
    )
    .requiredOption('--model <dir>', 'model directory (manifest.json, model.onnx, model.int8.onnx, labels.json)')
    .requiredOption('--out <file>', 'bundle file to write')
    .option('--key <private>', 'sign with this private key (or sign later: facegate bundle sign)')
    .option(
      '--reference <image>',
      'reference face crop for the self-test (repeatable); synthetic patterns when none',
      collect,
      [],
    )
    .option('--force', 'mark the bundle forced: kiosks install it even when not newer (a signed downgrade); it expires')
    .option('--expires <time>', 'ISO 8601 time after which kiosks refuse the bundle (default for --force: 7 days)')
    .option('--kiosk <id>', 'only these kiosks may install it (repeatable); any kiosk by default', collect, [])
    .action(
      async (opts: {
        model: string;
        out: string;
        key?: string;
        reference: string[];
        force?: boolean;
        expires?: string;
        kiosk: string[];
      }) => {
        const { createBundle } = await import('../update/bundle.js');
        const { writeFileAtomic } = await import('../shared/fs.js');
        const { DeviceModelRunner } = await import('../update/selftest.js');
        const { loadPrivateKey } = await import('../update/keys.js');
        let expiresAt: Date | null | undefined;
        if (opts.expires !== undefined) {
          expiresAt = new Date(opts.expires);
          if (Number.isNaN(expiresAt.getTime()))
            throw new FacegateError(`--expires: "${opts.expires}" is not an ISO 8601 time`);
        }
        if (opts.reference.length === 0) {
          process.stderr.write(
            'note: no --reference images; the self-test uses synthetic patterns. Real enrolment face crops also check the names the model gives.\n',
          );
        }
        const key = opts.key ? await loadPrivateKey(opts.key) : undefined;
        const { bytes, manifest } = await createBundle({
          modelDir: opts.model,
          runner: new DeviceModelRunner(),
          references: opts.reference,
          forced: opts.force ?? false,
          ...(expiresAt !== undefined ? { expiresAt } : {}),
          kiosks: opts.kiosk.length ? opts.kiosk : null,
          ...(key ? { key } : {}),
        });
        await writeFileAtomic(opts.out, bytes);
        process.stdout.write(
          `${opts.out}: version ${manifest.version}, ${Object.keys(manifest.files).length} files, ${bytes.length} bytes, ` +
            `${manifest.forced ? `forced (expires ${manifest.expiresAt ?? '?'})` : 'not forced'}, ${key ? `signed by ${key.id}` : 'UNSIGNED (facegate bundle sign)'}\n`,
        );
      },
    );

  bundle
    .command('sign')
    .description('add a signature to a bundle (replaces an earlier one by the same key)')
    .argument('<bundle>', 'bundle file')
    .requiredOption('--key <private>', 'private key from facegate keygen')
    .option('--out <file>', 'write the signed bundle here instead of in place')
    .action(async (file: string, opts: { key: string; out?: string }) => {
      const { signBundleFile } = await import('../update/bundle.js');
      const { loadPrivateKey } = await import('../update/keys.js');
      const key = await loadPrivateKey(opts.key);
      await signBundleFile(file, key, opts.out ?? file);
      process.stdout.write(`${opts.out ?? file}: signed by ${key.id}\n`);
    });

  bundle
    .command('verify')
    .description(
      'check a bundle as a kiosk would: signature against the given public keys, every hash, and (by default) the self-test',
    )
    .argument('<bundle>', 'bundle file')
    .requiredOption('--key <public>', 'trusted public key file or PEM (repeatable)', collect, [])
    .option('--no-self-test', 'skip loading the model and running the self-test')
    .option('--kiosk <id>', 'check the bundle is allowed for this kiosk')
    .option('--running <version>', 'check the bundle would be accepted over this running version')
    .action(async (file: string, opts: { key: string[]; selfTest: boolean; kiosk?: string; running?: string }) => {
      const { readFile, mkdtemp, rm } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      const path = await import('node:path');
      const { verifyBundleBytes, checkPolicy, extractBundle } = await import('../update/bundle.js');
      const { loadPublicKeys } = await import('../update/keys.js');
      const { DeviceModelRunner, selfTestUnpacked } = await import('../update/selftest.js');
      const keys = await loadPublicKeys(opts.key);
      const bytes = await readFile(file);
      const v = verifyBundleBytes(bytes, keys);
      checkPolicy(v.manifest, { kioskId: opts.kiosk, runningVersion: opts.running ?? null, allowForced: true });
      const m = v.manifest;
      process.stdout.write(
        `${file}: version ${m.version}, created ${m.createdAt}, signed by ${v.keyId}, ${Object.keys(m.files).length} files verified\n` +
          `labels: ${m.labels.join(', ')}\n` +
          `forced: ${m.forced}${m.expiresAt ? `, expires ${m.expiresAt}` : ''}${m.kiosks ? `, kiosks ${m.kiosks.join(', ')}` : ''}\n`,
      );
      if (!opts.selfTest) return;
      const dir = await mkdtemp(path.join(tmpdir(), 'facegate-verify-'));
      try {
        const out = path.join(dir, 'b');
        await extractBundle(bytes, v, out);
        const cases = await selfTestUnpacked(out, new DeviceModelRunner());
        process.stdout.write(`self-test passed: ${cases} reference images\n`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

  addBrokerOptions(
    program
      .command('publish-model')
      .description(
        'offer a signed bundle to kiosks over MQTT (offer, then chunks at QoS 1) and wait for their verdicts',
      )
      .requiredOption('--bundle <file>', 'signed bundle file')
      .option('--kiosk <id>', 'target kiosk id (repeatable)', collect, [])
      .option('--fleet', 'offer to every kiosk (<base>/fleet/update/...)')
      .option('--chunk-size <bytes>', 'chunk size in bytes', positiveInt('--chunk-size'), 256 * 1024)
      .option('--url <https-url>', 'offer the bundle by HTTPS URL instead of sending chunks')
      .option('--wait <seconds>', "wait this long for the kiosks' verdicts (0: do not wait)", (v) => Number(v), 120),
  ).action(
    async (
      opts: OperatorBrokerFlags & {
        bundle: string;
        kiosk: string[];
        fleet?: boolean;
        chunkSize: number;
        url?: string;
        wait: number;
      },
    ) => {
      const { readFile } = await import('node:fs/promises');
      const { publishModel } = await import('../update/publisher.js');
      if (opts.fleet && opts.kiosk.length) throw new FacegateError('give either --kiosk or --fleet, not both');
      if (!Number.isFinite(opts.wait) || opts.wait < 0)
        throw new FacegateError('--wait must be a number of seconds ≥ 0');
      const broker = await brokerFromFlags(opts);
      const r = await publishModel({
        brokerUrl: broker.url,
        baseTopic: broker.baseTopic,
        kiosks: opts.kiosk,
        fleet: opts.fleet ?? false,
        bundle: await readFile(opts.bundle),
        chunkSize: opts.chunkSize,
        url: opts.url ?? null,
        waitMs: opts.wait * 1000,
        clientOptions: broker.clientOptions,
        onVerdict: (kiosk, s) => process.stdout.write(`${kiosk}: ${s.state ?? '?'} (running ${s.version})\n`),
        onResend: (kiosk, n) => process.stdout.write(`${kiosk}: asked for ${n} chunks again; resent\n`),
      });
      process.stdout.write(
        `offered ${r.offer.version} (${r.offer.size} bytes${r.offer.url ? `, by URL ${r.offer.url}` : `, ${r.chunks} chunks`}) to ${opts.fleet ? 'the fleet' : opts.kiosk.join(', ')}\n`,
      );
      if (opts.wait === 0) return;
      const failed = [...r.verdicts.values()].filter((s) => s.state !== 'installed').length;
      const missing = opts.fleet ? 0 : opts.kiosk.filter((k) => !r.verdicts.has(k)).length;
      if (missing)
        process.stdout.write(
          `${missing} kiosk(s) did not answer within ${opts.wait} s (offline kiosks get nothing: offer again when they are back)\n`,
        );
      if (failed || missing) process.exitCode = 1;
    },
  );
}

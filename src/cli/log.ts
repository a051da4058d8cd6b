import type { Command } from 'commander';

/**
 * `facegate log`: the access log of this kiosk, read-only from the kiosk database (works
 * while the daemon runs: the database is in WAL mode, readers never block the writer).
 * `facegate door unlock-command`: a signed, time-limited, single-use remote unlock command
 * for door.remoteUnlock, printed as JSON for `mosquitto_pub` (or any MQTT client).
 */
interface LogOptions {
  config?: string;
  since?: string;
  person?: string;
  denied: boolean;
  last?: string;
  json: boolean;
  csv: boolean;
}

interface UnlockOptions {
  config?: string;
  key: string;
  by: string;
  kiosk?: string;
  door?: string;
  ttl: string;
}

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an ISO date or date-time, or an age such as 30m, 24h, 7d. */
export function parseSince(s: string, now = Date.now()): string {
  const age = /^(\d+)([mhd])$/.exec(s);
  if (age) return new Date(now - Number(age[1]) * (UNITS[age[2] ?? 'd'] ?? 0)).toISOString();
  const t = Date.parse(s);
  if (/^\d{4}-\d{2}-\d{2}/.test(s) && !Number.isNaN(t)) return new Date(t).toISOString();
  throw new Error(`--since "${s}": give an age (30m, 24h, 7d) or an ISO date (2026-12-01, 2026-12-01T08:00Z)`);
}

export function registerLog(program: Command): void {
  program
    .command('log')
    .description('the access log (every door decision) from the kiosk database; read-only, also while the kiosk runs')
    .option('-c, --config <file>', 'config file merged over config/default.json (state.dir)')
    .option('--since <when>', 'entries at or after: an age (30m, 24h, 7d) or an ISO date / date-time')
    .option('--person <name>', 'entries of one person (name or id)')
    .option('--denied', 'denied decisions only', false)
    .option('--last <n>', 'only the newest N entries')
    .option('--json', 'one JSON array', false)
    .option('--csv', 'CSV with a header row (RFC 4180)', false)
    .action(async (opts: LogOptions) => {
      const { FacegateError } = await import('../shared/errors.js');
      if (opts.json && opts.csv) throw new FacegateError('give --json or --csv, not both');
      let since: string | undefined;
      try {
        since = opts.since === undefined ? undefined : parseSince(opts.since);
      } catch (err) {
        throw new FacegateError((err as Error).message);
      }
      const last = opts.last === undefined ? undefined : Number(opts.last);
      if (last !== undefined && (!Number.isInteger(last) || last <= 0))
        throw new FacegateError(`--last "${opts.last}": give a whole number above 0`);
      const { loadConfig } = await import('../config/load.js');
      const cfg = loadConfig(opts.config ? { file: opts.config } : {});
      const { KioskDb, kioskDbPath } = await import('../state/db.js');
      const { AccessLog, toCsv, ACCESS_LOG_PART } = await import('../access/log.js');
      const db = KioskDb.open(kioskDbPath(cfg.state.dir), { readonly: true });
      try {
        if (db.version(ACCESS_LOG_PART) === 0)
          throw new FacegateError(
            `no access log in ${db.file} yet: it is created when the kiosk runs with access.enabled: true`,
          );
        let entries = new AccessLog(db).query({
          ...(since ? { since } : {}),
          ...(opts.person ? { person: opts.person } : {}),
          deniedOnly: opts.denied,
          ...(last ? { last } : {}),
        });
        if (last) entries = entries.reverse(); // oldest first, like the full listing
        if (opts.json) process.stdout.write(`${JSON.stringify(entries)}\n`);
        else if (opts.csv) process.stdout.write(toCsv(entries));
        else {
          for (const e of entries) {
            const who = e.personName ?? (e.requestedBy ? `(remote: ${e.requestedBy})` : '-');
            const what = e.result === 'granted' ? `granted${e.opened ? ', opened' : ''}` : `denied: ${e.reason ?? ''}`;
            process.stdout.write(`${e.seq}\t${e.time}\t${e.door}\t${who}\t${what}\t${e.source}\t${e.detail}\n`);
          }
          if (entries.length === 0) process.stderr.write('facegate: no access-log entries match\n');
        }
      } finally {
        db.db.close();
      }
    });

  const door = program.command('door').description('the door this kiosk opens');
  door
    .command('unlock-command')
    .description(
      'print a signed, time-limited, single-use remote unlock command; publish it to <baseTopic>/<kioskId>/door/unlock',
    )
    .requiredOption(
      '--key <file>',
      'operator private key (facegate keygen); its public key is in door.remoteUnlock.publicKeys',
    )
    .requiredOption('--by <who>', 'who asks (logged by the kiosk with the opening)')
    .option('-c, --config <file>', 'config file merged over config/default.json (mqtt.kioskId, access.door)')
    .option('--kiosk <id>', 'kiosk id (default: mqtt.kioskId of the config)')
    .option('--door <id>', 'door id (default: access.door of the config)')
    .option('--ttl <seconds>', 'how long the command stays valid (at most door.remoteUnlock.maxTtlSeconds)', '60')
    .action(async (opts: UnlockOptions) => {
      const { FacegateError } = await import('../shared/errors.js');
      const ttl = Number(opts.ttl);
      if (!Number.isInteger(ttl) || ttl <= 0 || ttl > 3600)
        throw new FacegateError(`--ttl "${opts.ttl}": give whole seconds from 1 to 3600`);
      const { loadConfig } = await import('../config/load.js');
      const cfg = loadConfig(opts.config ? { file: opts.config } : {});
      const { loadPrivateKey } = await import('../update/keys.js');
      const { signUnlock } = await import('../door/remote.js');
      const kiosk = opts.kiosk ?? cfg.mqtt.kioskId;
      const cmd = signUnlock(await loadPrivateKey(opts.key), {
        kiosk,
        door: opts.door ?? cfg.access.door,
        by: opts.by,
        ttlSeconds: ttl,
      });
      process.stdout.write(`${JSON.stringify(cmd)}\n`);
      process.stderr.write(
        `facegate: publish it (QoS 1, not retained) to ${cfg.mqtt.baseTopic}/${kiosk}/door/unlock within ${ttl} s; it opens once\n`,
      );
    });
}

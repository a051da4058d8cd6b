/**
 * Door access as a part of the daemon: watches the bus, decides every multi-frame decision
 * against the rules (decideAccess), writes the access log, opens the door through the one
 * owner of the outputs (src/door/door.ts), and publishes `access` messages and the door
 * state. Nothing it receives from the broker opens the door except a signed, time-limited,
 * single-use remote unlock command, and only when door.remoteUnlock is enabled.
 *
 * `DoorService` is what the web app reads and edits (state, recent decisions, rules).
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { moduleLogger } from '../shared/logger.js';
import type { Decision } from '../shared/messages.js';
import type { DaemonBus } from '../publish/bus.js';
import type { MqttPort } from '../publish/mqtt.js';
import type { AccessPayload, DoorStatePayload } from '../publish/topics.js';
import { DOOR_UNLOCK_TOPIC } from '../publish/topics.js';
import type { KioskDb } from '../state/db.js';
import { loadPublicKeys, type PublicKey } from '../update/keys.js';
import type { DoorConfig } from '../door/config.js';
import { DoorOutputs } from '../door/door.js';
import { checkUnlock } from '../door/remote.js';
import type { AccessConfig } from './config.js';
import { AccessLog, type AccessEntry, type AccessEntryInput, type LogQuery } from './log.js';
import { accessRuleSchema, decideAccess, type AccessPolicy, type AccessRule, type PersonDirectory } from './rules.js';

/** What the web app gets (issue 12 owns the routes; this session owns the data). */
export interface DoorService {
  /** The door now: lock, contact, alarm, enabled outputs. */
  state(): DoorStatePayload & { readonly outputs: readonly string[]; readonly openings: number };
  /** The latest access-log entries, newest first. */
  recent(n?: number): AccessEntry[];
  query(q: LogQuery): AccessEntry[];
  /** The rules in force: from the admin page when saved there, else from access.rules. */
  rules(): { rules: AccessRule[]; source: 'config' | 'admin'; updatedAt: string | null; updatedBy: string | null };
  /** Validates and saves rules (they replace access.rules until reset); throws a ZodError with paths on bad input. */
  setRules(rules: unknown, by: string | null): AccessRule[];
  /** Drops admin-saved rules: access.rules applies again. */
  resetRules(): void;
}

export interface DoorAccessDeps {
  readonly access: AccessConfig;
  readonly door: DoorConfig;
  readonly kiosk: string;
  readonly db: KioskDb;
  readonly mqtt: MqttPort | undefined;
  readonly bus: Pick<DaemonBus, 'on'>;
  /** The gallery once it exists; without one a model's class names are persons with no groups. */
  readonly directory?: () => PersonDirectory | undefined;
}

const rulesSchema = z.array(accessRuleSchema);

export class DoorAccess implements DoorService {
  private readonly log: Logger = moduleLogger('access');
  private readonly accessLog: AccessLog;
  private outputs: DoorOutputs | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  /** Faces per recent frame id ('frame' events come before the decisions of that frame). */
  private readonly faces = new Map<number, number>();
  private policy: AccessPolicy;
  private rulesSource: 'config' | 'admin' = 'config';
  private rulesMeta: { updatedAt: string | null; updatedBy: string | null } = { updatedAt: null, updatedBy: null };
  private keys: PublicKey[] = [];
  private pumping = false;
  private stopped = false;
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: DoorAccessDeps) {
    this.accessLog = new AccessLog(d.db);
    this.policy = {
      timeZone: d.access.timeZone,
      holidays: d.access.holidays,
      rules: d.access.rules,
      bar: d.access.open,
    };
  }

  async start(): Promise<void> {
    const d = this.d;
    this.accessLog.migrate();
    const saved = this.accessLog.savedRules();
    if (saved) {
      const parsed = rulesSchema.safeParse(saved.rules);
      if (parsed.success) {
        this.policy = { ...this.policy, rules: parsed.data };
        this.rulesSource = 'admin';
        this.rulesMeta = { updatedAt: saved.updatedAt, updatedBy: saved.updatedBy };
      } else this.log.error('rules saved from the admin page are invalid; using access.rules');
    }
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), 6 * 3600_000);
    this.pruneTimer.unref();
    if (d.door.remoteUnlock.enabled) this.keys = await loadPublicKeys(d.door.remoteUnlock.publicKeys);

    const outputs = new DoorOutputs(d.door, d.mqtt, {
      door: d.access.door,
      kiosk: d.kiosk,
      onState: (s) => this.publishState(s),
      onAlarm: (alarm) => {
        this.record(
          {
            personId: null,
            personName: null,
            result: 'denied',
            reason: alarm,
            detail: alarm === 'door forced' ? 'the door opened while locked' : 'the door stayed open too long',
            source: 'contact',
            score: null,
            margin: null,
            modelVersion: null,
            eventId: null,
            requestedBy: null,
          },
          false,
        );
      },
    });
    await outputs.start();
    this.outputs = outputs;

    this.unsubscribe.push(
      d.bus.on('frame', (f) => {
        this.faces.set(f.frame.id, f.matches.length);
        if (this.faces.size > 64) this.faces.delete(this.faces.keys().next().value as number);
      }),
      d.bus.on('decision', (e) => this.onDecision(e.decision, e.modelVersion, e.event.id)),
    );
    if (d.mqtt) {
      const mqtt = d.mqtt;
      mqtt.onConnect(() => {
        this.pump();
        this.publishState(outputs.state());
      });
      if (d.door.remoteUnlock.enabled)
        await mqtt.subscribe(DOOR_UNLOCK_TOPIC, (_t, payload) => this.onUnlockCommand(payload));
      if (mqtt.connected) this.publishState(outputs.state());
      this.pump();
    }
    this.log.info(
      {
        door: d.access.door,
        rules: this.policy.rules.length,
        rulesFrom: this.rulesSource,
        timeZone: d.access.timeZone,
        remoteUnlock: d.door.remoteUnlock.enabled,
      },
      'door access running',
    );
  }

  private onDecision(decision: Decision, modelVersion: string, eventId: string): void {
    const fin = (x: number | undefined): number | undefined => (x === undefined || Number.isNaN(x) ? undefined : x);
    const name = decision.kind === 'recognized' ? decision.name : null;
    const person = name !== null ? this.d.directory?.()?.lookup(name) : undefined;
    const verdict = decideAccess(
      {
        name,
        score: decision.score,
        margin: fin(decision.margin),
        faceSize: fin(decision.faceSize),
        faces: this.faces.get(decision.frameId) ?? 1,
        time: decision.timestamp,
        door: this.d.access.door,
        person,
        alarm: this.outputs?.alarm ?? null,
      },
      this.policy,
    );
    this.record(
      {
        time: new Date(decision.timestamp).toISOString(),
        personId: person?.id ?? name,
        personName: person?.name ?? name,
        result: verdict.result,
        reason: verdict.reason,
        detail: verdict.detail,
        source: 'face',
        score: Math.round(decision.score * 10000) / 10000,
        margin: fin(decision.margin) === undefined ? null : Math.round((decision.margin as number) * 10000) / 10000,
        modelVersion,
        eventId,
        requestedBy: null,
      },
      verdict.result === 'granted',
    );
  }

  private onUnlockCommand(payload: Buffer): void {
    const d = this.d;
    const check = checkUnlock(payload.toString('utf8'), {
      kiosk: d.kiosk,
      door: d.access.door,
      keys: this.keys,
      maxTtlSeconds: d.door.remoteUnlock.maxTtlSeconds,
    });
    let why = check.ok ? null : check.why;
    if (check.ok && !this.accessLog.useNonce(check.command.nonce, check.command.expiresAt))
      why = 'already used (a replayed command)';
    const by = check.ok ? check.command.by : check.by;
    const base = {
      personId: null,
      personName: null,
      source: 'remote' as const,
      score: null,
      margin: null,
      modelVersion: null,
      eventId: null,
      requestedBy: by,
    };
    if (why !== null) {
      this.log.warn({ why, by }, 'remote unlock refused');
      this.record(
        { ...base, result: 'denied', reason: 'not allowed now', detail: `remote unlock refused: ${why}` },
        false,
      );
      return;
    }
    this.record(
      {
        ...base,
        result: 'granted',
        reason: null,
        detail: `remote unlock by ${by} (key ${check.ok ? check.command.keyId : ''})`,
      },
      true,
    );
  }

  /** Logs first (nothing opens without its log entry), then opens, then publishes. */
  private record(e: Omit<AccessEntryInput, 'time' | 'door'> & { time?: string }, open: boolean): void {
    const entry = this.accessLog.append({ time: new Date().toISOString(), door: this.d.access.door, ...e });
    let opened = false;
    if (open && this.outputs) {
      opened = this.outputs.open({ seq: entry.seq, person: entry.personName });
      if (opened) this.accessLog.markOpened(entry.seq);
      else this.log.info({ seq: entry.seq }, 'granted while the door is already released: not opened again');
    }
    this.log.info(
      { seq: entry.seq, result: e.result, reason: e.reason, person: e.personName, source: e.source, opened },
      'access',
    );
    this.pump();
  }

  private payload(e: AccessEntry): AccessPayload {
    return {
      seq: e.seq,
      time: e.time,
      kiosk: this.d.kiosk,
      door: e.door,
      result: e.result,
      reason: e.reason,
      detail: e.detail,
      source: e.source,
      personId: e.personId,
      personName: e.personName,
      score: e.score,
      margin: e.margin,
      modelVersion: e.modelVersion,
      eventId: e.eventId,
      requestedBy: e.requestedBy,
      opened: e.opened,
    };
  }

  /** Sends unsent entries in order, one at a time (QoS 1); marks each once acknowledged. */
  private pump(): void {
    const mqtt = this.d.mqtt;
    if (this.pumping || this.stopped || !mqtt) return;
    this.pumping = true;
    void (async () => {
      try {
        while (!this.stopped && mqtt.connected) {
          const batch = this.accessLog.unsent(50);
          if (batch.length === 0) break;
          for (const e of batch) {
            await mqtt.publish('access', this.payload(e));
            this.accessLog.markSent(e.seq);
          }
        }
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'access message not acknowledged; resent on reconnect');
      } finally {
        this.pumping = false;
      }
    })();
  }

  private publishState(s: DoorStatePayload): void {
    const mqtt = this.d.mqtt;
    if (!mqtt?.connected || this.stopped) return;
    mqtt.publish('door', s).catch((err: Error) => this.log.warn({ err: err.message }, 'door state not published'));
  }

  private prune(): void {
    try {
      const n = this.accessLog.prune(this.d.access.log.retentionDays);
      if (n) this.log.info({ deleted: n, days: this.d.access.log.retentionDays }, 'access log pruned');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'access log prune failed');
    }
  }

  // DoorService
  state(): DoorStatePayload & { outputs: readonly string[]; openings: number } {
    const o = this.outputs;
    const s: DoorStatePayload = o?.state() ?? { door: this.d.access.door, lock: 'locked', contact: null, alarm: null };
    return { ...s, outputs: o?.outputs ?? [], openings: o?.openings ?? 0 };
  }
  recent(n = 20): AccessEntry[] {
    return this.accessLog.query({ last: n });
  }
  query(q: LogQuery): AccessEntry[] {
    return this.accessLog.query(q);
  }
  rules(): { rules: AccessRule[]; source: 'config' | 'admin'; updatedAt: string | null; updatedBy: string | null } {
    return { rules: [...this.policy.rules], source: this.rulesSource, ...this.rulesMeta };
  }
  setRules(rules: unknown, by: string | null): AccessRule[] {
    const parsed = rulesSchema.parse(rules);
    this.accessLog.saveRules(parsed, by);
    this.policy = { ...this.policy, rules: parsed };
    this.rulesSource = 'admin';
    this.rulesMeta = { updatedAt: new Date().toISOString(), updatedBy: by };
    this.log.info({ rules: parsed.length, by }, 'access rules changed from the admin page');
    return parsed;
  }
  resetRules(): void {
    this.accessLog.clearSavedRules();
    this.policy = { ...this.policy, rules: this.d.access.rules };
    this.rulesSource = 'config';
    this.rulesMeta = { updatedAt: null, updatedBy: null };
  }

  /** The pid of the process holding the relay on (tests). */
  get relayHolderPid(): number | undefined {
    return this.outputs?.relayHolderPid;
  }

  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    clearInterval(this.pruneTimer);
    // The relay goes off first; the access messages still unsent stay in the log for the next start.
    await this.outputs?.stop();
    const deadline = Date.now() + 1000;
    while (this.pumping && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.stopped = true;
  }
}

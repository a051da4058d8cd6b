/**
 * The operator side of a delivery: `facegate publish-model`. Publishes the offer, then
 * the chunks (QoS 1 each, so the broker acknowledged every one), to one topic per kiosk
 * or once to the fleet topic, and optionally waits for each kiosk's verdict on its
 * retained `<base>/<kiosk>/model` topic. While it waits, it resends the chunks a kiosk
 * lists as missing there (to that kiosk's own chunk topic).
 */
import type { IClientOptions } from 'mqtt';
import { FacegateError } from '../shared/errors.js';
import { connectOperator } from '../publish/operator.js';
import { UPDATE_TOPICS, FLEET_LEVEL, fleetTopic, kioskTopic, type ModelStatePayload } from '../publish/topics.js';
import { makeOffer, type Offer } from './transfer.js';

export interface PublishOptions {
  readonly brokerUrl: string;
  readonly baseTopic: string;
  /** Kiosk ids; empty with `fleet` true. */
  readonly kiosks: readonly string[];
  readonly fleet: boolean;
  readonly bundle: Buffer;
  readonly chunkSize?: number;
  /** Offer the bundle by HTTPS URL instead of chunks. */
  readonly url?: string | null;
  readonly clientOptions?: IClientOptions;
  /** Wait this long for the kiosks' verdicts; 0: do not wait. */
  readonly waitMs?: number;
  /** Called once per verdict as it arrives. */
  readonly onVerdict?: (kiosk: string, state: ModelStatePayload) => void;
  /** Called after chunks a kiosk asked for again were resent (while waiting for verdicts). */
  readonly onResend?: (kiosk: string, chunks: number) => void;
}

export interface PublishResult {
  readonly offer: Offer;
  readonly chunks: number;
  /** Per kiosk that answered within the wait: its model state. */
  readonly verdicts: ReadonlyMap<string, ModelStatePayload>;
}

export async function publishModel(o: PublishOptions): Promise<PublishResult> {
  if (!o.fleet && o.kiosks.length === 0) throw new FacegateError('give --kiosk ID (one or more) or --fleet');
  if (o.kiosks.includes(FLEET_LEVEL))
    throw new FacegateError(`"${FLEET_LEVEL}" is the fleet topic level, not a kiosk id`);
  for (const k of o.kiosks)
    if (/[/+#]/.test(k) || k === '') throw new FacegateError(`kiosk id "${k}" must be one topic level without + or #`);
  const { offer, chunks } = makeOffer(o.bundle, { chunkSize: o.chunkSize, url: o.url ?? null });
  const client = await connectOperator(o.brokerUrl, o.clientOptions);
  const verdicts = new Map<string, ModelStatePayload>();
  // Resends the kiosks asked for (one at a time per kiosk; a kiosk asks again if it still misses some).
  const resending = new Map<string, Promise<void>>();
  const resend = (kiosk: string, missing: readonly number[]): void => {
    if (resending.has(kiosk)) return;
    const topic = kioskTopic(o.baseTopic, kiosk, UPDATE_TOPICS.chunk);
    const p = (async () => {
      // The list comes from the broker: only indexes of this offer's chunks, at most once each.
      const wanted = new Set(missing.slice(0, chunks.length));
      let sent = 0;
      for (const i of wanted) {
        const c = chunks[i];
        if (!c || !client.connected) continue;
        await client.publishAsync(topic, c, { qos: 1 });
        sent++;
      }
      if (sent > 0) o.onResend?.(kiosk, sent);
    })()
      .catch(() => undefined)
      .finally(() => resending.delete(kiosk));
    resending.set(kiosk, p);
  };
  try {
    const waitMs = o.waitMs ?? 0;
    let allIn: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      allIn = resolve;
    });
    if (waitMs > 0) {
      client.on('message', (topic, payload, packet) => {
        if (packet.retain) return; // an earlier state, not the answer to this offer
        let s: ModelStatePayload;
        try {
          s = JSON.parse(payload.toString('utf8')) as ModelStatePayload;
        } catch {
          return;
        }
        const kiosk = topic.slice(o.baseTopic.length + 1, -(UPDATE_TOPICS.model.length + 1));
        if (!o.fleet && !o.kiosks.includes(kiosk)) return;
        const t = s.transfer;
        if (t && t.transferId === offer.transferId && t.missing && t.missing.length > 0)
          return resend(kiosk, t.missing);
        if (s.offered !== offer.version || s.transfer !== null || s.state === null) return;
        verdicts.set(kiosk, s);
        o.onVerdict?.(kiosk, s);
        if (!o.fleet && o.kiosks.every((k) => verdicts.has(k))) allIn();
      });
      const subs = o.fleet
        ? [`${o.baseTopic}/+/${UPDATE_TOPICS.model}`]
        : o.kiosks.map((k) => kioskTopic(o.baseTopic, k, UPDATE_TOPICS.model));
      await client.subscribeAsync(subs, { qos: 1 });
    }
    const prefixes = o.fleet
      ? [(rel: string): string => fleetTopic(o.baseTopic, rel)]
      : o.kiosks.map(
          (k) =>
            (rel: string): string =>
              kioskTopic(o.baseTopic, k, rel),
        );
    for (const topic of prefixes) {
      await client.publishAsync(topic(UPDATE_TOPICS.offer), JSON.stringify(offer), { qos: 1 });
      for (const c of chunks) await client.publishAsync(topic(UPDATE_TOPICS.chunk), c, { qos: 1 });
    }
    if (waitMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        done,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, waitMs);
        }),
      ]);
      if (timer) clearTimeout(timer);
    }
  } finally {
    await Promise.all(resending.values());
    await client.endAsync();
  }
  return { offer, chunks: chunks.length, verdicts };
}

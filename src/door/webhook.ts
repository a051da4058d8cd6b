/**
 * The HTTP webhook door output: a JSON POST signed with a shared secret.
 *
 *   X-Facegate-Timestamp: <unix seconds>
 *   X-Facegate-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *
 * The receiver recomputes the HMAC over the raw body, compares in constant time, and
 * refuses a timestamp more than a few minutes away from its clock and an `id` it has
 * seen before (every body carries a fresh UUID): a recorded request replayed later or
 * twice opens nothing. `verifyWebhook` is that check, for receivers written in Node.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from '../shared/errors.js';
import { moduleLogger } from '../shared/logger.js';

export const SIGNATURE_HEADER = 'x-facegate-signature';
export const TIMESTAMP_HEADER = 'x-facegate-timestamp';

/** `sha256=<hex>` over `<timestamp>.<body>`. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** Checks a received webhook: signature over the raw body and a timestamp within `toleranceS` of `nowMs`. */
export function verifyWebhook(
  secret: string,
  headers: { readonly signature: string | undefined; readonly timestamp: string | undefined },
  body: string,
  nowMs = Date.now(),
  toleranceS = 300,
): { ok: true } | { ok: false; why: string } {
  if (!headers.signature || !headers.timestamp) return { ok: false, why: 'missing signature or timestamp header' };
  if (!/^\d+$/.test(headers.timestamp)) return { ok: false, why: 'bad timestamp' };
  const ts = Number(headers.timestamp);
  if (Math.abs(nowMs / 1000 - ts) > toleranceS) return { ok: false, why: 'timestamp too old or in the future' };
  const want = Buffer.from(signWebhook(secret, ts, body));
  const got = Buffer.from(headers.signature);
  if (want.length !== got.length || !timingSafeEqual(want, got)) return { ok: false, why: 'bad signature' };
  return { ok: true };
}

/** What the webhook body says (JSON). */
export interface WebhookBody {
  /** Fresh UUID per request: receivers drop ids they have seen (replay). */
  readonly id: string;
  readonly action: 'open';
  readonly door: string;
  readonly kiosk: string;
  readonly person: string | null;
  /** Access-log sequence number of the grant. */
  readonly seq: number;
  readonly pulseMs: number;
  readonly time: string;
}

export interface WebhookConfig {
  readonly url: string;
  readonly secret: string;
  readonly secretFile: string;
  readonly timeoutMs: number;
}

export function resolveSecret(cfg: WebhookConfig): string {
  if (!cfg.secretFile) return cfg.secret;
  try {
    return readFileSync(cfg.secretFile, 'utf8').split(/\r?\n/)[0] ?? '';
  } catch (err) {
    throw new ConfigError(`door.webhook.secretFile: cannot read ${cfg.secretFile}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export class WebhookOutput {
  private readonly log: Logger = moduleLogger('webhook');
  private secret = '';

  constructor(private readonly cfg: WebhookConfig) {}

  start(): Promise<void> {
    this.secret = resolveSecret(this.cfg);
    if (!this.secret) throw new ConfigError('door.webhook: the shared secret is empty');
    new URL(this.cfg.url); // throws on a malformed URL at start, not at the first opening
    return Promise.resolve();
  }

  /** POSTs the body; resolves with the HTTP status, or rejects (logged by the caller). */
  async send(body: WebhookBody): Promise<number> {
    const text = JSON.stringify(body);
    const ts = Math.floor(Date.now() / 1000);
    const res = await fetch(this.cfg.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [TIMESTAMP_HEADER]: String(ts),
        [SIGNATURE_HEADER]: signWebhook(this.secret, ts, text),
      },
      body: text,
      signal: AbortSignal.timeout(this.cfg.timeoutMs),
    });
    await res.arrayBuffer();
    if (!res.ok) this.log.warn({ status: res.status }, 'webhook answered with an error status');
    return res.status;
  }
}

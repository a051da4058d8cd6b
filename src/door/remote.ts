/**
 * Remote unlock commands: signed by an operator's Ed25519 key (the same keys and key files
 * as model bundles, `facegate keygen`), for one kiosk and one door, valid for a short time,
 * usable once. The kiosk accepts one only when door.remoteUnlock is enabled, the key is one
 * of door.remoteUnlock.publicKeys, the signature covers exactly these fields, the command is
 * not expired and not valid for longer than maxTtlSeconds, and its nonce was never used
 * before (nonces are kept in the kiosk database until the command expires).
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../update/canonical.js';
import { signBytes, verifyBytes, type PublicKey } from '../update/keys.js';

export const UNLOCK_CONTEXT = 'facegate-unlock-v1';

export const unlockCommandSchema = z
  .object({
    v: z.literal(1),
    kiosk: z.string().min(1),
    door: z.string().min(1),
    /** Who asked (operator, Home Assistant user): logged. */
    by: z.string().min(1).max(200),
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
    issuedAt: z.string().datetime({ offset: true }),
    expiresAt: z.string().datetime({ offset: true }),
    keyId: z.string().regex(/^[0-9a-f]{16}$/),
    signature: z.string().min(1),
  })
  .strict();
export type UnlockCommand = z.infer<typeof unlockCommandSchema>;

/** The bytes the signature covers: every field but the signature, canonical JSON, under a context string. */
export function unlockSignedBytes(c: Omit<UnlockCommand, 'signature'>): Buffer {
  const { v, kiosk, door, by, nonce, issuedAt, expiresAt, keyId } = c;
  return Buffer.from(`${UNLOCK_CONTEXT}\n${canonicalJson({ v, kiosk, door, by, nonce, issuedAt, expiresAt, keyId })}`);
}

export function signUnlock(
  key: { readonly id: string; readonly key: KeyObject },
  o: { kiosk: string; door: string; by: string; ttlSeconds: number; now?: number },
): UnlockCommand {
  const now = o.now ?? Date.now();
  const body = {
    v: 1 as const,
    kiosk: o.kiosk,
    door: o.door,
    by: o.by,
    nonce: randomBytes(16).toString('hex'),
    issuedAt: new Date(now).toISOString(),
    expiresAt: new Date(now + o.ttlSeconds * 1000).toISOString(),
    keyId: key.id,
  };
  return { ...body, signature: signBytes(key.key, unlockSignedBytes(body)).toString('base64') };
}

export type UnlockCheck = { ok: true; command: UnlockCommand } | { ok: false; why: string; by: string | null };

/**
 * Everything but the nonce (which needs the database): shape, kiosk, door, key, signature,
 * time window. Clock skew of up to 30 s on issuedAt is tolerated.
 */
export function checkUnlock(
  raw: string,
  o: { kiosk: string; door: string; keys: readonly PublicKey[]; maxTtlSeconds: number; now?: number },
): UnlockCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { ok: false, why: 'not JSON (an unsigned command? sign one with facegate door unlock-command)', by: null };
  }
  const r = unlockCommandSchema.safeParse(parsed);
  if (!r.success) return { ok: false, why: 'not a signed unlock command (facegate door unlock-command)', by: null };
  const c = r.data;
  const fail = (why: string): UnlockCheck => ({ ok: false, why, by: c.by });
  if (c.kiosk !== o.kiosk) return fail(`for kiosk ${c.kiosk}, not this one`);
  if (c.door !== o.door) return fail(`for door ${c.door}, not this one`);
  const key = o.keys.find((k) => k.id === c.keyId);
  if (!key) return fail(`key ${c.keyId} is not in door.remoteUnlock.publicKeys`);
  const { signature, ...body } = c;
  if (!verifyBytes(key.key, unlockSignedBytes(body), Buffer.from(signature, 'base64'))) return fail('bad signature');
  const now = o.now ?? Date.now();
  const issued = Date.parse(c.issuedAt);
  const expires = Date.parse(c.expiresAt);
  if (issued > now + 30_000) return fail('issued in the future (check the clocks)');
  if (expires <= now) return fail('expired');
  if (expires - issued > o.maxTtlSeconds * 1000) return fail(`valid longer than door.remoteUnlock.maxTtlSeconds`);
  return { ok: true, command: c };
}

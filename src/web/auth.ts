/**
 * Admin authentication: scrypt password hashes (node:crypto), in-memory sessions that
 * expire after a period without use, and a CSRF token per session. Pure apart from the
 * clock and the random source, so it is tested without a server.
 *
 * Hash format: `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>` — the parameters travel
 * with the hash so they can be raised later without breaking stored passwords.
 */
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { FacegateError } from '../shared/errors.js';

// N = 2^15, r = 8, p = 1: the interactive-login parameters OWASP's password storage cheat sheet lists for scrypt
// (about 32 MiB and ~0.1 s on a Pi 4 class CPU).
const DEFAULT_PARAMS = { N: 1 << 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
export const MIN_PASSWORD_LENGTH = 8;

function scrypt(password: string, salt: Buffer, keylen: number, o: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, o, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

const maxmem = (p: { N: number; r: number }): number => 256 * p.N * p.r + 1024 * 1024;

export async function hashPassword(password: string, params = DEFAULT_PARAMS): Promise<string> {
  if (password.length < MIN_PASSWORD_LENGTH)
    throw new FacegateError(
      `the admin password must have at least ${MIN_PASSWORD_LENGTH} characters; choose a longer one`,
    );
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_BYTES, { ...params, maxmem: maxmem(params) });
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

export function parseHash(stored: string): ParsedHash {
  const parts = stored.split('$');
  const [kind, n, r, p, salt, key] = parts;
  const N = Number(n);
  const R = Number(r);
  const P = Number(p);
  if (
    parts.length !== 6 ||
    kind !== 'scrypt' ||
    !Number.isInteger(N) ||
    N < 2 ||
    (N & (N - 1)) !== 0 ||
    !Number.isInteger(R) ||
    R < 1 ||
    !Number.isInteger(P) ||
    P < 1 ||
    !salt ||
    !key
  )
    throw new FacegateError(
      'http.admin.passwordHash is not a scrypt hash written by facegate; set the password again: facegate admin set-password --config <file>',
    );
  return { N, r: R, p: P, salt: Buffer.from(salt, 'base64'), key: Buffer.from(key, 'base64') };
}

/** Constant-time check of a password against a stored hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  const key = await scrypt(password, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: maxmem(h) });
  return key.length === h.key.length && timingSafeEqual(key, h.key);
}

export interface Session {
  readonly id: string;
  readonly csrf: string;
  expiresAt: number;
}

/** Sessions in memory: a restart logs everyone out, which is what a kiosk wants. */
export class Sessions {
  private readonly byId = new Map<string, Session>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  create(): Session {
    this.sweep();
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(24).toString('base64url'),
      expiresAt: this.now() + this.ttlMs,
    };
    this.byId.set(s.id, s);
    return s;
  }

  /** The live session for this id, its expiry pushed back (sliding); undefined when unknown or expired. */
  touch(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.byId.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.byId.delete(id);
      return undefined;
    }
    s.expiresAt = this.now() + this.ttlMs;
    return s;
  }

  end(id: string | undefined): void {
    if (id) this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.byId) if (s.expiresAt <= t) this.byId.delete(id);
  }
}

/** Constant-time comparison of two tokens (a CSRF header with the session's token). */
export function sameToken(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

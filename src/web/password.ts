/** Setting the admin password: hash it and write it into the config file, atomically. */
import { existsSync, readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { ConfigError, FacegateError } from '../shared/errors.js';
import { writeFileAtomic } from '../shared/fs.js';
import { hashPassword, MIN_PASSWORD_LENGTH } from './auth.js';

/** Writes `http.admin.passwordHash` into `file` (a JSON config; created when missing), keeping every other key. */
export async function setAdminPassword(file: string, password: string): Promise<void> {
  let cfg: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      cfg = parsed as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(
        `${file} is not a valid JSON config (${(err as Error).message}); fix it first, nothing was written`,
      );
    }
  }
  const hash = await hashPassword(password);
  const http = (typeof cfg.http === 'object' && cfg.http !== null ? cfg.http : {}) as Record<string, unknown>;
  const admin = (typeof http.admin === 'object' && http.admin !== null ? http.admin : {}) as Record<string, unknown>;
  const next = { ...cfg, http: { ...http, admin: { ...admin, passwordHash: hash } } };
  // The hash is not the password, but nobody else needs to read it: owner-only for a new file.
  await writeFileAtomic(file, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600, syncDir: true });
}

/** Reads a password: twice without echo on a terminal, else the first line of the stream. */
export async function readPassword(
  input: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => void },
  prompt: Writable,
): Promise<string> {
  if (!input.isTTY) {
    let text = '';
    for await (const chunk of input) {
      text += String(chunk);
      if (text.includes('\n')) break;
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (!line)
      throw new FacegateError(
        `no password on stdin; pipe it in (echo 'your password' | facegate admin set-password --config FILE) or run it in a terminal`,
      );
    return line;
  }
  const ask = (q: string): Promise<string> =>
    new Promise((resolve, reject) => {
      prompt.write(q);
      input.setRawMode?.(true);
      input.resume();
      let s = '';
      const onData = (d: Buffer): void => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            input.off('data', onData);
            input.setRawMode?.(false);
            input.pause();
            prompt.write('\n');
            resolve(s);
            return;
          }
          if (ch === '\u0003') {
            input.setRawMode?.(false);
            reject(new FacegateError('cancelled; the password was not changed'));
            return;
          }
          if (ch === '\u007f') s = s.slice(0, -1);
          else s += ch;
        }
      };
      input.on('data', onData);
    });
  const first = await ask(`new admin password (at least ${MIN_PASSWORD_LENGTH} characters): `);
  const again = await ask('again: ');
  if (first !== again) throw new FacegateError('the two passwords differ; nothing was changed, try again');
  return first;
}

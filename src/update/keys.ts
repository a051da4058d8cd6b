/**
 * Ed25519 keys for signing bundles (Node's built-in crypto, no extra package).
 * Private keys are PKCS#8 PEM files written with mode 0600; public keys SPKI PEM.
 * A key is named by its key id: the first 16 hex digits of the sha256 of its raw
 * 32-byte public key, short enough to read in logs and unambiguous within a fleet.
 * Key material is never logged; only key ids are.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { mkdir, readFile, writeFile, chmod, stat } from 'node:fs/promises';
import path from 'node:path';
import { KeyError } from './errors.js';

export const PRIVATE_KEY_FILE = 'facegate-update.key';
export const PUBLIC_KEY_FILE = 'facegate-update.pub';

export interface PublicKey {
  readonly id: string;
  readonly key: KeyObject;
}

export function keyIdOf(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x) throw new KeyError('not an Ed25519 public key');
  return createHash('sha256').update(Buffer.from(jwk.x, 'base64url')).digest('hex').slice(0, 16);
}

function isPem(s: string): boolean {
  return s.includes('-----BEGIN');
}

/** A public key from PEM text or a path to a PEM file (what `updates.publicKeys` holds). */
export async function loadPublicKey(pemOrPath: string): Promise<PublicKey> {
  let pem = pemOrPath;
  if (!isPem(pemOrPath)) {
    try {
      pem = await readFile(pemOrPath, 'utf8');
    } catch (err) {
      throw new KeyError(
        `cannot read public key ${pemOrPath}: ${(err as Error).message}. Give a PEM string or the path of a .pub file from facegate keygen.`,
        { cause: err },
      );
    }
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    // createPublicKey would derive the public half, but a signing key must never sit on a kiosk.
    throw new KeyError(
      `${isPem(pemOrPath) ? 'a public key in the config' : pemOrPath} is a PRIVATE key: give kiosks only the .pub file and keep the private key off the device`,
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new KeyError(
      `${isPem(pemOrPath) ? 'a public key in the config' : pemOrPath} is not a PEM public key: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyError(
      `${isPem(pemOrPath) ? 'a public key in the config' : pemOrPath} is a ${key.asymmetricKeyType ?? 'unknown'} key; facegate signs with Ed25519 (facegate keygen)`,
    );
  }
  return { id: keyIdOf(key), key };
}

export async function loadPublicKeys(list: readonly string[]): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const item of list) keys.push(await loadPublicKey(item));
  return keys;
}

/** A private key from a PEM file; refuses files that group or others can read. */
export async function loadPrivateKey(file: string): Promise<{ id: string; key: KeyObject }> {
  let pem: string;
  try {
    const st = await stat(file);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new KeyError(
        `private key ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${file}`,
      );
    }
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(`cannot read private key ${file}: ${(err as Error).message}`, { cause: err });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new KeyError(
      `${file} is not a PEM private key (an encrypted key is not supported): ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new KeyError(`${file} is a ${key.asymmetricKeyType ?? 'unknown'} key; facegate signs with Ed25519`);
  return { id: keyIdOf(createPublicKey(key)), key };
}

/** Writes a new key pair into `dir`; never overwrites an existing key. */
export async function generateKeyPair(
  dir: string,
): Promise<{ id: string; privateKeyFile: string; publicKeyFile: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateKeyFile = path.join(dir, PRIVATE_KEY_FILE);
  const publicKeyFile = path.join(dir, PUBLIC_KEY_FILE);
  try {
    // 'wx': fail rather than replace a key that may already sign a fleet's bundles.
    await writeFile(privateKeyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyError(`${privateKeyFile} exists; refusing to overwrite a signing key. Choose another --out folder.`);
    }
    throw err;
  }
  await chmod(privateKeyFile, 0o600); // the umask may have widened nothing, but be explicit
  await writeFile(publicKeyFile, publicKey.export({ format: 'pem', type: 'spki' }), { mode: 0o644 });
  return { id: keyIdOf(publicKey), privateKeyFile, publicKeyFile };
}

export function signBytes(privateKey: KeyObject, data: Buffer): Buffer {
  return sign(null, data, privateKey);
}

export function verifyBytes(publicKey: KeyObject, data: Buffer, signature: Buffer): boolean {
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}

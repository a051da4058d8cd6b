import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, parseHash, sameToken, Sessions, verifyPassword } from '../../src/web/auth.js';

const FAST = { N: 1 << 10, r: 8, p: 1 } as const;

test('a password hashes to scrypt$N$r$p$salt$key and verifies; another password does not', async () => {
  const h = await hashPassword('correct horse', FAST);
  assert.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.equal(await verifyPassword('correct horse', h), true);
  assert.equal(await verifyPassword('correct horsf', h), false);
  assert.equal(await verifyPassword('', h), false);
  // Salted: the same password hashes differently each time.
  assert.notEqual(await hashPassword('correct horse', FAST), h);
});

test('the default parameters are the strong ones (N = 2^15)', async () => {
  const h = await hashPassword('correct horse');
  assert.equal(parseHash(h).N, 32768);
  assert.equal(await verifyPassword('correct horse', h), true);
});

test('short passwords and hashes that are not ours are refused with what to do', async () => {
  await assert.rejects(hashPassword('short', FAST), /at least 8 characters/);
  for (const bad of ['', 'plain', 'scrypt$1000$8$1$c2FsdA==$a2V5', 'bcrypt$2$8$1$c2FsdA==$a2V5', 'scrypt$1024$8$1$$'])
    assert.throws(() => parseHash(bad), /facegate admin set-password/, bad);
});

test('sessions expire after the idle time; use pushes the expiry back; end() logs out', () => {
  let now = 1_000_000;
  const s = new Sessions(60_000, () => now);
  const a = s.create();
  assert.notEqual(a.id, a.csrf);
  now += 59_000;
  assert.equal(s.touch(a.id)?.id, a.id); // used: expiry moves to now + 60 s
  now += 59_000;
  assert.equal(s.touch(a.id)?.id, a.id);
  now += 60_001;
  assert.equal(s.touch(a.id), undefined);
  const b = s.create();
  s.end(b.id);
  assert.equal(s.touch(b.id), undefined);
  assert.equal(s.touch(undefined), undefined);
  assert.equal(s.touch('forged'), undefined);
});

test('sameToken compares exactly', () => {
  assert.equal(sameToken('abc', 'abc'), true);
  assert.equal(sameToken('abd', 'abc'), false);
  assert.equal(sameToken('ab', 'abc'), false);
  assert.equal(sameToken(undefined, 'abc'), false);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBundle } from '../../src/update/bundle.js';
import { generateKeyPair, loadPrivateKey } from '../../src/update/keys.js';
import { DeviceModelRunner } from '../../src/update/selftest.js';
import { makeOffer, parseOffer, decodeChunk, encodeChunk } from '../../src/update/transfer.js';
import { UpdateRejected } from '../../src/update/errors.js';
import { writeTinyModelDir } from './helpers.js';

test('offers carry the signed manifest and a consistent chunk layout; anything else is malformed', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'facegate-transfer-'));
  try {
    const model = await writeTinyModelDir(path.join(dir, 'm'), { version: '2.0', seed: 2 });
    const k = await generateKeyPair(path.join(dir, 'k'));
    const { bytes } = await createBundle({
      modelDir: model,
      runner: new DeviceModelRunner(),
      key: await loadPrivateKey(k.privateKeyFile),
    });
    const { offer, chunks } = makeOffer(bytes, { chunkSize: 1000 });
    assert.equal(offer.chunks, Math.ceil(bytes.length / 1000));
    assert.equal(chunks.length, offer.chunks);
    const round = parseOffer(Buffer.from(JSON.stringify(offer)));
    assert.deepEqual(round, offer);
    const joined = Buffer.concat(
      chunks.map((c) => {
        const d = decodeChunk(c);
        assert.ok(d && d.transferId === offer.transferId);
        return d.data;
      }),
    );
    assert.ok(joined.equals(bytes));
    assert.equal(decodeChunk(encodeChunk(offer.transferId, 7, Buffer.from('x')))?.index, 7);
    assert.equal(decodeChunk(Buffer.from('short')), null);

    const bad = (o: object, why: RegExp): void => {
      assert.throws(
        () => parseOffer(Buffer.from(JSON.stringify({ ...offer, ...o }))),
        (e: unknown) => e instanceof UpdateRejected && why.test(e.reason),
      );
    };
    bad({ version: '9.0' }, /version: differs from the signed manifest/);
    bad({ forced: true }, /forced: differs from the signed manifest/);
    bad({ chunks: (offer.chunks ?? 0) + 1 }, /chunks: does not match size/);
    bad({ chunkSha256: offer.chunkSha256?.slice(1) }, /chunkSha256: needs one hash per chunk/);
    bad({ url: 'http://example.com/x.fgb', chunkSize: null, chunks: null, chunkSha256: null }, /url/);
    bad({ signatures: [] }, /signatures/);
    bad({ extra: 1 }, /^malformed offer: unknown key "extra"$/);
    // Cheap rejections before the schema: not an object, not an offer, thousands of unknown keys.
    assert.throws(() => parseOffer(Buffer.from('[1]')), /malformed offer: not a JSON object/);
    assert.throws(() => parseOffer(Buffer.from('{"garbage":1}')), /type is not "facegate-model-offer"/);
    const wide = Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]));
    assert.throws(
      () => parseOffer(Buffer.from(JSON.stringify({ ...offer, ...wide }))),
      (e: unknown) => e instanceof UpdateRejected && e.reason === 'malformed offer: unknown key "k0" and 19999 more',
    );
    assert.throws(() => parseOffer(Buffer.from('{')), /not JSON/);
    const byUrl = makeOffer(bytes, { url: 'https://models.example/2.0.fgb' });
    assert.equal(byUrl.chunks.length, 0);
    assert.equal(parseOffer(Buffer.from(JSON.stringify(byUrl.offer))).url, 'https://models.example/2.0.fgb');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

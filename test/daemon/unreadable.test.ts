/**
 * A camera that sends only frames that do not decode: every frame is counted in
 * /metrics (facegate_skipped_total{reason="unreadable"}) and /healthz stops saying ready,
 * naming the problem. Real mosquitto; the gallery recogniser decodes the frames for real.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Daemon } from '../../src/daemon/daemon.js';
import { GalleryRecogniser, type GalleryRecogniserDeps } from '../../src/gallery/recognise.js';
import { startMosquitto } from '../support/mosquitto.js';
import { ScriptSource, EachFrameDecider, testConfig } from '../support/daemon-fakes.js';

test('only unreadable frames: counted in /metrics, /healthz not ready and says why', async () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-unreadable-'));
  const broker = await startMosquitto();
  // Decoding fails before any other part of the recogniser is used.
  const rec = new GalleryRecogniser({ descriptor: { id: 'test/1' } } as unknown as GalleryRecogniserDeps);
  const daemon = new Daemon(testConfig({ url: broker.url, stateDir: path.join(tmp, 'state'), kioskId: 'u1' }), {
    loadPipeline: () => Promise.resolve(rec),
    createDecider: () => new EachFrameDecider(),
    // ScriptSource frames carry their script text, not an image.
    createSource: () => new ScriptSource(Array<string>(100_000).fill('not an image'), 5),
    version: '9.9.9',
  });
  try {
    await daemon.start();
    const deadline = Date.now() + 30_000;
    let body = '';
    for (;;) {
      const r = await fetch(`${daemon.httpAddress ?? ''}/healthz`);
      body = await r.text();
      if (r.status === 503 && body.includes('"camera":"unreadable"')) break;
      if (Date.now() > deadline) throw new Error(`health never said unreadable: ${r.status} ${body}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    const h = JSON.parse(body) as { ready: boolean; cameraProblem?: string };
    assert.equal(h.ready, false);
    assert.match(h.cameraProblem ?? '', /frames could not be decoded/);
    const metrics = await (await fetch(`${daemon.httpAddress ?? ''}/metrics`)).text();
    const n = Number(/facegate_skipped_total\{reason="unreadable"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    assert.ok(n >= 10, `unreadable frames counted: ${n}`);
  } finally {
    await daemon.stop('test');
    await broker.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});

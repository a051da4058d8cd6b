import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, chmodSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { MjpegSplitter } from '../../src/capture/mjpeg.js';
import { FrameQueue } from '../../src/capture/queue.js';
import { Camera, backoffDelay } from '../../src/capture/camera.js';
import { DirectorySource } from '../../src/capture/directory.js';
import { FfmpegSource, ffmpegArgs } from '../../src/capture/ffmpeg.js';
import { CameraError, redactUrl, type CameraSource, type FrameSink } from '../../src/capture/source.js';
import type { Frame } from '../../src/shared/messages.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'facegate-capture-'));
const jpeg = (shade: number, withThumbnail = false): Promise<Buffer> => {
  let img = sharp({
    create: { width: 32, height: 24, channels: 3, background: { r: shade, g: shade, b: shade } },
  }).jpeg();
  if (withThumbnail) img = img.withExif({ IFD0: { ImageDescription: 'x' } });
  return img.toBuffer();
};
const frame = (id: number): Frame => ({ id, timestamp: id, source: 't', image: Buffer.alloc(0) });

test('MJPEG splitter: frames across chunk boundaries, garbage between, byte by byte', async () => {
  const a = await jpeg(10);
  const b = await jpeg(200, true);
  // An EXIF APP1 segment holding a whole JPEG (FFD8...FFD9) must not end the frame early.
  const thumb = await jpeg(99);
  const app1 = Buffer.concat([Buffer.from([0xff, 0xe1]), Buffer.alloc(2), thumb]);
  app1.writeUInt16BE(app1.length - 2, 2);
  const c = Buffer.concat([a.subarray(0, 2), app1, a.subarray(2)]);
  const stream = Buffer.concat([Buffer.from('junk'), a, b, Buffer.from([0, 1, 2]), c]);
  for (const step of [1, 7, 4096, stream.length]) {
    const s = new MjpegSplitter();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i += step) out.push(...s.push(stream.subarray(i, i + step)));
    assert.equal(out.length, 3, `step ${step}`);
    assert.ok(out[0]?.equals(a));
    assert.ok(out[1]?.equals(b));
    assert.ok(out[2]?.equals(c));
    assert.equal(s.skippedBytes, 7);
  }
  const m = await sharp(c).metadata();
  assert.equal(m.width, 32);
});

test('queue drops the oldest when full and counts it', async () => {
  const dropped: number[] = [];
  const q = new FrameQueue(2, (f) => dropped.push(f.id));
  for (let i = 1; i <= 5; i++) q.push(frame(i));
  assert.equal(q.dropped, 3);
  assert.deepEqual(dropped, [1, 2, 3]);
  assert.equal((await q.take())?.id, 4);
  assert.equal((await q.take())?.id, 5);
  const waiting = q.take();
  q.push(frame(6));
  assert.equal((await waiting)?.id, 6);
  q.close();
  assert.equal(await q.take(), undefined);
});

test('backoff grows by factor and is capped', () => {
  const r = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, r)),
    [100, 200, 400, 800, 1000, 1000],
  );
});

test('directory source replays files in name order, then ends (or loops)', async () => {
  const dir = path.join(tmp, 'frames');
  mkdirSync(dir);
  for (const [name, shade] of [
    ['b.jpg', 2],
    ['a.jpg', 1],
    ['c.jpg', 3],
  ] as const)
    writeFileSync(path.join(dir, name), await jpeg(shade * 50));
  writeFileSync(path.join(dir, 'notes.txt'), 'not an image');
  const collect = async (loop: boolean, want: number): Promise<{ frames: Buffer[]; ended: boolean }> => {
    const src = new DirectorySource(dir, 200, loop);
    const frames: Buffer[] = [];
    let ended = false;
    await new Promise<void>((resolve, reject) => {
      const sink: FrameSink = {
        frame: (img) => {
          frames.push(img);
          if (frames.length === want) resolve();
        },
        error: reject,
        end: () => {
          ended = true;
          resolve();
        },
      };
      void src.open(sink);
    });
    await src.close();
    return { frames, ended };
  };
  const once = await collect(false, 99);
  assert.equal(once.ended, true);
  assert.equal(once.frames.length, 3);
  const shades = await Promise.all(once.frames.map(async (f) => (await sharp(f).stats()).channels[0]?.mean ?? 0));
  assert.ok((shades[0] ?? 0) < (shades[1] ?? 0) && (shades[1] ?? 0) < (shades[2] ?? 0), 'a, b, c order');
  const looped = await collect(true, 7);
  assert.equal(looped.ended, false);
  assert.equal(looped.frames.length, 7);
  await assert.rejects(
    new DirectorySource(path.join(tmp, 'nope'), 5, false).open({ frame() {}, error() {}, end() {} }),
    CameraError,
  );
});

/** A source that fails on command, to test reopening. */
class FakeSource implements CameraSource {
  static opened = 0;
  static failOpen = false;
  sink: FrameSink | undefined;
  timer: NodeJS.Timeout | undefined;
  readonly description = 'fake';
  open(sink: FrameSink): Promise<void> {
    FakeSource.opened++;
    if (FakeSource.failOpen) return Promise.reject(new Error('device gone'));
    this.sink = sink;
    this.timer = setInterval(() => sink.frame(Buffer.from([1])), 5);
    return Promise.resolve();
  }
  close(): Promise<void> {
    clearInterval(this.timer);
    return Promise.resolve();
  }
}

test('camera reopens a failed source with backoff, without a restart', async () => {
  const q = new FrameQueue(1000);
  const sources: FakeSource[] = [];
  const reopens: number[] = [];
  const cam = new Camera(
    () => {
      const s = new FakeSource();
      sources.push(s);
      return s;
    },
    q,
    {
      name: 'door',
      reopen: { initialDelayMs: 10, maxDelayMs: 40, factor: 2, stallTimeoutMs: 0 },
      startTimeoutMs: 2000,
    },
    { onReopen: (a) => reopens.push(a) },
  );
  await cam.start();
  assert.equal(cam.state, 'ok');
  FakeSource.failOpen = true; // the device disappears: opening fails a few times
  sources[0]?.sink?.error(new Error('unplugged'));
  assert.equal(cam.state, 'failed');
  await new Promise((r) => setTimeout(r, 120));
  FakeSource.failOpen = false; // it comes back
  while (cam.state !== 'ok') await new Promise((r) => setTimeout(r, 10));
  assert.ok(reopens.length >= 2, `several attempts: ${reopens.join(',')}`);
  assert.deepEqual(reopens.slice(0, 2), [1, 2]);
  const before = cam.framesIn;
  await new Promise((r) => setTimeout(r, 30));
  assert.ok(cam.framesIn > before, 'frames flow again');
  await cam.stop();
  // Frame ids stay monotonic across reopens.
  const ids: number[] = [];
  for (let f = await q.take(); f; f = await q.take()) ids.push(f.id);
  assert.deepEqual(
    ids,
    [...ids].sort((x, y) => x - y),
  );
});

test('camera that fails at start: one clear CameraError', async () => {
  FakeSource.failOpen = true;
  const cam = new Camera(() => new FakeSource(), new FrameQueue(2), {
    name: 'door',
    reopen: { initialDelayMs: 10, maxDelayMs: 10, factor: 2, stallTimeoutMs: 0 },
    startTimeoutMs: 500,
  });
  await assert.rejects(
    cam.start(),
    (err: unknown) =>
      err instanceof CameraError && /camera "door" \(fake\) failed at start: device gone/.test(err.message),
  );
  FakeSource.failOpen = false;
});

test('ffmpeg source: splits the pipe, and a dying ffmpeg is reopened', async () => {
  const a = await jpeg(30);
  const jpegFile = path.join(tmp, 'one.jpg');
  writeFileSync(jpegFile, a);
  // A stand-in for ffmpeg: writes 3 JPEGs in odd chunk sizes, then dies like a lost camera.
  const fake = path.join(tmp, 'fake-ffmpeg');
  writeFileSync(
    fake,
    `#!${process.execPath}
const fs = require('fs');
const img = fs.readFileSync(${JSON.stringify(jpegFile)});
const all = Buffer.concat([img, img, img]);
let i = 0;
const t = setInterval(() => {
  if (i >= all.length) { clearInterval(t); process.stderr.write('Input/output error\\n'); process.exit(1); }
  process.stdout.write(all.subarray(i, i + 97)); i += 97;
}, 1);
`,
  );
  chmodSync(fake, 0o755);
  const q = new FrameQueue(100);
  const opts = {
    input: '/dev/video9',
    path: fake,
    inputArgs: [],
    rtspTransport: 'tcp' as const,
    quality: 5,
    loop: false,
    fps: 5,
    width: 32,
    height: 24,
  };
  const reasons: string[] = [];
  const cam = new Camera(
    () => new FfmpegSource(opts),
    q,
    {
      name: 'door',
      reopen: { initialDelayMs: 10, maxDelayMs: 10, factor: 1, stallTimeoutMs: 0 },
      startTimeoutMs: 5000,
    },
    { onReopen: (_a, r) => reasons.push(r) },
  );
  await cam.start();
  while (cam.framesIn < 5) await new Promise((r) => setTimeout(r, 10));
  await cam.stop();
  assert.ok(
    reasons.some((r) => /exited with code 1: Input\/output error/.test(r)),
    reasons.join('; '),
  );
  for (let f = await q.take(); f; f = await q.take()) assert.ok(f.image.equals(a));
  await assert.rejects(
    new FfmpegSource({ ...opts, path: path.join(tmp, 'no-ffmpeg') }).open({ frame() {}, error() {}, end() {} }),
    /ffmpeg not found/,
  );
});

test('ffmpeg arguments per input kind; credentials never shown', () => {
  const base = {
    inputArgs: [],
    path: 'ffmpeg',
    rtspTransport: 'tcp' as const,
    quality: 5,
    loop: true,
    fps: 5,
    width: 640,
    height: 480,
  };
  const rtsp = ffmpegArgs({ ...base, input: 'rtsp://u:p@cam/stream' });
  assert.deepEqual(rtsp.slice(rtsp.indexOf('-rtsp_transport'), rtsp.indexOf('-rtsp_transport') + 2), [
    '-rtsp_transport',
    'tcp',
  ]);
  assert.ok(!rtsp.includes('-re'));
  const file = ffmpegArgs({ ...base, input: 'door.mp4' });
  assert.ok(file.includes('-re') && file.includes('-stream_loop'));
  const dev = ffmpegArgs({ ...base, input: '/dev/video0' });
  assert.deepEqual(dev.slice(dev.indexOf('-f'), dev.indexOf('-f') + 4), ['-f', 'v4l2', '-video_size', '640x480']);
  assert.equal(dev.at(-1), 'pipe:1');
  assert.equal(redactUrl('rtsp://admin:secret@10.0.0.5/live'), 'rtsp://***@10.0.0.5/live');
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('webcam source: node-webcam runs the capture command and frames flow; a failing command is a CameraError', async () => {
  const img = await jpeg(77);
  const src = path.join(tmp, 'cam.jpg');
  writeFileSync(src, img);
  // A stand-in for fswebcam: copies a JPEG to the file named by its last argument.
  const fake = path.join(tmp, 'fake-fswebcam');
  writeFileSync(fake, `#!/bin/sh\nfor last; do :; done\ncp ${JSON.stringify(src)} "$last"\n`);
  chmodSync(fake, 0o755);
  const q = new FrameQueue(100);
  const { WebcamSource } = await import('../../src/capture/webcam.js');
  const opts = { device: '/dev/video0', command: fake, skipFrames: 0, fps: 50, width: 32, height: 24 };
  const cam = new Camera(() => new WebcamSource(opts), q, {
    name: 'door',
    reopen: { initialDelayMs: 10, maxDelayMs: 10, factor: 1, stallTimeoutMs: 0 },
    startTimeoutMs: 5000,
  });
  await cam.start();
  while (cam.framesIn < 3) await new Promise((r) => setTimeout(r, 10));
  await cam.stop();
  for (let f = await q.take(); f; f = await q.take()) assert.ok(f.image.equals(img));
  const failing = new Camera(() => new WebcamSource({ ...opts, command: '/bin/false' }), new FrameQueue(2), {
    name: 'door',
    reopen: { initialDelayMs: 10, maxDelayMs: 10, factor: 1, stallTimeoutMs: 0 },
    startTimeoutMs: 5000,
  });
  await assert.rejects(
    failing.start(),
    /camera "door" \(webcam \/dev\/video0\) failed at start: \/bin\/false could not capture/,
  );
  await assert.rejects(
    new WebcamSource({ ...opts, device: '/dev/video0; rm -rf /' }).open({ frame() {}, error() {}, end() {} }),
    /may contain only/,
  );
});

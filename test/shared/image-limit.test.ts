/**
 * The pixel limit before decoding: an image whose header announces more pixels than
 * camera.maxImagePixels is refused with ImageTooLargeError before its pixels are decoded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { DEFAULT_MAX_IMAGE_PIXELS, ImageTooLargeError, decodeRgb, setImagePixelLimit } from '../../src/shared/image.js';

function crc32(b: Buffer): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A PNG of a few hundred bytes whose header says 16000×16000 greyscale (one row of data). */
function hugePngHeader(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16000, 0);
  ihdr.writeUInt32BE(16000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(16001))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('a 16000×16000 PNG is refused as too large before it is decoded', async () => {
  assert.equal(DEFAULT_MAX_IMAGE_PIXELS, 24_000_000);
  await assert.rejects(decodeRgb(hugePngHeader()), ImageTooLargeError);
});

test('the limit is configurable; images within it decode', async () => {
  const png = await sharp({ create: { width: 200, height: 100, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  try {
    setImagePixelLimit(200 * 100 - 1);
    await assert.rejects(
      decodeRgb(png),
      (err: Error) => err instanceof ImageTooLargeError && /maxImagePixels/.test(err.message),
    );
    setImagePixelLimit(200 * 100);
    const img = await decodeRgb(png);
    assert.equal(img.width * img.height, 200 * 100);
  } finally {
    setImagePixelLimit(DEFAULT_MAX_IMAGE_PIXELS);
  }
});

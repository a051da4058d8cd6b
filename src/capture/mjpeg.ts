/**
 * Splits a stream of concatenated JPEG images (ffmpeg `-f image2pipe -c:v mjpeg`) into
 * single images. Walks the JPEG marker segments (SOI, segments with lengths, SOS, then
 * entropy-coded data up to EOI) rather than searching for FFD9, so an EXIF thumbnail
 * (a whole JPEG inside APP1) does not end a frame early. ITU-T T.81, Annex B.
 */
const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;

export class MjpegSplitter {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes skipped because they were not inside a JPEG (garbage between frames). */
  skippedBytes = 0;

  constructor(private readonly maxFrameBytes = 32 * 1024 * 1024) {}

  /** Feeds bytes; returns the complete images they finished. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    for (;;) {
      // Find SOI.
      let start = -1;
      for (let i = 0; i + 1 < this.buf.length; i++) {
        if (this.buf[i] === 0xff && this.buf[i + 1] === SOI) {
          start = i;
          break;
        }
      }
      if (start < 0) {
        const keep = this.buf.length && this.buf[this.buf.length - 1] === 0xff ? 1 : 0;
        this.skippedBytes += this.buf.length - keep;
        this.buf = this.buf.subarray(this.buf.length - keep);
        return out;
      }
      if (start > 0) {
        this.skippedBytes += start;
        this.buf = this.buf.subarray(start);
      }
      const end = this.findEnd(this.buf);
      if (end === 'incomplete') {
        if (this.buf.length > this.maxFrameBytes) {
          this.skippedBytes += this.buf.length;
          this.buf = Buffer.alloc(0);
        }
        return out;
      }
      if (end === 'corrupt') {
        this.skippedBytes += 2;
        this.buf = this.buf.subarray(2);
        continue;
      }
      out.push(Buffer.from(this.buf.subarray(0, end)));
      this.buf = this.buf.subarray(end);
    }
  }

  /** Index just past EOI of the JPEG starting at 0, 'incomplete' when more bytes are needed. */
  private findEnd(b: Buffer): number | 'incomplete' | 'corrupt' {
    let i = 2;
    // Marker segments until SOS.
    for (;;) {
      if (i + 1 >= b.length) return 'incomplete';
      if (b[i] !== 0xff) return 'corrupt';
      const m = b[i + 1] as number;
      if (m === 0xff) {
        i++;
        continue;
      } // fill byte
      if (m === EOI) return i + 2;
      if (m === SOI || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
        i += 2;
        continue;
      } // no length
      if (i + 3 >= b.length) return 'incomplete';
      const len = b.readUInt16BE(i + 2);
      if (len < 2) return 'corrupt';
      i += 2 + len;
      if (m === SOS) break;
    }
    // Entropy-coded data: FF00 is a stuffed byte, FFD0-D7 restart markers; FFD9 ends; another marker (e.g. a further SOS in progressive JPEG) continues the segment walk.
    for (;;) {
      if (i + 1 >= b.length) return 'incomplete';
      if (b[i] !== 0xff) {
        i++;
        continue;
      }
      const m = b[i + 1] as number;
      if (m === 0x00 || (m >= 0xd0 && m <= 0xd7) || m === 0xff) {
        i += m === 0xff ? 1 : 2;
        continue;
      }
      if (m === EOI) return i + 2;
      if (i + 3 >= b.length) return 'incomplete';
      const len = b.readUInt16BE(i + 2);
      if (len < 2) return 'corrupt';
      i += 2 + len;
    }
  }
}

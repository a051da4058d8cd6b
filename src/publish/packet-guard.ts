/**
 * A bound on the size of incoming MQTT packets, enforced where the bytes arrive.
 *
 * mqtt.js buffers a whole packet before it parses it, and MQTT 3.1.1 has no way to tell
 * the broker a maximum, so one 100 MB publish on a subscribed topic costs the kiosk
 * 100 MB (and several times that once copied and parsed). MQTT 5's maximumPacketSize is
 * also set (see buildClientOptions), but a broker that ignores it must not get past.
 *
 * The guard sits between the socket and mqtt.js's parser. It reads the fixed header of
 * each packet; a PUBLISH whose remaining length exceeds the limit is passed on with its
 * topic, packet id and properties but an empty payload, and the payload's bytes are
 * skipped as they arrive, never held. mqtt.js then acknowledges it as usual (QoS 1), so
 * the broker's in-flight window does not fill with messages the kiosk will never take.
 */
import { Transform, type TransformCallback } from 'node:stream';

const PUBLISH = 3;
/** A variable header (topic + packet id + v5 properties) longer than this ends the connection. */
const MAX_VARIABLE_HEADER = 70_000;

export interface OversizedPacket {
  readonly topic: string;
  /** The publish's remaining length (topic, properties and payload) in bytes. */
  readonly bytes: number;
}

type Mode = 'header' | 'pass' | 'varhead' | 'skip';

export class PacketSizeGuard extends Transform {
  private mode: Mode = 'header';
  /** Bytes of the fixed header (or variable header) gathered so far. */
  private held: Buffer = Buffer.alloc(0);
  /** Bytes left to pass on or skip in the current packet. */
  private left = 0;
  private first = 0;
  private remaining = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly v5: boolean,
    private readonly onOversized: (p: OversizedPacket) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let buf = chunk;
    try {
      while (buf.length > 0) buf = this.step(buf);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  /** Consumes a prefix of `buf`; returns the rest. */
  private step(buf: Buffer): Buffer {
    switch (this.mode) {
      case 'pass': {
        const n = Math.min(this.left, buf.length);
        this.push(buf.subarray(0, n));
        this.left -= n;
        if (this.left === 0) this.mode = 'header';
        return buf.subarray(n);
      }
      case 'skip': {
        const n = Math.min(this.left, buf.length);
        this.left -= n;
        if (this.left === 0) this.mode = 'header';
        return buf.subarray(n);
      }
      case 'header': {
        // One type byte and a variable-length integer of 1 to 4 bytes (MQTT 3.1.1 §2.2.3).
        const take = Math.min(buf.length, 5 - this.held.length);
        const h = Buffer.concat([this.held, buf.subarray(0, take)]);
        const len = readVarInt(h, 1);
        if (len === undefined) {
          if (h.length >= 5) throw new Error('malformed MQTT packet: remaining length longer than 4 bytes');
          this.held = h;
          return buf.subarray(take);
        }
        const used = 1 + len.size - this.held.length; // bytes of `buf` that belong to the fixed header
        this.first = h[0] ?? 0;
        this.remaining = len.value;
        const header = h.subarray(0, 1 + len.size);
        this.held = Buffer.alloc(0);
        if (this.first >> 4 === PUBLISH && this.remaining > this.maxBytes) {
          this.mode = 'varhead';
          this.held = Buffer.alloc(0);
        } else {
          this.push(header);
          this.left = this.remaining;
          this.mode = this.left > 0 ? 'pass' : 'header';
        }
        return buf.subarray(used);
      }
      case 'varhead': {
        const need = Math.min(MAX_VARIABLE_HEADER, this.remaining);
        const take = Math.min(buf.length, need - this.held.length);
        const h = Buffer.concat([this.held, buf.subarray(0, take)]);
        const size = variableHeaderSize(h, (this.first >> 1) & 3, this.v5);
        if (size === undefined) {
          if (h.length >= need) throw new Error('MQTT publish with an oversized topic or properties');
          this.held = h;
          return buf.subarray(take);
        }
        const consumed = size - this.held.length; // bytes of `buf` in the variable header
        const varHeader = h.subarray(0, size);
        this.held = Buffer.alloc(0);
        this.onOversized({
          topic: varHeader.subarray(2, 2 + varHeader.readUInt16BE(0)).toString('utf8'),
          bytes: this.remaining,
        });
        this.push(Buffer.concat([Buffer.from([this.first]), writeVarInt(size), varHeader]));
        this.left = this.remaining - size;
        this.mode = this.left > 0 ? 'skip' : 'header';
        return buf.subarray(consumed);
      }
    }
  }
}

function readVarInt(b: Buffer, at: number): { value: number; size: number } | undefined {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const byte = b[at + i];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * 128 ** i;
    if ((byte & 0x80) === 0) return { value, size: i + 1 };
  }
  return undefined;
}

function writeVarInt(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** Size of a PUBLISH's variable header in `h`, or undefined while more bytes are needed. */
function variableHeaderSize(h: Buffer, qos: number, v5: boolean): number | undefined {
  if (h.length < 2) return undefined;
  let size = 2 + h.readUInt16BE(0) + (qos > 0 ? 2 : 0);
  if (h.length < size) return undefined;
  if (v5) {
    const props = readVarInt(h, size);
    if (!props) return undefined;
    size += props.size + props.value;
    if (h.length < size) return undefined;
  }
  return size;
}

/**
 * Puts a PacketSizeGuard between every stream mqtt.js opens and its parser. mqtt.js pipes
 * the stream into its parser once per connection; the guard is inserted into that pipe.
 */
export function guardIncomingPackets(
  client: { streamBuilder: (c: never) => unknown },
  maxBytes: number,
  v5: boolean,
  onOversized: (p: OversizedPacket) => void,
): void {
  const build = client.streamBuilder;
  client.streamBuilder = (c: never) => {
    const stream = build(c) as NodeJS.ReadableStream & { destroy(err?: Error): void };
    const pipe = stream.pipe.bind(stream);
    stream.pipe = <T extends NodeJS.WritableStream>(dest: T): T => {
      const guard = new PacketSizeGuard(maxBytes, v5, onOversized);
      // A malformed stream ends the connection (mqtt.js reconnects), as its own parser would.
      guard.on('error', (err) => stream.destroy(err));
      pipe(guard);
      guard.pipe(dest);
      return dest;
    };
    return stream;
  };
}

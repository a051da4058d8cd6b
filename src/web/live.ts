/**
 * Live updates for the browsers: server-sent events (faces per frame, decisions, health,
 * door) and the camera view as an MJPEG stream (multipart/x-mixed-replace, which an
 * <img> plays natively). The camera's own encoded bytes are forwarded; nothing is decoded
 * or re-encoded.
 *
 * Costs nothing to recognition when nobody watches: the bus listeners exist only while a
 * client is connected. When someone watches, each client gets at most `maxFps` frames a
 * second, and a frame a client's socket has not taken yet is dropped (and counted), never
 * queued, so a slow browser cannot build up memory or back-pressure the daemon.
 */
import type { ServerResponse } from 'node:http';
import type { DaemonBus, DecisionSeen, FrameSeen } from '../publish/bus.js';

export interface FaceView {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  /** Name when recognised, null when refused. */
  readonly label: string | null;
  readonly similarity: number;
}

export interface DecisionView {
  readonly kind: 'recognized' | 'unknown';
  readonly name: string | null;
  readonly score: number;
  readonly time: string;
  readonly seq: number;
  readonly modelVersion: string;
}

const BOUNDARY = 'facegateframe';

export function imageType(image: Buffer): string | undefined {
  if (image[0] === 0xff && image[1] === 0xd8) return 'image/jpeg';
  if (image[0] === 0x89 && image[1] === 0x50 && image[2] === 0x4e && image[3] === 0x47) return 'image/png';
  return undefined;
}

export function faceViews(seen: FrameSeen): FaceView[] {
  return seen.matches.map((m) => ({
    x: Math.round(m.face.box.x),
    y: Math.round(m.face.box.y),
    width: Math.round(m.face.box.width),
    height: Math.round(m.face.box.height),
    label: m.label,
    similarity: Math.round(m.similarity * 1000) / 1000,
  }));
}

export function decisionView(d: DecisionSeen): DecisionView {
  return {
    kind: d.decision.kind,
    name: d.decision.name,
    score: Math.round(d.decision.score * 1000) / 1000,
    time: d.event.time,
    seq: d.event.seq,
    modelVersion: d.modelVersion,
  };
}

interface Client {
  readonly res: ServerResponse;
  lastSentAt: number;
}

export interface LiveStats {
  readonly eventClients: number;
  readonly videoClients: number;
  readonly framesSent: number;
  readonly framesDropped: number;
}

export class LiveFeed {
  private readonly events = new Set<Client>();
  private readonly video = new Set<Client>();
  private unsubscribe: (() => void)[] = [];
  private healthTimer: NodeJS.Timeout | undefined;
  private lastFaces = -1;
  private lastFacesAt = 0;
  private sent = 0;
  private dropped = 0;
  private readonly minGapMs: number;

  constructor(
    private readonly bus: DaemonBus,
    maxFps: number,
    /** The status sent every `statusEveryMs` while clients are connected (health, door). */
    private readonly status: () => unknown,
    private readonly statusEveryMs = 1000,
    private readonly now: () => number = Date.now,
  ) {
    this.minGapMs = 1000 / maxFps;
  }

  get stats(): LiveStats {
    return {
      eventClients: this.events.size,
      videoClients: this.video.size,
      framesSent: this.sent,
      framesDropped: this.dropped,
    };
  }

  /** Takes over `res` as an event stream until the client goes away. */
  addEventClient(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const c: Client = { res, lastSentAt: -Infinity };
    this.events.add(c);
    this.send(c, 'status', this.status());
    res.on('close', () => {
      this.events.delete(c);
      this.sync();
    });
    this.sync();
  }

  /** Takes over `res` as an MJPEG stream until the client goes away. */
  addVideoClient(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    res.socket?.setNoDelay(true);
    const c: Client = { res, lastSentAt: -Infinity };
    this.video.add(c);
    res.on('close', () => {
      this.video.delete(c);
      this.sync();
    });
    this.sync();
  }

  /** Sends an event to every event client now (the door changed, …). */
  broadcast(event: string, data: unknown): void {
    if (this.events.size === 0) return;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const c of this.events) c.res.write(text);
  }

  /** Ends every stream (server stop). */
  close(): void {
    for (const c of [...this.events, ...this.video]) c.res.end();
    this.events.clear();
    this.video.clear();
    this.sync();
  }

  private send(c: Client, event: string, data: unknown): void {
    c.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Listens to the bus only while someone watches. */
  private sync(): void {
    const watching = this.events.size + this.video.size > 0;
    if (watching && this.unsubscribe.length === 0) {
      this.unsubscribe = [
        this.bus.on('frame', (f) => this.onFrame(f)),
        this.bus.on('decision', (d) => this.broadcast('decision', decisionView(d))),
      ];
      this.healthTimer = setInterval(() => this.broadcast('status', this.status()), this.statusEveryMs);
      this.healthTimer.unref();
    } else if (!watching && this.unsubscribe.length > 0) {
      for (const u of this.unsubscribe) u();
      this.unsubscribe = [];
      clearInterval(this.healthTimer);
      this.healthTimer = undefined;
      this.lastFaces = -1;
    }
  }

  private onFrame(seen: FrameSeen): void {
    const t = this.now();
    if (this.events.size > 0) {
      // Boxes at the capped rate, and at once when faces come or go (the banner follows them).
      const n = seen.matches.length;
      if (n !== this.lastFaces || t - this.lastFacesAt >= this.minGapMs) {
        this.lastFaces = n;
        this.lastFacesAt = t;
        this.broadcast('faces', { frameId: seen.frame.id, at: seen.frame.timestamp, faces: faceViews(seen) });
      }
    }
    if (this.video.size === 0) return;
    const type = imageType(seen.frame.image);
    if (!type) return;
    let head: Buffer | undefined;
    for (const c of this.video) {
      if (t - c.lastSentAt < this.minGapMs) continue;
      if (c.res.writableNeedDrain) {
        // The socket has not taken the last frame yet: skip this slot rather than queue.
        c.lastSentAt = t;
        this.dropped++;
        continue;
      }
      head ??= Buffer.from(
        `--${BOUNDARY}\r\ncontent-type: ${type}\r\ncontent-length: ${seen.frame.image.length}\r\n\r\n`,
      );
      c.lastSentAt = t;
      c.res.write(head);
      c.res.write(seen.frame.image);
      c.res.write('\r\n');
      this.sent++;
    }
  }
}

/**
 * Fakes for in-process daemon tests: a camera whose frames carry a script ("event:alice",
 * "event:?", "none"), a model that reads the script, and a decider that turns each
 * "event:" frame into one decision. The broker, the outbox, HTTP and MQTT stay real.
 */
import type { CameraSource, FrameSink } from '../../src/capture/source.js';
import type { DecisionMaker, FramePipeline } from '../../src/daemon/worker.js';
import type { Decision, Frame, Match } from '../../src/shared/messages.js';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

export class ScriptSource implements CameraSource {
  readonly description = 'script';
  private timer: NodeJS.Timeout | undefined;
  private i = 0;
  constructor(
    private readonly script: readonly string[],
    private readonly intervalMs = 10,
    private readonly loop = false,
  ) {}
  open(sink: FrameSink): Promise<void> {
    this.timer = setInterval(() => {
      if (this.i >= this.script.length) {
        if (!this.loop) {
          clearInterval(this.timer);
          sink.end();
          return;
        }
        this.i = 0;
      }
      sink.frame(Buffer.from(this.script[this.i++] ?? 'none'));
    }, this.intervalMs);
    return Promise.resolve();
  }
  close(): Promise<void> {
    clearInterval(this.timer);
    return Promise.resolve();
  }
}

export class ScriptRecogniser implements FramePipeline {
  closed = false;
  constructor(readonly modelVersion = '20260101.000000') {}
  process(frame: Frame): Promise<readonly Match[]> {
    const text = frame.image.toString('utf8');
    if (!text.startsWith('event:')) return Promise.resolve([]);
    const who = text.slice(6);
    const face = { frameId: frame.id, box: { x: 10, y: 10, width: 100, height: 100 }, score: 0.99, keypoints: [] };
    return Promise.resolve([
      { face, label: who === '?' ? null : who, candidate: who, similarity: 0.9, probability: 0.95, margin: 0.5 },
    ]);
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

export class EachFrameDecider implements DecisionMaker {
  update(frameId: number, timestamp: number, matches: readonly Match[]): Decision[] {
    return matches.map((m) => ({
      kind: m.label ? 'recognized' : 'unknown',
      name: m.label,
      score: m.similarity,
      trackId: 1,
      frameId,
      timestamp,
    }));
  }
}

export function testConfig(over: {
  url: string;
  stateDir: string;
  kioskId?: string;
  extra?: Record<string, unknown>;
}): Config {
  return validateConfig({
    camera: { type: 'directory', name: 'door', reopen: { initialDelayMs: 50, maxDelayMs: 200, stallTimeoutMs: 0 } },
    model: { dir: '/nonexistent-model-dir' },
    mqtt: {
      url: over.url,
      kioskId: over.kioskId ?? 'k1',
      reconnectMs: 100,
      connectTimeoutMs: 2000,
      embedded: { port: 0 },
    },
    http: { port: 0 },
    state: { dir: over.stateDir },
    daemon: { shutdownTimeoutMs: 5000 },
    ...over.extra,
  });
}

/**
 * What the daemon sees, for the parts that only watch or act on it (the kiosk screen,
 * door access): every processed frame and every published decision. The recognition
 * worker emits; subscribers never slow it down or stop it — a listener that throws is
 * logged once per kind and the others still run.
 */
import type { Logger } from 'pino';
import type { Decision, Frame, Match } from '../shared/messages.js';
import type { EventPayload } from './topics.js';
import { moduleLogger } from '../shared/logger.js';

export interface FrameSeen {
  readonly frame: Frame;
  readonly matches: readonly Match[];
  readonly modelVersion: string;
  readonly timings: { readonly queueMs: number; readonly recogniseMs: number; readonly decideMs: number };
}

export interface DecisionSeen {
  readonly decision: Decision;
  readonly modelVersion: string;
  /** The `events` payload as published (id, seq, time). */
  readonly event: EventPayload;
}

export interface DaemonEvents {
  frame: FrameSeen;
  decision: DecisionSeen;
}

type Listener<T> = (value: T) => void;

export class DaemonBus {
  private readonly listeners: { [K in keyof DaemonEvents]: Set<Listener<DaemonEvents[K]>> } = {
    frame: new Set(),
    decision: new Set(),
  };
  private readonly warned = new Set<string>();
  private readonly log: Logger = moduleLogger('bus');

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof DaemonEvents>(kind: K, listener: Listener<DaemonEvents[K]>): () => void {
    const set = this.listeners[kind] as Set<Listener<DaemonEvents[K]>>;
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends keyof DaemonEvents>(kind: K, value: DaemonEvents[K]): void {
    for (const l of this.listeners[kind] as Set<Listener<DaemonEvents[K]>>) {
      try {
        l(value);
      } catch (err) {
        const key = `${kind}:${(err as Error).message.slice(0, 80)}`;
        if (this.warned.has(key)) continue;
        this.warned.add(key);
        this.log.error({ kind, err: (err as Error).message }, 'a listener failed (logged once per kind)');
      }
    }
  }
}

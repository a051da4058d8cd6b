/**
 * The MQTT connection (mqtt.js, MQTT 5 or 3.1.1, TLS, user/password, client certificates).
 * The last will is a retained "offline" on the status topic; a retained "online" is
 * published on every connect; stop() publishes "offline" itself before disconnecting.
 * Publishing takes topics relative to `<base>/<kiosk>` (see topics.ts).
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { connect, type IClientOptions, type ISubscriptionMap, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { ConfigError } from '../shared/errors.js';
import type { MqttConfig } from '../config/schema.js';
import { moduleLogger } from '../shared/logger.js';
import { guardIncomingPackets, type OversizedPacket } from './packet-guard.js';
import {
  Topics,
  TOPIC_OPTIONS,
  encodePayload,
  assertTopicName,
  type RelativeTopic,
  type TopicPayloads,
} from './topics.js';

/** `retained`: the broker replayed a stored message (at subscribe), not one published now. */
export type MessageHandler = (topic: string, payload: Buffer, meta: { retained: boolean }) => void;

/** What other parts (the model updater, HA discovery) need from the connection. */
export interface MqttPort {
  readonly topics: Topics;
  readonly connected: boolean;
  /** Typed publish to a topic relative to `<base>/<kiosk>`; resolves when the broker acknowledged (QoS 1) or sent (QoS 0). */
  publish<T extends RelativeTopic>(topic: T, payload: TopicPayloads[T]): Promise<void>;
  /** Publish raw text/bytes to a relative topic with explicit options (for parts with their own topics). */
  publishRelative(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /** Publish to an absolute topic outside the base (Home Assistant discovery only). */
  publishAbsolute(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void>;
  /** Subscribe to a relative topic; the handler gets the relative topic. Re-subscribed after reconnects. */
  subscribe(relativeTopic: string, handler: MessageHandler): Promise<void>;
  /** Subscribe to an absolute topic (Home Assistant's status). */
  subscribeAbsolute(topic: string, handler: MessageHandler): Promise<void>;
  /** Called on every (re)connect, after "online" was published. */
  onConnect(listener: () => void): void;
}

/**
 * The broker credentials and TLS of an mqtt config section (user, password or password file,
 * CA, client certificate): shared by the kiosk's connection and by operator commands that
 * reach the same broker (facegate publish-model, enrol publish-bundle). Files are read here;
 * a missing one is a ConfigError naming its key.
 */
export function brokerAuthOptions(
  cfg: Pick<MqttConfig, 'username' | 'password' | 'passwordFile' | 'tls'>,
): Pick<IClientOptions, 'username' | 'password' | 'ca' | 'cert' | 'key' | 'rejectUnauthorized'> {
  const readFile = (file: string, key: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`mqtt.${key}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  if ((cfg.tls.cert === '') !== (cfg.tls.key === ''))
    throw new ConfigError('mqtt.tls: give both cert and key for a client certificate, or neither');
  let password: string | undefined = cfg.password || undefined;
  if (cfg.passwordFile) password = readFile(cfg.passwordFile, 'passwordFile').toString('utf8').split(/\r?\n/)[0] ?? '';
  return {
    rejectUnauthorized: cfg.tls.rejectUnauthorized,
    ...(cfg.username ? { username: cfg.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(cfg.tls.ca ? { ca: readFile(cfg.tls.ca, 'tls.ca') } : {}),
    ...(cfg.tls.cert ? { cert: readFile(cfg.tls.cert, 'tls.cert') } : {}),
    ...(cfg.tls.key ? { key: readFile(cfg.tls.key, 'tls.key') } : {}),
  };
}

export function buildClientOptions(cfg: MqttConfig, topics: Topics): IClientOptions {
  const opts: IClientOptions = {
    protocolVersion: cfg.protocolVersion,
    clientId: cfg.clientId || `facegate-${cfg.kioskId}`,
    keepalive: cfg.keepaliveSeconds,
    reconnectPeriod: cfg.reconnectMs,
    connectTimeout: cfg.connectTimeoutMs,
    clean: true,
    will: { topic: topics.status, payload: Buffer.from('offline'), qos: 1, retain: true },
    ...brokerAuthOptions(cfg),
  };
  // MQTT 5 lets the broker know: it then drops larger messages instead of sending them.
  // MqttConnection enforces the same bound on the bytes for brokers that do not (and for 3.1.1).
  if (cfg.protocolVersion === 5) opts.properties = { maximumPacketSize: cfg.maxPacketBytes };
  return opts;
}

/** Strips credentials from a URL for logs. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}

/** 16 MiB: an offer of the most chunks (about 7 MB of hashes) fits; a 1 GB kiosk is not at risk. */
export const DEFAULT_MAX_PACKET_BYTES = 16 * 1024 * 1024;

export class MqttConnection implements MqttPort {
  /** Incoming publishes dropped because they exceeded the packet size limit. */
  oversizedPackets = 0;
  private client: MqttClient | undefined;
  private readonly log: Logger;
  private readonly handlers = new Map<string, MessageHandler[]>();
  private readonly connectListeners: (() => void)[] = [];
  private readonly events = new EventEmitter();
  private stopping = false;
  private everConnected = false;

  constructor(
    private readonly url: string,
    private readonly options: IClientOptions,
    readonly topics: Topics,
    private readonly onState: (connected: boolean) => void = () => undefined,
    /** Incoming publishes larger than this are dropped unread (their payload never buffered). */
    private readonly maxPacketBytes = DEFAULT_MAX_PACKET_BYTES,
  ) {
    this.log = moduleLogger('mqtt');
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /**
   * Starts connecting and resolves once connected or after `waitMs` (the daemon runs on
   * without a broker: events wait in the outbox). Bad options throw.
   */
  async start(waitMs = 3000): Promise<void> {
    // manualConnect: the packet size guard must be in place before the first byte arrives.
    const client = connect(this.url, { ...this.options, manualConnect: true });
    this.client = client;
    guardIncomingPackets(
      client as unknown as { streamBuilder: (c: never) => unknown },
      this.maxPacketBytes,
      this.options.protocolVersion === 5,
      (p) => this.oversized(p),
    );
    client.connect();
    client.on('connect', () => {
      // Nagle + delayed ACK turns a QoS 1 round trip from ~0.2 ms into ~40-90 ms.
      (client.stream as Partial<Socket> | undefined)?.setNoDelay?.(true);
      this.everConnected = true;
      this.log.info({ url: safeUrl(this.url) }, 'connected to broker');
      this.onState(true);
      client.publish(this.topics.status, 'online', { qos: 1, retain: true }, (err) => {
        if (err && !this.stopping) this.log.warn({ err: err.message }, 'could not publish online');
      });
      for (const l of this.connectListeners) {
        try {
          l();
        } catch (err) {
          this.log.error({ err }, 'connect listener failed');
        }
      }
      this.events.emit('connect');
    });
    client.on('close', () => {
      if (!this.stopping) this.onState(false);
    });
    client.on('offline', () => {
      if (!this.stopping)
        this.log.warn({ url: safeUrl(this.url) }, 'broker unreachable; events wait on disk, reconnecting');
    });
    // Reconnect attempts repeat the same error every reconnectMs: log each kind once per outage.
    const seen = new Set<string>();
    client.on('connect', () => seen.clear());
    client.on('error', (err) => {
      if (seen.has(err.message)) {
        this.log.debug({ err: err.message }, 'mqtt error');
        return;
      }
      seen.add(err.message);
      this.log.warn({ err: err.message }, 'mqtt error');
    });
    client.on('message', (topic, payload, packet) => {
      for (const h of this.handlers.get(topic) ?? []) {
        try {
          h(this.topics.relative(topic) ?? topic, payload, { retained: packet.retain });
        } catch (err) {
          this.log.error({ err, topic }, 'message handler failed');
        }
      }
    });
    if (!client.connected) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, waitMs);
        this.events.once('connect', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (!this.everConnected)
      this.log.warn({ url: safeUrl(this.url) }, 'broker not reachable yet; running on, events are kept on disk');
  }

  private oversizedLogged = false;
  private oversized(p: OversizedPacket): void {
    this.oversizedPackets++;
    // A flood must not become a flood of log lines: the first is logged, the rest counted.
    if (!this.oversizedLogged)
      this.log.warn(
        { topic: p.topic.slice(0, 200), bytes: p.bytes, limit: this.maxPacketBytes },
        'dropped an incoming MQTT message larger than mqtt.maxPacketBytes (further ones are only counted)',
      );
    this.oversizedLogged = true;
  }

  onConnect(listener: () => void): void {
    this.connectListeners.push(listener);
  }

  publish<T extends RelativeTopic>(topic: T, payload: TopicPayloads[T]): Promise<void> {
    return this.raw(this.topics.full(topic), encodePayload(topic, payload), TOPIC_OPTIONS[topic]);
  }

  publishRelative(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    return this.raw(this.topics.full(topic), payload, opts);
  }

  publishAbsolute(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    assertTopicName(topic);
    return this.raw(topic, payload, opts);
  }

  private raw(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('mqtt connection not started'));
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: opts.qos, retain: opts.retain }, (err) => (err ? reject(err) : resolve()));
    });
  }

  subscribe(relativeTopic: string, handler: MessageHandler): Promise<void> {
    return this.subscribeAbsolute(this.topics.full(relativeTopic), handler);
  }

  subscribeAbsolute(topic: string, handler: MessageHandler): Promise<void> {
    assertTopicName(topic);
    const client = this.client;
    if (!client) return Promise.reject(new Error('mqtt connection not started'));
    const list = this.handlers.get(topic) ?? [];
    list.push(handler);
    this.handlers.set(topic, list);
    // Subscribed again even when another handler has the topic: the broker then sends the
    // topic's retained message to the new handler, as it would on a fresh connection.
    // mqtt.js re-subscribes after a reconnect (resubscribe: true by default).
    return new Promise((resolve, reject) => {
      const map = { [topic]: { qos: 1 } } as ISubscriptionMap;
      map.resubscribe = true; // mqtt.js would otherwise skip a topic it has subscribed already
      client.subscribe(map, (err) => (err ? reject(err) : resolve()));
      if (!client.connected) resolve(); // queued until connected; do not block start on a missing broker
    });
  }

  /** Publishes "offline" (retained) when connected, then disconnects cleanly (no last will). */
  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.stopping = true;
    if (client.connected) {
      await Promise.race([
        new Promise<void>((resolve) =>
          client.publish(this.topics.status, 'offline', { qos: 1, retain: true }, () => resolve()),
        ),
        new Promise<void>((resolve) => setTimeout(resolve, 2000)),
      ]);
    }
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    this.onState(false);
    this.client = undefined;
  }
}

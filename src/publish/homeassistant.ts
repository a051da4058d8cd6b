/**
 * Home Assistant MQTT discovery: an `event` entity for recognitions and sensors for the
 * last person, frames per second and model version. Configs are retained and re-sent
 * whenever Home Assistant announces itself (`<prefix>/status` = "online").
 * https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery
 */
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import type { Topics } from './topics.js';
import type { MqttPort } from './mqtt.js';

export interface DiscoveryMessage {
  readonly topic: string;
  readonly config: Record<string, unknown>;
}

/** What else the kiosk runs that Home Assistant should see. */
export interface DiscoveryOptions {
  /** Door access (access.enabled): a `lock` entity for the door and an `event` entity for access decisions. */
  readonly door?: string | null;
}

/** The discovery configs for one kiosk (pure: tested on its own). */
export function discoveryMessages(topics: Topics, version: string, o: DiscoveryOptions = {}): DiscoveryMessage[] {
  const node = topics.haNodeId;
  const device = {
    identifiers: [node],
    name: `facegate ${topics.kioskId}`,
    manufacturer: 'facegate',
    model: 'face recognition kiosk',
    sw_version: version,
  };
  const common = {
    availability_topic: topics.status,
    payload_available: 'online',
    payload_not_available: 'offline',
    device,
  };
  const door: DiscoveryMessage[] = o.door
    ? [
        {
          topic: topics.haConfig('lock', 'door'),
          config: {
            ...common,
            name: `Door ${o.door}`,
            unique_id: `${node}_door`,
            object_id: `${node}_door`,
            state_topic: topics.door,
            value_template:
              "{{ 'OPEN' if value_json.contact == 'open' else ('UNLOCKED' if value_json.lock == 'unlocked' else 'LOCKED') }}",
            json_attributes_topic: topics.door,
            // HA requires a command topic. The kiosk opens only for a signed, time-limited,
            // single-use command (facegate door unlock-command); a bare UNLOCK is refused and logged.
            command_topic: topics.doorUnlock,
            payload_unlock: 'UNLOCK',
            payload_lock: 'LOCK',
            optimistic: false,
            icon: 'mdi:door',
          },
        },
        {
          topic: topics.haConfig('event', 'access'),
          config: {
            ...common,
            name: 'Access',
            unique_id: `${node}_access`,
            object_id: `${node}_access`,
            state_topic: topics.access,
            event_types: ['granted', 'denied'],
            value_template:
              '{{ {"event_type": value_json.result, "reason": value_json.reason, "person": value_json.personName, "door": value_json.door, "source": value_json.source, "requested_by": value_json.requestedBy, "seq": value_json.seq} | to_json }}',
            icon: 'mdi:door-closed-lock',
          },
        },
      ]
    : [];
  return [
    ...door,
    {
      topic: topics.haConfig('event', 'recognition'),
      config: {
        ...common,
        name: 'Recognition',
        unique_id: `${node}_recognition`,
        object_id: `${node}_recognition`,
        state_topic: topics.events,
        event_types: ['recognized', 'unknown'],
        // HA wants {"event_type": ...}; the other keys become event attributes.
        value_template:
          '{{ {"event_type": value_json.kind, "name": value_json.name, "score": value_json.score, "model_version": value_json.modelVersion, "delayed": value_json.delayed, "event_id": value_json.id} | to_json }}',
        icon: 'mdi:face-recognition',
      },
    },
    {
      topic: topics.haConfig('sensor', 'last_person'),
      config: {
        ...common,
        name: 'Last person',
        unique_id: `${node}_last_person`,
        object_id: `${node}_last_person`,
        state_topic: topics.state,
        value_template: '{{ value_json.lastPerson if value_json.lastPerson is not none else "nobody" }}',
        json_attributes_topic: topics.state,
        icon: 'mdi:account',
      },
    },
    {
      topic: topics.haConfig('sensor', 'fps'),
      config: {
        ...common,
        name: 'Frames per second',
        unique_id: `${node}_fps`,
        object_id: `${node}_fps`,
        state_topic: topics.state,
        value_template: '{{ value_json.fps }}',
        unit_of_measurement: 'fps',
        state_class: 'measurement',
        entity_category: 'diagnostic',
        icon: 'mdi:camera-timer',
      },
    },
    {
      topic: topics.haConfig('sensor', 'model_version'),
      config: {
        ...common,
        name: 'Model version',
        unique_id: `${node}_model_version`,
        object_id: `${node}_model_version`,
        state_topic: topics.state,
        value_template: '{{ value_json.modelVersion }}',
        entity_category: 'diagnostic',
        icon: 'mdi:brain',
      },
    },
  ];
}

export class HomeAssistantDiscovery {
  private readonly log: Logger = moduleLogger('homeassistant');

  constructor(
    private readonly mqtt: MqttPort,
    private readonly version: string,
    private readonly options: DiscoveryOptions = {},
  ) {}

  async start(): Promise<void> {
    this.mqtt.onConnect(() => {
      void this.announce();
    });
    await this.mqtt.subscribeAbsolute(this.mqtt.topics.haStatus, (_topic, payload) => {
      if (payload.toString('utf8').trim() === 'online') {
        this.log.info('Home Assistant came online: re-announcing discovery');
        void this.announce();
      }
    });
    if (this.mqtt.connected) await this.announce();
  }

  async announce(): Promise<void> {
    try {
      await Promise.all(
        discoveryMessages(this.mqtt.topics, this.version, this.options).map((m) =>
          this.mqtt.publishAbsolute(m.topic, JSON.stringify(m.config), { qos: 1, retain: true }),
        ),
      );
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'discovery not published');
    }
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

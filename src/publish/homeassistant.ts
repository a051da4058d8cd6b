/**
 * Home Assistant MQTT discovery: an `event` entity for recognitions and sensors for the
 * last person, frames per second and model version; with door access, binary sensors for
 * the door's lock (and its contact) and an `event` entity for access decisions. Configs
 * are retained and re-sent whenever Home Assistant announces itself (`<prefix>/status` =
 * "online").
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
  /** Door access (access.enabled): the door's name; adds its lock state and access decisions. */
  readonly door?: string | null;
  /** The door has a contact (door.contact.type is not "none"): adds whether the door stands open. */
  readonly contact?: boolean;
}

/**
 * Discovery topics of entities the kiosk no longer offers, cleared with an empty retained
 * config so Home Assistant removes them. The door was a `lock` entity until its UNLOCK
 * button was dropped: the kiosk refuses a bare UNLOCK (only signed, time-limited commands
 * open the door), so the button could only ever fail.
 */
export function staleDiscoveryTopics(topics: Topics): string[] {
  return [topics.haConfig('lock', 'door')];
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
  // The door's state only, as binary sensors: nothing Home Assistant can send opens the door
  // (a remote unlock must be signed by an operator key), so it gets no button that would fail.
  const door: DiscoveryMessage[] = o.door
    ? [
        {
          topic: topics.haConfig('binary_sensor', 'door_lock'),
          config: {
            ...common,
            name: `Door ${o.door} lock`,
            unique_id: `${node}_door_lock`,
            object_id: `${node}_door_lock`,
            state_topic: topics.door,
            // device_class lock: on = unlocked, off = locked.
            device_class: 'lock',
            value_template: "{{ 'ON' if value_json.lock == 'unlocked' else 'OFF' }}",
            json_attributes_topic: topics.door,
          },
        },
        ...(o.contact
          ? [
              {
                topic: topics.haConfig('binary_sensor', 'door_contact'),
                config: {
                  ...common,
                  name: `Door ${o.door}`,
                  unique_id: `${node}_door_contact`,
                  object_id: `${node}_door_contact`,
                  state_topic: topics.door,
                  // device_class door: on = open, off = closed; "None" (contact not read yet) = unknown.
                  device_class: 'door',
                  value_template:
                    "{{ 'ON' if value_json.contact == 'open' else ('OFF' if value_json.contact == 'closed' else 'None') }}",
                },
              },
            ]
          : []),
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

  /** Whether this start already cleared the stale configs (once is enough: the retained config is gone). */
  private staleCleared = false;

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
      const clear = this.staleCleared ? [] : staleDiscoveryTopics(this.mqtt.topics);
      await Promise.all([
        ...clear.map((t) => this.mqtt.publishAbsolute(t, '', { qos: 1, retain: true })),
        ...discoveryMessages(this.mqtt.topics, this.version, this.options).map((m) =>
          this.mqtt.publishAbsolute(m.topic, JSON.stringify(m.config), { qos: 1, retain: true }),
        ),
      ]);
      this.staleCleared = true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'discovery not published');
    }
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}

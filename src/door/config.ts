/**
 * The `door` section of the kiosk configuration (included by src/config/schema.ts): the
 * outputs that open a door (GPIO relay, MQTT command, HTTP webhook), the optional door
 * contact, and the signed remote unlock. Used only when access.enabled is true.
 */
import { z } from 'zod';

const gpioLine = (what: string, line: number) =>
  z
    .object({
      chip: z
        .string()
        .min(1)
        .describe('GPIO chip (gpiochip0 on a Raspberry Pi; `gpiodetect` lists them)')
        .default('gpiochip0'),
      line: z
        .number()
        .int()
        .nonnegative()
        .describe(`line offset of the ${what} on the chip (BCM number on a Pi)`)
        .default(line),
      activeLow: z
        .boolean()
        .describe(`the ${what} is active when the pin is low (most opto-isolated relay boards)`)
        .default(true),
    })
    .strict();

export const doorConfigSchema = z
  .object({
    pulseMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .describe('how long an opening keeps the relay on / the door released (milliseconds)')
      .default(3000),
    relay: gpioLine('relay', 5) // BCM 5 is pulled up at boot: an active-low relay stays off until facegate drives it
      .extend({
        enabled: z
          .boolean()
          .describe('drive a relay through the GPIO character device (libgpiod tools)')
          .default(false),
        gpioset: z.string().min(1).describe('the libgpiod 1.x gpioset program').default('gpioset'),
      })
      .describe('GPIO relay: active for pulseMs on a grant, inactive otherwise (also at start and stop)')
      .prefault({}),
    mqtt: z
      .object({
        enabled: z.boolean().describe('send a command to an external door controller over MQTT').default(false),
        topic: z
          .string()
          .regex(/^[^+#]*$/, 'must not contain + or #')
          .describe(
            'absolute topic of the controller (Tasmota: cmnd/door/POWER; Shelly: shellies/door/relay/0/command)',
          )
          .default(''),
        payload: z.string().describe('payload that opens the door (QoS 1, never retained)').default('ON'),
        offPayload: z
          .string()
          .describe('payload sent pulseMs later to close again; empty = the controller times out itself')
          .default(''),
      })
      .strict()
      .describe('MQTT command to an external door controller (ESPHome, Tasmota, Shelly)')
      .prefault({}),
    webhook: z
      .object({
        enabled: z.boolean().describe('POST each opening to an HTTP endpoint').default(false),
        url: z.string().describe('endpoint (https:// outside a trusted network)').default(''),
        secret: z
          .string()
          .describe('shared secret for the HMAC-SHA256 signature; prefer secretFile or FACEGATE__DOOR__WEBHOOK__SECRET')
          .default(''),
        secretFile: z.string().describe('file whose first line is the shared secret (overrides secret)').default(''),
        timeoutMs: z
          .number()
          .int()
          .positive()
          .describe('give up a request after this long (milliseconds)')
          .default(5000),
      })
      .strict()
      .describe('HTTP webhook signed with a shared secret (X-Facegate-Signature, X-Facegate-Timestamp)')
      .prefault({}),
    contact: z
      .object({
        type: z
          .enum(['none', 'gpio', 'mqtt'])
          .describe('door contact input: none, a GPIO line, or an MQTT topic')
          .default('none'),
        gpio: gpioLine('door contact', 17)
          .extend({
            gpiomon: z.string().min(1).describe('the libgpiod 1.x gpiomon program').default('gpiomon'),
            gpioget: z.string().min(1).describe('the libgpiod 1.x gpioget program').default('gpioget'),
            openWhenActive: z
              .boolean()
              .describe(
                'the contact reads active when the door is open (a reed switch that opens with the door: false)',
              )
              .default(true),
          })
          .describe('contact.type = "gpio"')
          .prefault({ line: 27 }),
        mqtt: z
          .object({
            topic: z
              .string()
              .regex(/^[^+#]*$/, 'must not contain + or #')
              .describe('absolute topic of the contact')
              .default(''),
            openPayload: z.string().describe('payload meaning open').default('open'),
            closedPayload: z.string().describe('payload meaning closed').default('closed'),
          })
          .strict()
          .describe('contact.type = "mqtt"')
          .prefault({}),
        heldOpenSeconds: z
          .number()
          .positive()
          .describe('an opened door still open after this long raises "door held"')
          .default(30),
        graceMs: z
          .number()
          .int()
          .nonnegative()
          .describe('after a pulse ends the door may still be pushed open for this long without "door forced"')
          .default(5000),
      })
      .strict()
      .describe('optional door contact for door-forced and held-open alarms')
      .prefault({}),
    remoteUnlock: z
      .object({
        enabled: z
          .boolean()
          .describe('accept signed, time-limited, single-use unlock commands on <base>/<kiosk>/door/unlock')
          .default(false),
        publicKeys: z
          .array(z.string().min(1))
          .describe('operator Ed25519 public keys (PEM text or .pub files from facegate keygen) allowed to unlock')
          .default([]),
        maxTtlSeconds: z
          .number()
          .int()
          .positive()
          .max(3600)
          .describe('longest validity a command may carry; longer ones are refused')
          .default(120),
      })
      .strict()
      .describe('remote unlock (Home Assistant, an operator) with an operator key')
      .prefault({}),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.mqtt.enabled && !d.mqtt.topic)
      ctx.addIssue({
        code: 'custom',
        path: ['mqtt', 'topic'],
        message: 'give the controller topic, or disable door.mqtt',
      });
    if (d.webhook.enabled && !d.webhook.url)
      ctx.addIssue({
        code: 'custom',
        path: ['webhook', 'url'],
        message: 'give the webhook url, or disable door.webhook',
      });
    if (d.webhook.enabled && !d.webhook.secret && !d.webhook.secretFile)
      ctx.addIssue({
        code: 'custom',
        path: ['webhook', 'secret'],
        message: 'a webhook needs a shared secret (secretFile or FACEGATE__DOOR__WEBHOOK__SECRET)',
      });
    if (d.contact.type === 'mqtt' && !d.contact.mqtt.topic)
      ctx.addIssue({ code: 'custom', path: ['contact', 'mqtt', 'topic'], message: 'give the contact topic' });
    if (d.remoteUnlock.enabled && d.remoteUnlock.publicKeys.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['remoteUnlock', 'publicKeys'],
        message: 'remote unlock needs at least one operator public key (facegate keygen --out DIR)',
      });
  })
  .describe('door outputs (relay, MQTT command, webhook), door contact and remote unlock')
  .prefault({});

export type DoorConfig = z.output<typeof doorConfigSchema>;

/**
 * The configuration of `facegate run`, declared once. Every key has a description and a
 * default; the TypeScript types come from this schema. Sections reject unknown keys so a
 * typo stops the start instead of being silently ignored.
 */
import { galleryConfigSchema } from '../gallery/config.js';
import { z } from 'zod';
import { deciderOptionsSchema } from '../decide/config.js';
import { updatesConfigSchema } from '../update/config.js';
import { precisionChoices } from '../model/manifest.js';
import { accessConfigSchema } from '../access/config.js';
import { doorConfigSchema } from '../door/config.js';
import { httpSchema } from '../web/config.js';

const ms = (what: string, dflt: number) =>
  z.number().int().nonnegative().describe(`${what} (milliseconds)`).default(dflt);

export const cameraTypes = ['webcam', 'ffmpeg', 'directory'] as const;
export type CameraType = (typeof cameraTypes)[number];

export const cameraSchema = z
  .object({
    type: z
      .enum(cameraTypes)
      .describe(
        'camera source: "webcam" (node-webcam / fswebcam), "ffmpeg" (V4L2 device, RTSP stream or video file, piped as MJPEG) or "directory" (replays image files in name order)',
      )
      .default('webcam'),
    name: z.string().min(1).describe('camera name used in logs and frames').default('door'),
    fps: z
      .number()
      .positive()
      .max(120)
      .describe('frames per second to capture (directory: replay rate; ffmpeg: output rate; webcam: poll rate)')
      .default(5),
    width: z.number().int().positive().describe('capture width in pixels (webcam and ffmpeg)').default(640),
    height: z.number().int().positive().describe('capture height in pixels (webcam and ffmpeg)').default(480),
    maxImagePixels: z
      .number()
      .int()
      .positive()
      .describe(
        'images (frames, enrolment photos) with more pixels are refused before they are decoded, so one huge image cannot exhaust memory',
      )
      .default(24_000_000),
    queueSize: z
      .number()
      .int()
      .positive()
      .max(1000)
      .describe(
        'frames waiting for recognition; when full the oldest is dropped and counted, so capture never waits for inference',
      )
      .default(2),
    reopen: z
      .object({
        initialDelayMs: ms('first delay before reopening a failed camera', 1000),
        maxDelayMs: ms('longest delay between reopen attempts (exponential backoff)', 30000),
        factor: z.number().min(1).describe('backoff multiplier after each failed attempt').default(2),
        stallTimeoutMs: ms(
          'a camera that delivers no frame for this long is considered failed and reopened; 0 disables',
          10000,
        ),
      })
      .strict()
      .describe('reopening a camera that fails or disappears')
      .prefault({}),
    webcam: z
      .object({
        device: z.string().describe('video device for fswebcam; empty = the first camera').default('/dev/video0'),
        command: z.string().describe('capture program node-webcam calls (fswebcam on Linux)').default('fswebcam'),
        skipFrames: z
          .number()
          .int()
          .nonnegative()
          .describe('frames fswebcam skips before grabbing (lets auto exposure settle)')
          .default(0),
      })
      .strict()
      .describe('camera.type = "webcam"')
      .prefault({}),
    ffmpeg: z
      .object({
        input: z
          .string()
          .describe('what ffmpeg reads: a V4L2 device (/dev/video0), an RTSP URL or a video file')
          .default(''),
        path: z.string().describe('ffmpeg executable').default('ffmpeg'),
        inputArgs: z
          .array(z.string())
          .describe('extra ffmpeg arguments placed before -i (for example ["-f","v4l2","-input_format","mjpeg"])')
          .default([]),
        rtspTransport: z.enum(['tcp', 'udp']).describe('RTSP transport (only for rtsp:// inputs)').default('tcp'),
        quality: z.number().int().min(2).max(31).describe('MJPEG quality passed as -q:v (2 = best)').default(5),
        loop: z.boolean().describe('loop a video file forever (-stream_loop -1)').default(false),
      })
      .strict()
      .describe('camera.type = "ffmpeg"')
      .prefault({}),
    directory: z
      .object({
        path: z.string().describe('folder of image files replayed in name order').default(''),
        loop: z
          .boolean()
          .describe(
            'start again from the first file after the last one; when false the camera ends after the last file',
          )
          .default(false),
      })
      .strict()
      .describe('camera.type = "directory"')
      .prefault({}),
  })
  .strict()
  .describe('where frames come from')
  .prefault({});

export const modelSchema = z
  .object({
    dir: z
      .string()
      .describe(
        'model directory written by `facegate train` / `facegate export` / `facegate quantize` (contains manifest.json)',
      )
      .default('models/current'),
    threads: z.number().int().positive().max(64).describe('onnxruntime intra-op threads').default(1),
    precision: z
      .enum(precisionChoices)
      .describe(
        'which model file to run: auto (of the files that pass the accuracy check — model.onnx always, model.int8.onnx when its recorded check agreed with fp32 on ≥ 99 % of images — the one that runs faster on this device, timed at load), int8 or fp32',
      )
      .default('auto'),
    minFaceSize: z
      .number()
      .int()
      .positive()
      .describe('ignore faces smaller than this (pixels, longer box side)')
      .default(40),
    minSharpness: z
      .number()
      .nonnegative()
      .describe('ignore blurred faces: minimum variance of the Laplacian of the face crop')
      .default(5),
    minDetectionScore: z
      .number()
      .min(0)
      .max(1)
      .describe('face detector confidence needed to consider a face')
      .default(0.5),
    maxFaces: z.number().int().positive().describe('most faces handled per frame').default(10),
    detectorSize: z
      .number()
      .int()
      .min(128)
      .max(512)
      .multipleOf(32)
      .describe(
        "the face detector input's longer side in pixels (a multiple of 32; the shorter side follows the frame's aspect): 256 as BlazeFace was trained. 192 costs ~0.6× the detector time, but moves boxes and keypoints ~4 % of the face side and misses more faces under ~90 px in a 640×480 frame; the gallery's calibrations were fitted at 256, and at 192 more left-out strangers passed on a grey-scale set (docs/decisions/speed.md)",
      )
      .default(256),
    detectorCacheDir: z
      .string()
      .describe(
        'the cache folder where `facegate models prepare` put the built-in models (face detector) as ONNX; empty = $FACEGATE_CACHE, else ~/.cache/facegate',
      )
      .default(''),
  })
  .strict()
  .describe('the recognition model')
  .prefault({});

/** Owned by src/decide (k-of-n voting per tracked face, cooldown per person). */
export const decideSchema = deciderOptionsSchema
  .describe(
    'turning per-frame matches into decisions: a person is named when k of the last n frames of a tracked face agree',
  )
  .prefault({});

export const mqttSchema = z
  .object({
    url: z
      .string()
      .describe('broker URL (mqtt://, mqtts://, ws://, wss://); empty = start an embedded broker on loopback')
      .default(''),
    baseTopic: z
      .string()
      .min(1)
      .regex(/^[^+#]+$/, 'must not contain + or #')
      .describe('first topic level; topics are <baseTopic>/<kioskId>/...')
      .default('facegate'),
    kioskId: z
      .string()
      .min(1)
      .regex(/^[^/+#]+$/, 'must not contain /, + or #')
      .refine((id) => id !== 'fleet', 'must not be "fleet" (that level carries fleet-wide model offers)')
      .describe("this kiosk's id, the second topic level")
      .default('kiosk'),
    protocolVersion: z
      .union([z.literal(5), z.literal(4)])
      .describe('MQTT protocol version: 5, or 4 for MQTT 3.1.1')
      .default(5),
    clientId: z.string().describe('MQTT client id; empty = facegate-<kioskId>').default(''),
    username: z.string().describe('user name; empty = none').default(''),
    password: z
      .string()
      .describe('password; prefer passwordFile or FACEGATE__MQTT__PASSWORD; never logged')
      .default(''),
    passwordFile: z.string().describe('file whose first line is the password (overrides password)').default(''),
    maxPacketBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(256 * 1024 * 1024)
      .describe(
        'largest MQTT message the kiosk reads (bytes); larger ones are skipped as they arrive, never held in memory. Must exceed the update chunk size and the largest offer',
      )
      .default(16 * 1024 * 1024),
    keepaliveSeconds: z.number().int().positive().describe('keepalive interval').default(30),
    reconnectMs: ms('delay between reconnect attempts', 2000),
    connectTimeoutMs: ms('give up one connection attempt after this long', 10000),
    tls: z
      .object({
        ca: z.string().describe('CA certificate file (PEM); empty = system CAs').default(''),
        cert: z.string().describe('client certificate file (PEM) for mutual TLS; empty = none').default(''),
        key: z.string().describe('client private key file (PEM); empty = none').default(''),
        rejectUnauthorized: z
          .boolean()
          .describe('verify the broker certificate (leave true outside tests)')
          .default(true),
      })
      .strict()
      .describe('TLS for mqtts:// and wss:// URLs')
      .prefault({}),
    embedded: z
      .object({
        host: z
          .string()
          .describe('address the embedded broker listens on (loopback keeps it private)')
          .default('127.0.0.1'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .describe('port of the embedded broker; 0 = any free port')
          .default(1883),
      })
      .strict()
      .describe('the embedded aedes broker used when mqtt.url is empty')
      .prefault({}),
    outbox: z
      .object({
        maxEvents: z
          .number()
          .int()
          .positive()
          .describe(
            'events kept on disk while the broker is unreachable; the oldest are dropped (and counted) beyond this',
          )
          .default(10000),
      })
      .strict()
      .describe('events waiting for the broker')
      .prefault({}),
    homeAssistant: z
      .object({
        enabled: z.boolean().describe('publish Home Assistant MQTT discovery configs').default(true),
        prefix: z.string().min(1).describe('Home Assistant discovery prefix').default('homeassistant'),
      })
      .strict()
      .describe('Home Assistant MQTT discovery')
      .prefault({}),
  })
  .strict()
  .describe('MQTT connection and topics')
  .prefault({});

/** Owned by src/web (the web app). */
export { httpSchema };

export const stateSchema = z
  .object({
    dir: z
      .string()
      .describe(
        'folder of the kiosk database (events, update history, people) and its lock: one kiosk per folder (systemd: /var/lib/facegate)',
      )
      .default('var'),
  })
  .strict()
  .describe('persistent state')
  .prefault({});

export const daemonSchema = z
  .object({
    shutdownTimeoutMs: ms('hard limit for a clean shutdown; after it the process exits anyway', 10000),
    exitWhenCameraEnds: z
      .boolean()
      .describe('stop the daemon when a non-looping directory camera has replayed every file')
      .default(false),
  })
  .strict()
  .describe('process behaviour')
  .prefault({});

export const logSchema = z
  .object({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .describe('pino log level')
      .default('info'),
  })
  .strict()
  .describe('logging')
  .prefault({});

export const configSchema = z
  .object({
    camera: cameraSchema,
    model: modelSchema,
    decide: decideSchema,
    mqtt: mqttSchema,
    http: httpSchema,
    state: stateSchema,
    daemon: daemonSchema,
    log: logSchema,
    updates: updatesConfigSchema,
    gallery: galleryConfigSchema,
    access: accessConfigSchema,
    door: doorConfigSchema,
  })
  .strict()
  .describe('facegate run configuration');

export type Config = z.infer<typeof configSchema>;
export type CameraConfig = Config['camera'];
export type MqttConfig = Config['mqtt'];

/**
 * The `http` section: the web app's address, the admin login and the live view. Owned by
 * src/web (the one owner of the HTTP server); assembled into the config schema.
 */
import { z } from 'zod';

export const httpSchema = z
  .object({
    enabled: z.boolean().describe('serve the kiosk screen, the admin page, /healthz and /metrics').default(true),
    host: z
      .string()
      .describe(
        'address to listen on; loopback by default. A non-loopback address (0.0.0.0, a LAN address) needs http.admin.passwordHash set, or the start is refused',
      )
      .default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).describe('port; 0 = any free port').default(9464),
    admin: z
      .object({
        passwordHash: z
          .string()
          .describe(
            'scrypt hash of the admin password, written by `facegate admin set-password`; empty = the admin page stays locked until one is set',
          )
          .default(''),
        sessionMinutes: z
          .number()
          .int()
          .positive()
          .max(7 * 24 * 60)
          .describe('an admin session expires this long after its last use')
          .default(30),
        loginAttemptsPerMinute: z
          .number()
          .int()
          .positive()
          .describe('login attempts allowed per client address per minute; more are refused with 429')
          .default(5),
        eventThumbnails: z
          .boolean()
          .describe(
            'show a small picture of the face with each recent event on the admin page: JPEG files (0600) in state.dir/event-thumbnails for the last 100 events, erased at start and stop and when the person is removed; off = no face picture is stored',
          )
          .default(false),
      })
      .strict()
      .describe('the admin page and the API calls that change something')
      .prefault({}),
    live: z
      .object({
        maxFps: z
          .number()
          .positive()
          .max(30)
          .describe(
            'most camera frames a second sent to each browser; frames a slow browser cannot take are dropped, never queued',
          )
          .default(5),
      })
      .strict()
      .describe('the live camera view of the kiosk screen and the admin page')
      .prefault({}),
  })
  .strict()
  .describe('the web app: kiosk screen (/), admin page (/admin), health (/healthz) and Prometheus metrics (/metrics)')
  .prefault({});

export type HttpConfig = z.infer<typeof httpSchema>;

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/**
 * The web app (fastify): the ONE HTTP server of the daemon.
 *
 *   GET /                 kiosk screen (read-only, no login)
 *   GET /admin            admin page (its data needs a login)
 *   GET /healthz          200 when ready (camera delivering, model loaded), else 503
 *   GET /metrics          Prometheus metrics
 *   GET /api/live         server-sent events: faces, decisions, status (health, door)
 *   GET /api/live.mjpg    the camera view (MJPEG)
 *   POST /api/login, /api/logout, GET /api/session
 *   /api/admin/*          people, events, status: session cookie; changes also need the CSRF header
 *
 * Sessions are an HttpOnly, SameSite=Strict cookie; every request that changes something
 * carries the session's CSRF token in `x-csrf-token`. Login attempts are rate-limited per
 * client address. A non-loopback address without an admin password is refused at start.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import multipart from '@fastify/multipart';
import { z } from 'zod';
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import { FacegateError } from '../shared/errors.js';
import { redactConfig } from '../config/load.js';
import { Sessions, sameToken, verifyPassword, parseHash, type Session } from './auth.js';
import { isLoopback } from './config.js';
import { LiveFeed, decisionView, type DecisionView } from './live.js';
import { readTemperatures } from './thermal.js';
import { EventThumbnails } from './thumbnails.js';
import type { EnrolOptions, GalleryService, WebDeps } from './ports.js';

const SESSION_COOKIE = 'facegate_session';
const RECENT_EVENTS = 100;
const MAX_PHOTOS = 20;
const MAX_PHOTO_BYTES = 10 * 1024 * 1024;

/** The pages and their scripts, shipped beside the compiled code (src/web/public). */
export const publicDir = fileURLToPath(new URL('../../../src/web/public/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

// Pages allow only their own origin: no outside scripts, fonts or frames.
const CSP =
  "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

class WebRequestError extends FacegateError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const personPatchSchema = z
  .object({
    name: z.string().trim().min(1).max(100).optional(),
    groups: z.array(z.string().trim().min(1).max(60)).max(50).optional(),
    validFrom: z.iso.datetime({ offset: true }).nullable().optional(),
    validUntil: z.iso.datetime({ offset: true }).nullable().optional(),
  })
  .strict();

const enrolCameraSchema = z
  .object({
    name: z.string().trim().min(1).max(100),
    groups: z.array(z.string().trim().min(1).max(60)).max(50).optional(),
    validFrom: z.iso.datetime({ offset: true }).nullable().optional(),
    validUntil: z.iso.datetime({ offset: true }).nullable().optional(),
    frames: z.number().int().min(1).max(50).optional(),
    force: z.boolean().optional(),
  })
  .strict();

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success)
    throw new WebRequestError(
      400,
      r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '),
    );
  return r.data;
}

/** Masks every secret-looking value (passwords, tokens, hashes) of the effective config. */
export function hideSecrets(value: unknown, key = ''): unknown {
  if (/password|secret|token|privatekey/i.test(key)) return typeof value === 'string' && value === '' ? '' : '***';
  if (Array.isArray(value)) return value.map((v) => hideSecrets(v));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, hideSecrets(v, k)]));
  return value;
}

export class WebApp {
  private app: FastifyInstance | undefined;
  private readonly log: Logger = moduleLogger('web');
  private readonly files = new Map<string, { body: Buffer; type: string }>();
  private readonly sessions: Sessions;
  private live: LiveFeed | undefined;
  private readonly recent: DecisionView[] = [];
  private readonly models: { version: string; since: string }[] = [];
  private lastDecision: DecisionView | null = null;
  private stopDecisions: (() => void) | undefined;
  private stopFrames: (() => void) | undefined;
  private thumbs: EventThumbnails | undefined;
  private port = 0;

  constructor(private readonly deps: WebDeps) {
    this.sessions = new Sessions(deps.config.http.admin.sessionMinutes * 60_000);
  }

  get address(): string {
    const host = this.deps.config.http.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** Browsers connected now and frames sent / dropped (the soak benchmark reads it). */
  get liveStats(): LiveFeed['stats'] | undefined {
    return this.live?.stats;
  }

  async start(): Promise<void> {
    const cfg = this.deps.config.http;
    const hash = cfg.admin.passwordHash;
    if (hash) parseHash(hash);
    else if (!isLoopback(cfg.host))
      throw new FacegateError(
        `http.host is ${cfg.host}, reachable from the network, and no admin password is set; set one with: facegate admin set-password --config <your config file> (or set http.host to 127.0.0.1)`,
      );
    this.loadFiles();
    this.live = new LiveFeed(this.deps.bus, cfg.live.maxFps, () => this.screenStatus());
    if (cfg.admin.eventThumbnails) {
      const thumbs = new EventThumbnails(EventThumbnails.dirIn(this.deps.config.state.dir), RECENT_EVENTS);
      thumbs.start();
      this.thumbs = thumbs;
      this.stopFrames = this.deps.bus.on('frame', (f) => thumbs.frame(f));
    }
    this.stopDecisions = this.deps.bus.on('decision', (d) => {
      const v = decisionView(d);
      this.lastDecision = v;
      this.recent.unshift(v);
      if (this.recent.length > RECENT_EVENTS) this.recent.length = RECENT_EVENTS;
      this.noteModel(d.modelVersion);
      const thumbs = this.thumbs;
      if (thumbs)
        void thumbs.decision(d).then(() => {
          // People removed meanwhile (here or with facegate enrol remove) lose their pictures.
          const g = this.deps.gallery();
          if (g) thumbs.forgetRemoved((name) => g.get(name) !== undefined);
        });
    });
    const app = Fastify({ logger: false, bodyLimit: 1024 * 1024, trustProxy: false });
    this.app = app;
    await app.register(cookie);
    await app.register(rateLimit, { global: false });
    await app.register(multipart, { limits: { files: MAX_PHOTOS, fileSize: MAX_PHOTO_BYTES, fields: 10 } });
    app.setErrorHandler((err, _req, reply) => this.onError(err, reply));
    app.setNotFoundHandler((req, reply) =>
      reply.code(404).type('text/plain').send(`not found: ${req.url}; try /, /admin, /healthz or /metrics\n`),
    );
    this.routes(app);
    try {
      await app.listen({ host: cfg.host, port: cfg.port });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new FacegateError(
        `http.port: cannot listen on ${cfg.host}:${cfg.port} (${e.code ?? e.message}); set http.port to a free port or http.enabled to false`,
      );
    }
    this.port = (app.server.address() as AddressInfo).port;
    this.noteModel(this.deps.health().model ?? null);
    this.log.info({ url: this.address, admin: hash ? 'password set' : 'locked (no password)' }, 'web app served');
  }

  async stop(): Promise<void> {
    this.stopDecisions?.();
    this.stopFrames?.();
    this.thumbs?.stop();
    this.thumbs = undefined;
    this.live?.close();
    const app = this.app;
    this.app = undefined;
    if (!app) return;
    app.server.closeAllConnections();
    await app.close();
  }

  private loadFiles(): void {
    for (const name of readdirSync(publicDir)) {
      const type = CONTENT_TYPES[path.extname(name)];
      if (type) this.files.set(name, { body: readFileSync(path.join(publicDir, name)), type });
    }
    for (const need of ['screen.html', 'admin.html'])
      if (!this.files.has(need))
        throw new FacegateError(`${path.join(publicDir, need)} is missing; reinstall facegate (npm ci)`);
  }

  private noteModel(version: string | null): void {
    if (!version || this.models[0]?.version === version) return;
    this.models.unshift({ version, since: new Date().toISOString() });
    if (this.models.length > 20) this.models.length = 20;
  }

  private screenStatus(): unknown {
    const h = this.deps.health();
    this.noteModel(h.model ?? null);
    return {
      camera: h.camera,
      broker: h.broker,
      ready: h.ready,
      model: h.model ?? null,
      door: this.deps.door()?.state() ?? null,
      at: new Date().toISOString(),
    };
  }

  private sendFile(reply: FastifyReply, name: string): FastifyReply {
    const f = this.files.get(name);
    if (!f) return reply.code(404).type('text/plain').send('not found\n');
    return reply
      .type(f.type)
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(f.body);
  }

  private onError(err: unknown, reply: FastifyReply): FastifyReply {
    if (err instanceof WebRequestError) return reply.code(err.status).send({ error: err.message });
    const e = err as Error & { statusCode?: number; code?: unknown };
    if (err instanceof FacegateError) {
      // The gallery's refusals (EnrolmentRefused) carry a code; every FacegateError says what to do.
      return reply.code(typeof e.code === 'string' ? 422 : 400).send({ error: e.message, code: e.code ?? null });
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500)
      return reply.code(e.statusCode).send({ error: e.message });
    this.log.error({ err: e.message }, 'request failed');
    return reply.code(500).send({ error: `internal error: ${e.message}` });
  }

  // ---------- authentication ----------

  private session(req: FastifyRequest): Session | undefined {
    return this.sessions.touch(req.cookies[SESSION_COOKIE]);
  }

  /** A valid session for reads; for changes also the CSRF token. */
  private requireAdmin(req: FastifyRequest): Session {
    const s = this.session(req);
    if (!s) throw new WebRequestError(401, 'log in first (POST /api/login); sessions expire after inactivity');
    if (req.method !== 'GET' && req.method !== 'HEAD' && !sameToken(headerOf(req, 'x-csrf-token'), s.csrf))
      throw new WebRequestError(403, 'missing or wrong x-csrf-token header; reload the admin page');
    return s;
  }

  private gallery(): GalleryService {
    const g = this.deps.gallery();
    if (!g) throw new WebRequestError(503, 'the gallery is not running on this kiosk; check the daemon log');
    return g;
  }

  // ---------- routes ----------

  private routes(app: FastifyInstance): void {
    const cfg = this.deps.config.http;
    app.get('/healthz', (_req, reply) => {
      const h = this.deps.health();
      return reply
        .code(h.ready ? 200 : 503)
        .type('application/json')
        .send(`${JSON.stringify(h)}\n`);
    });
    app.get('/metrics', async (_req, reply) =>
      reply.type(this.deps.registry.contentType).send(await this.deps.registry.metrics()),
    );
    app.get('/', (_req, reply) => this.sendFile(reply, 'screen.html'));
    app.get('/admin', (_req, reply) => this.sendFile(reply, 'admin.html'));
    app.get<{ Params: { file: string } }>('/assets/:file', (req, reply) => this.sendFile(reply, req.params.file));

    app.get('/api/screen', () => ({ status: this.screenStatus(), lastDecision: this.lastDecision }));
    app.get('/api/live', (_req, reply) => {
      reply.hijack();
      this.live?.addEventClient(reply.raw);
    });
    app.get('/api/live.mjpg', (_req, reply) => {
      reply.hijack();
      this.live?.addVideoClient(reply.raw);
    });

    app.get('/api/session', (req) => {
      const s = this.session(req);
      return { authenticated: !!s, csrf: s?.csrf ?? null, passwordSet: cfg.admin.passwordHash !== '' };
    });
    app.post<{ Body: unknown }>(
      '/api/login',
      { config: { rateLimit: { max: cfg.admin.loginAttemptsPerMinute, timeWindow: 60_000 } } },
      async (req, reply) => {
        const { password } = parseBody(z.object({ password: z.string().max(1024) }).strict(), req.body);
        const hash = cfg.admin.passwordHash;
        if (!hash)
          throw new WebRequestError(
            403,
            'no admin password is set; on the kiosk run: facegate admin set-password --config <your config file>, then restart facegate',
          );
        if (!(await verifyPassword(password, hash))) {
          this.log.warn({ from: req.ip }, 'admin login refused');
          throw new WebRequestError(401, 'wrong password');
        }
        this.sessions.end(req.cookies[SESSION_COOKIE]);
        const s = this.sessions.create();
        this.log.info({ from: req.ip }, 'admin logged in');
        return reply
          .setCookie(SESSION_COOKIE, s.id, {
            httpOnly: true,
            sameSite: 'strict',
            path: '/',
            secure: req.protocol === 'https',
          })
          .send({ csrf: s.csrf });
      },
    );
    app.post('/api/logout', (req, reply) => {
      const s = this.session(req);
      if (s && !sameToken(headerOf(req, 'x-csrf-token'), s.csrf))
        throw new WebRequestError(403, 'missing or wrong x-csrf-token header; reload the admin page');
      this.sessions.end(s?.id);
      return reply.clearCookie(SESSION_COOKIE, { path: '/' }).send({ ok: true });
    });

    // Everything under /api/admin needs a session (and CSRF for changes).
    app.register(
      (admin, _o, done) => {
        admin.addHook('onRequest', (req, _reply, next) => {
          this.requireAdmin(req);
          next();
        });
        this.adminRoutes(admin);
        done();
      },
      { prefix: '/api/admin' },
    );
  }

  private adminRoutes(admin: FastifyInstance): void {
    admin.get<{ Querystring: { q?: string } }>('/people', (req) => {
      const g = this.deps.gallery();
      if (!g) return { available: false, people: [] };
      const q = (req.query.q ?? '').trim().toLowerCase();
      const people = g
        .list()
        .filter((p) => !q || p.name.toLowerCase().includes(q) || p.groups.some((x) => x.toLowerCase().includes(q)))
        .sort((a, b) => a.name.localeCompare(b.name));
      return { available: true, people };
    });
    admin.get<{ Params: { id: string } }>('/people/:id/thumbnail', (req, reply) => {
      const t = this.gallery().thumbnail(req.params.id);
      if (!t) return reply.code(404).send({ error: 'no thumbnail (enrolment crops are not kept, or no such person)' });
      return reply.type('image/jpeg').header('cache-control', 'no-store').send(t);
    });
    admin.get<{ Params: { id: string } }>('/people/:id/export', (req, reply) => {
      const g = this.gallery();
      const p = g.get(req.params.id);
      if (!p) throw new WebRequestError(404, `no person ${req.params.id}`);
      return reply
        .header('content-disposition', `attachment; filename="person-${p.id}.json"`)
        .send(g.exportPerson(p.id));
    });
    admin.patch<{ Params: { id: string }; Body: unknown }>('/people/:id', (req) => {
      const patch = parseBody(personPatchSchema, req.body);
      const person = this.gallery().update(req.params.id, patch);
      this.log.info({ id: person.id }, 'person updated');
      return { person };
    });
    admin.delete<{ Params: { id: string }; Querystring: { confirm?: string } }>('/people/:id', (req) => {
      const g = this.gallery();
      const p = g.get(req.params.id);
      if (!p) throw new WebRequestError(404, `no person ${req.params.id}`);
      // The page asks first; the API wants the name typed back too, so a stray request cannot erase anyone.
      if (req.query.confirm !== p.name)
        throw new WebRequestError(400, `to remove ${p.name}, repeat the name: ?confirm=${encodeURIComponent(p.name)}`);
      g.remove(p.id);
      this.thumbs?.forgetRemoved((name) => g.get(name) !== undefined);
      this.log.info({ id: p.id }, 'person removed');
      return { removed: p.id };
    });
    admin.post('/people/photos', async (req) => {
      const g = this.gallery();
      const fields: Record<string, string> = {};
      const photos: Buffer[] = [];
      for await (const part of req.parts()) {
        if (part.type === 'file') photos.push(await part.toBuffer());
        else fields[part.fieldname] = String(part.value);
      }
      const name = (fields.name ?? '').trim();
      if (!name) throw new WebRequestError(400, 'name: give the person a name');
      if (photos.length === 0) throw new WebRequestError(400, 'photos: choose at least one photo of the face');
      const result = await g.enrolPhotos(name, photos, enrolOptions(fields));
      this.log.info({ id: result.person.id, accepted: result.accepted }, 'person enrolled from photos');
      return result;
    });
    // Streams newline-delimited JSON: progress lines ({good, needed, hint}), then {result} or {error}.
    admin.post<{ Body: unknown }>('/people/camera', async (req, reply) => {
      const g = this.gallery();
      const body = parseBody(enrolCameraSchema, req.body);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' });
      const line = (v: unknown): void => {
        if (!res.writableEnded) res.write(`${JSON.stringify(v)}\n`);
      };
      try {
        const result = await g.enrolFromCamera(
          body.name,
          {
            ...(body.groups ? { groups: body.groups } : {}),
            ...(body.validFrom !== undefined ? { validFrom: body.validFrom } : {}),
            ...(body.validUntil !== undefined ? { validUntil: body.validUntil } : {}),
            ...(body.force !== undefined ? { force: body.force } : {}),
            ...(body.frames ? { frames: body.frames } : {}),
          },
          (p) => line({ progress: p }),
        );
        this.log.info({ id: result.person.id, accepted: result.accepted }, 'person enrolled from the camera');
        line({ result });
      } catch (err) {
        const e = err as Error & { code?: unknown };
        line({ error: e.message, code: typeof e.code === 'string' ? e.code : null });
      }
      res.end();
    });
    admin.get('/events', () => {
      const g = this.deps.gallery();
      if (g) this.thumbs?.forgetRemoved((name) => g.get(name) !== undefined);
      return {
        thumbnails: this.thumbs !== undefined,
        events: this.recent.map((e) => ({ ...e, thumbnail: this.thumbs?.has(e.seq) ?? false })),
      };
    });
    admin.get<{ Params: { seq: string } }>('/events/:seq/thumbnail', (req, reply) => {
      const t = this.thumbs?.read(Number(req.params.seq));
      if (!t)
        return reply
          .code(404)
          .send({ error: 'no thumbnail for this event (http.admin.eventThumbnails is off, or the event is too old)' });
      return reply.type('image/jpeg').header('cache-control', 'no-store').send(t);
    });
    admin.get('/status', async () => {
      const h = this.deps.health();
      this.noteModel(h.model ?? null);
      const metrics = await this.deps.registry.getMetricsAsJSON();
      const value = (name: string): number | null => {
        const m = metrics.find((x) => x.name === name);
        return m ? m.values.reduce((s, v) => s + v.value, 0) : null;
      };
      return {
        health: h,
        fps: value('facegate_fps'),
        framesIn: value('facegate_frames_in_total'),
        framesDropped: value('facegate_frames_dropped_total'),
        frameErrors: value('facegate_frame_errors_total'),
        temperatures: readTemperatures(this.deps.thermalDir),
        models: this.models,
        updates: this.deps.updates?.() ?? null,
        live: this.live?.stats ?? null,
        door: this.deps.door()?.state() ?? null,
        gallery: this.deps.gallery() ? 'running' : 'not running',
        config: hideSecrets(redactConfig(this.deps.config)),
      };
    });
  }
}

function headerOf(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function enrolOptions(fields: Record<string, string>): EnrolOptions {
  const o: EnrolOptions = {};
  const groups = (fields.groups ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (groups.length) o.groups = groups;
  const when = (k: string): string | null | undefined => {
    const v = (fields[k] ?? '').trim();
    if (!v) return undefined;
    const r = z.iso.datetime({ offset: true }).safeParse(v);
    if (!r.success) throw new WebRequestError(400, `${k}: expected an ISO date-time such as 2026-01-31T18:00:00Z`);
    return r.data;
  };
  const from = when('validFrom');
  const until = when('validUntil');
  if (from !== undefined) o.validFrom = from;
  if (until !== undefined) o.validUntil = until;
  if (fields.force === 'true') o.force = true;
  return o;
}

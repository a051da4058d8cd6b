/** `/healthz` (200 only when ready: camera delivering and model loaded) and `/metrics`. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import { FacegateError } from '../shared/errors.js';
import type { Registry } from 'prom-client';

export interface Health {
  readonly ready: boolean;
  readonly [key: string]: unknown;
}

export class HttpServer {
  private server: Server | undefined;
  private readonly log: Logger = moduleLogger('http');

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly registry: Registry,
    private readonly health: () => Health,
  ) {}

  get address(): string {
    const a = this.server?.address() as AddressInfo | null | undefined;
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${a?.port ?? this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (url === '/healthz') {
        const h = this.health();
        res.writeHead(h.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(h)}\n`);
        return;
      }
      if (url === '/metrics') {
        this.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
          },
          (err: Error) => {
            res.writeHead(500).end(err.message);
          },
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new FacegateError(
            `http.port: cannot listen on ${this.host}:${this.port} (${err.code ?? err.message}); set http.port to a free port or http.enabled to false`,
          ),
        ),
      );
      server.listen(this.port, this.host, () => resolve());
    });
    this.log.info({ url: this.address }, 'health and metrics served');
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

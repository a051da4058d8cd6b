/**
 * The embedded MQTT broker (aedes) used when no broker is configured: it listens on
 * loopback only, so a fresh kiosk works out of the box without exposing anything.
 */
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { moduleLogger } from '../shared/logger.js';
import { FacegateError } from '../shared/errors.js';

interface AedesLike {
  handle: (socket: Socket) => void;
  close: (cb?: () => void) => void;
}

export class EmbeddedBroker {
  private server: Server | undefined;
  private broker: AedesLike | undefined;
  private readonly log: Logger = moduleLogger('broker');
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** mqtt://host:port of the running broker. */
  get url(): string {
    const addr = this.server?.address() as AddressInfo | null | undefined;
    return `mqtt://${this.host}:${addr?.port ?? this.port}`;
  }

  async start(): Promise<void> {
    // aedes 1 is ESM-first and builds its persistence asynchronously.
    const { Aedes } = await import('aedes');
    const broker = (await Aedes.createBroker()) as unknown as AedesLike;
    this.broker = broker;
    const server = createServer((socket) => {
      socket.setNoDelay(true); // see ../shared/docs/FACTS.md: ~88 ms vs ~0.2 ms QoS 1 round trips
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      broker.handle(socket);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          new FacegateError(
            err.code === 'EADDRINUSE'
              ? `embedded MQTT broker: ${this.host}:${this.port} is in use (another broker?). Set mqtt.url to use that broker, or mqtt.embedded.port to another port`
              : `embedded MQTT broker cannot listen on ${this.host}:${this.port}: ${err.message}`,
          ),
        );
      });
      server.listen(this.port, this.host, () => resolve());
    });
    this.log.info({ url: this.url }, 'embedded MQTT broker listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    if (server)
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of this.sockets) s.destroy();
      });
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
  }
}

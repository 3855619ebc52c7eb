import net from 'node:net';

/**
 * A TCP proxy between the services and a shared server (PostgreSQL, RabbitMQ) that the fault suite
 * can cut and restore. Cutting one deployment's path is an outage for that deployment only: the
 * shared server keeps serving everyone else on the machine.
 *
 * `cut()` stops listening (new connections are refused, ECONNREFUSED) and destroys every open
 * connection (the peers see a reset); `restore()` listens again on the same port.
 */
export class TcpProxy {
  readonly targetHost: string;
  readonly targetPort: number;
  #port = 0;
  #server: net.Server | undefined;
  readonly #sockets = new Set<net.Socket>();
  #accepted = 0;

  private constructor(targetHost: string, targetPort: number) {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
  }

  /** Start a proxy on 127.0.0.1 (a free port) to `host:port`. */
  static async start(host: string, port: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(host, port);
    await proxy.#listen(0);
    return proxy;
  }

  /** The port the services connect to. */
  get port(): number {
    return this.#port;
  }

  /** True while cut. */
  get isCut(): boolean {
    return this.#server === undefined;
  }

  /** Connections accepted so far (a reconnecting client shows as new ones). */
  get accepted(): number {
    return this.#accepted;
  }

  /** Connections open right now. */
  get open(): number {
    return this.#sockets.size / 2;
  }

  /** `url` with its host and port replaced by this proxy's. */
  rewrite(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.#port);
    return parsed.toString();
  }

  /** Refuse new connections and reset every open one. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      this.#destroyAll();
      await closed;
    }
    this.#destroyAll();
  }

  /** Accept connections again, on the same port. */
  async restore(): Promise<void> {
    if (this.#server) return;
    await this.#listen(this.#port);
  }

  async close(): Promise<void> {
    await this.cut();
  }

  #destroyAll(): void {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  #listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.#pipe(client));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.#server = server;
        this.#port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  #pipe(client: net.Socket): void {
    this.#accepted++;
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    // Either side failing or closing ends both: the proxy never half-holds a connection.
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

import type { AddressInfo } from 'node:net';
import {
  type EndpointTable,
  Manager,
  type ManagerEnv,
  type PeriodicTaskTable,
  periodicTask,
} from '@stratus/core';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { ApiConfig } from './config.js';
import { IdentityStore } from './identity/store.js';
import { TokenStore } from './identity/tokens.js';

/**
 * The API service's manager (`stratus-api`, as Nova's `nova-api`): no RPC endpoints; it serves
 * HTTP from `initHost()` until `cleanupHost()`, so the Service machinery gives it a registry
 * record, heartbeats and graceful shutdown like any other service.
 */
export class ApiManager extends Manager {
  readonly rpcVersion = '1.0';
  readonly endpoints: EndpointTable = {};
  readonly config: ApiConfig;
  #app: FastifyInstance | undefined;
  #address: AddressInfo | undefined;

  constructor(config: ApiConfig, env: ManagerEnv) {
    super(env);
    this.config = config;
  }

  /** The Fastify instance once started. */
  get app(): FastifyInstance | undefined {
    return this.#app;
  }

  /** Where it listens (port 0 in config picks a free one). */
  get address(): AddressInfo | undefined {
    return this.#address;
  }

  /** The base URL it serves at, e.g. `http://127.0.0.1:8776`. */
  get url(): string | undefined {
    if (!this.#address) return undefined;
    const host = this.#address.family === 'IPv6' ? `[${this.#address.address}]` : this.#address.address;
    return `http://${host}:${this.#address.port}`;
  }

  override get periodicTasks(): PeriodicTaskTable {
    return {
      purge_expired_tokens: periodicTask(
        async () => {
          const purged = await new TokenStore(this.store).purgeExpired();
          if (purged) this.logger.info({ purged }, 'expired tokens purged');
        },
        { spacing: 3600 },
      ),
    };
  }

  /** Create configured users and projects that are missing, then listen. */
  override async initHost(): Promise<void> {
    const result = await new IdentityStore(this.store).bootstrap(this.config);
    if (result.usersCreated.length || result.projectsCreated.length) {
      this.logger.info(result, 'identity bootstrapped from config');
    }
    const app = await buildApp({
      store: this.store,
      rpc: this.env.rpc,
      config: this.config,
      logger: this.logger,
      serviceDownTimeSec: this.env.settings.serviceDownTime,
    });
    try {
      await app.listen({ host: this.config.listen.host, port: this.config.listen.port });
    } catch (error) {
      await app.close();
      throw error;
    }
    this.#app = app;
    this.#address = app.server.address() as AddressInfo;
    this.logger.info({ url: this.url }, `API listening on ${this.url}`);
  }

  /** Stop accepting connections and let in-flight requests finish. */
  override async cleanupHost(): Promise<void> {
    const app = this.#app;
    this.#app = undefined;
    await app?.close();
  }

  override async capabilities(): Promise<Record<string, unknown>> {
    return this.url ? { url: this.url } : {};
  }
}

import type { ResolvedConfig } from '../config/load.js';
import type { Driver, PluginEnv } from '../contracts/driver.js';
import type { RpcClient } from '../rpc/client.js';
import type { EndpointTable } from '../rpc/endpoints.js';
import type { PeriodicTaskTable } from '../service/periodic.js';
import type { Store } from '../store/database.js';

/** What a manager plugin's `create()` receives: the plugin env plus the service's facilities. */
export interface ManagerEnv extends PluginEnv {
  /** The service's name in config (`volume`) and its RPC topic. */
  readonly service: string;
  readonly topic: string;
  readonly store: Store;
  /** For calls to other services (compute → volume). */
  readonly rpc: RpcClient;
  /** The driver named in the service's config, created and configured; absent for driverless managers. */
  readonly driver?: Driver;
  /** The whole deployment config, defaults applied. */
  readonly settings: ResolvedConfig;
}

/**
 * The business logic of one topic. The Service hands it every RPC (through `endpoints`), ticks its
 * `periodicTasks`, and publishes `capabilities()` with each heartbeat.
 */
export abstract class Manager<D extends Driver = Driver> {
  readonly host: string;
  readonly topic: string;
  readonly env: ManagerEnv;

  constructor(env: ManagerEnv) {
    this.env = env;
    this.host = env.host;
    this.topic = env.topic;
  }

  get logger(): ManagerEnv['logger'] {
    return this.env.logger;
  }

  get store(): Store {
    return this.env.store;
  }

  /** The configured driver; throws when the service's config names none. */
  get driver(): D {
    if (!this.env.driver) {
      throw new Error(
        `${this.constructor.name} needs a driver: name one in services.${this.env.service}.driver`,
      );
    }
    return this.env.driver as D;
  }

  /** RPC API version this manager serves (`major.minor`). */
  abstract readonly rpcVersion: string;

  /** The RPC endpoints: wire name → args schema + handler. Only these are callable. */
  abstract readonly endpoints: EndpointTable;

  /** Periodic tasks by name; none by default. */
  get periodicTasks(): PeriodicTaskTable {
    return {};
  }

  /**
   * Called once at start, after the driver's setup checks passed and before the service consumes
   * RPCs: reconcile what the database says with what the backend has.
   */
  async initHost(): Promise<void> {}

  /** Called once at stop, after the last in-flight request finished. */
  async cleanupHost(): Promise<void> {}

  /** Published with every heartbeat into the service registry (driver stats, for placement). */
  async capabilities(): Promise<Record<string, unknown>> {
    return {};
  }
}

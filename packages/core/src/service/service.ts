import type { ResolvedConfig } from '../config/load.js';
import type { PluginRef } from '../config/schema.js';
import type { Driver } from '../contracts/driver.js';
import type { Transport } from '../contracts/transport.js';
import type { PluginKind } from '../contracts/versions.js';
import { InvalidInputError } from '../errors.js';
import { Executor } from '../exec/executor.js';
import type { Logger } from '../log/logger.js';
import type { Manager, ManagerEnv } from '../manager/manager.js';
import type { PluginManifest } from '../plugin/manifest.js';
import { createPlugin, type PluginSpec, resolvePlugin } from '../plugin/resolve.js';
import { RpcClient } from '../rpc/client.js';
import { RpcServer, type StopResult } from '../rpc/server.js';
import { EnvelopeSigner } from '../rpc/signing.js';
import { coreMigrations } from '../store/core-migrations.js';
import { openDatabase, type Store } from '../store/database.js';
import { migrate } from '../store/migrations.js';
import { type ServiceRecord, ServiceRegistry } from '../store/service-registry.js';
import { Heartbeat } from './heartbeat.js';
import { PeriodicTaskRunner } from './periodic.js';

/** Version recorded in the service registry. */
const CORE_VERSION = '0.1.0';

export interface ServiceOptions {
  /** The service's name in config (`volume`); also its default topic. */
  readonly name: string;
  readonly settings: ResolvedConfig;
  /** Folder plugins resolve from (the config file's folder). */
  readonly root: string;
  readonly manager: PluginSpec;
  readonly managerConfig?: unknown;
  readonly driver?: PluginSpec;
  readonly driverConfig?: unknown;
  /** Defaults to the service name. */
  readonly topic?: string;
  /** Defaults to `stratus-<name>`, as Nova's `nova-volume`. */
  readonly binary?: string;
  readonly logger: Logger;
  /** Shared with other services of this process; opened (and closed) by the service when absent. */
  readonly store?: Store;
  /** Shared with other services of this process; created from `settings.transport` when absent. */
  readonly transport?: Transport;
}

export type ServiceState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/**
 * One role on one host: resolves its manager (and the manager's driver), registers in the
 * service registry, consumes its RPC queues, heartbeats and runs periodic tasks; stops gracefully.
 */
export class Service {
  readonly name: string;
  readonly topic: string;
  readonly binary: string;
  readonly host: string;
  readonly logger: Logger;
  readonly #options: ServiceOptions;
  #state: ServiceState = 'created';
  #store: Store | undefined;
  #ownsStore = false;
  #transport: Transport | undefined;
  #ownsTransport = false;
  #driver: Driver | undefined;
  #manager?: Manager;
  #registry?: ServiceRegistry;
  #record?: ServiceRecord;
  #server?: RpcServer;
  #heartbeat?: Heartbeat;
  #periodic?: PeriodicTaskRunner;

  constructor(options: ServiceOptions) {
    if (!/^[a-z][a-z0-9_-]*$/.test(options.name)) {
      throw new InvalidInputError('Invalid service name', [
        { path: '/name', message: 'must be lowercase letters, digits, _ or -' },
      ]);
    }
    this.#options = options;
    this.name = options.name;
    this.topic = options.topic ?? options.name;
    this.binary = options.binary ?? `stratus-${options.name}`;
    this.host = options.settings.host;
    this.logger = options.logger.child({ service: this.binary, host: this.host });
  }

  /** A service for `services.<name>` of the config. */
  static fromConfig(
    name: string,
    options: Omit<ServiceOptions, 'name' | 'manager' | 'managerConfig' | 'driver' | 'driverConfig' | 'topic'>,
  ): Service {
    const entry = options.settings.services[name];
    if (!entry) {
      const known = Object.keys(options.settings.services);
      throw new InvalidInputError(`No service "${name}" in the config`, [
        { path: `/services/${name}`, message: `is not defined (defined: ${known.join(', ') || 'none'})` },
      ]);
    }
    return new Service({
      ...options,
      name,
      manager: entry.manager.plugin,
      managerConfig: entry.manager.config,
      ...pluginFields(entry.driver),
      ...(entry.topic ? { topic: entry.topic } : {}),
    });
  }

  get state(): ServiceState {
    return this.#state;
  }

  get manager(): Manager | undefined {
    return this.#manager;
  }

  get record(): ServiceRecord | undefined {
    return this.#record;
  }

  get store(): Store | undefined {
    return this.#store;
  }

  get transport(): Transport | undefined {
    return this.#transport;
  }

  /**
   * Resolve manager and driver → migrate → driver setup checks → `manager.initHost()` → register
   * in the service registry → consume topic, topic.host and fanout → heartbeat and periodic tasks.
   * On failure everything started so far is closed again and the error is rethrown.
   */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`Service ${this.binary} was already started`);
    this.#state = 'starting';
    const { settings, root } = this.#options;
    try {
      const managerPlugin = await resolvePlugin(this.#options.manager, 'manager', { root });
      const driverManifest = await this.#resolveDriver(managerPlugin.manifest);

      this.#store =
        this.#options.store ??
        (await openDatabase(settings.database.url, {
          sqliteSynchronous: settings.database.sqliteSynchronous,
        }));
      this.#ownsStore = !this.#options.store;
      await migrate(this.#store, [coreMigrations, ...(managerPlugin.manifest.migrations ?? [])]);

      this.#transport = this.#options.transport ?? (await this.#createTransport());
      this.#ownsTransport = !this.#options.transport;

      // Client and server keep separate replay caches: a reply carries its request's id.
      const signing = settings.rpcSigning;
      const rpc = new RpcClient(this.#transport, {
        defaultTimeoutMs: settings.rpcResponseTimeout * 1000,
        logger: this.logger,
        ...(signing ? { signer: new EnvelopeSigner(signing) } : {}),
      });

      if (driverManifest) {
        this.#driver = await createPlugin<PluginKind, Driver>(
          driverManifest,
          this.#options.driverConfig,
          this.#pluginEnv(driverManifest),
        );
        await this.#driver.setup();
        await this.#driver.checkForSetupError();
      }

      const managerEnv: ManagerEnv = {
        ...this.#pluginEnv(managerPlugin.manifest),
        service: this.name,
        topic: this.topic,
        store: this.#store,
        rpc,
        settings,
        ...(this.#driver ? { driver: this.#driver } : {}),
      };
      this.#manager = await createPlugin<'manager', Manager>(
        managerPlugin.manifest,
        this.#options.managerConfig,
        managerEnv,
      );
      await this.#manager.initHost();

      this.#registry = new ServiceRegistry(this.#store, { serviceDownTimeSec: settings.serviceDownTime });
      this.#record = await this.#registry.register({
        host: this.host,
        binary: this.binary,
        topic: this.topic,
        version: CORE_VERSION,
      });

      this.#server = new RpcServer(this.#transport, {
        topic: this.topic,
        host: this.host,
        endpoints: this.#manager.endpoints,
        version: this.#manager.rpcVersion,
        maxConcurrency: settings.maxConcurrency,
        logger: this.logger,
        ...(signing ? { signer: new EnvelopeSigner(signing) } : {}),
      });
      await this.#server.start();

      const manager = this.#manager;
      const registry = this.#registry;
      const id = this.#record.id;
      this.#heartbeat = new Heartbeat(
        async () => {
          await registry.reportState(id, await manager.capabilities());
        },
        { intervalSeconds: settings.reportInterval, logger: this.logger },
      );
      await this.#heartbeat.start();

      this.#periodic = new PeriodicTaskRunner(manager.periodicTasks, {
        logger: this.logger,
        defaultSpacing: settings.periodicInterval,
      });
      this.#periodic.start();

      this.#state = 'running';
      this.logger.info(
        { topic: this.topic, rpcVersion: manager.rpcVersion },
        `${this.binary} is ready on ${this.host}`,
      );
    } catch (error) {
      this.#state = 'failed';
      this.logger.error({ err: error }, `${this.binary} failed to start`);
      await this.#closeAll();
      throw error;
    }
  }

  /**
   * Stop consuming → let in-flight requests finish (bounded by `gracefulShutdownTimeout`) → stop
   * timers → `manager.cleanupHost()` → close driver, transport and store (those this service opened).
   */
  async stop(): Promise<StopResult> {
    if (this.#state !== 'running') {
      await this.#closeAll();
      this.#state = 'stopped';
      return { drained: true, pending: 0 };
    }
    this.#state = 'stopping';
    const timeoutMs = this.#options.settings.gracefulShutdownTimeout * 1000;
    const result = (await this.#server?.stop({ timeoutMs })) ?? { drained: true, pending: 0 };
    if (!result.drained) {
      this.logger.warn(
        { pending: result.pending, timeoutMs },
        `${result.pending} request(s) still running after the graceful shutdown timeout; stopping anyway`,
      );
    }
    await this.#periodic?.stop();
    await this.#heartbeat?.stop();
    try {
      await this.#manager?.cleanupHost();
    } catch (err) {
      this.logger.error({ err }, 'cleanupHost failed');
    }
    await this.#closeAll();
    this.#state = 'stopped';
    this.logger.info(`${this.binary} stopped`);
    return result;
  }

  /** Remove this service's record from the registry, then `stop()`. */
  async kill(): Promise<StopResult> {
    if (this.#state === 'running' && this.#registry) {
      await this.#heartbeat?.stop();
      try {
        await this.#registry.delete(this.host, this.binary);
      } catch (err) {
        this.logger.error({ err }, 'could not remove the service record; it will show as down');
      }
    }
    return this.stop();
  }

  /** Apply what can change live (SIGHUP): log level, report interval, periodic spacing. */
  reload(settings: Pick<ResolvedConfig, 'log' | 'reportInterval' | 'periodicInterval'>): void {
    this.logger.level = settings.log.level;
    this.#heartbeat?.setInterval(settings.reportInterval);
    this.#periodic?.setSpacing(settings.periodicInterval);
  }

  /** Run a heartbeat now (tests and `stratus doctor`). */
  async reportState(): Promise<void> {
    await this.#heartbeat?.beat();
  }

  async #resolveDriver(manager: PluginManifest<'manager'>): Promise<PluginManifest | undefined> {
    const spec = this.#options.driver;
    if (!manager.driverKind) {
      if (spec !== undefined) {
        throw new InvalidInputError(`${manager.name} takes no driver`, [
          { path: `/services/${this.name}/driver`, message: 'remove it: this manager loads no driver' },
        ]);
      }
      return undefined;
    }
    if (spec === undefined) {
      throw new InvalidInputError(`${manager.name} needs a ${manager.driverKind}`, [
        { path: `/services/${this.name}/driver`, message: `name a ${manager.driverKind} plugin` },
      ]);
    }
    return (await resolvePlugin(spec, manager.driverKind, { root: this.#options.root })).manifest;
  }

  async #createTransport(): Promise<Transport> {
    const { settings, root } = this.#options;
    const resolved = await resolvePlugin(settings.transport.plugin, 'transport', { root });
    const transport = await createPlugin<'transport', Transport>(
      resolved.manifest,
      settings.transport.config,
      this.#pluginEnv(resolved.manifest),
    );
    await transport.connect();
    return transport;
  }

  #pluginEnv(manifest: PluginManifest) {
    const { settings } = this.#options;
    const logger = this.logger.child({ plugin: manifest.name });
    return {
      host: this.host,
      logger,
      dataDir: settings.dataDir,
      executor: new Executor({ filters: manifest.commands ?? [], rootHelper: settings.rootHelper, logger }),
    };
  }

  async #closeAll(): Promise<void> {
    const driver = this.#driver;
    const transport = this.#ownsTransport ? this.#transport : undefined;
    const store = this.#ownsStore ? this.#store : undefined;
    this.#driver = undefined;
    if (transport) this.#transport = undefined;
    if (store) this.#store = undefined;
    this.#ownsTransport = false;
    this.#ownsStore = false;
    const closing: [string, { close(): Promise<void> } | undefined][] = [
      ['driver', driver],
      ['transport', transport],
      ['store', store],
    ];
    for (const [what, resource] of closing) {
      try {
        await resource?.close();
      } catch (err) {
        this.logger.error({ err }, `closing the ${what} failed`);
      }
    }
  }
}

function pluginFields(ref: PluginRef | undefined): { driver?: string; driverConfig?: unknown } {
  if (!ref) return {};
  return { driver: ref.plugin, driverConfig: ref.config };
}

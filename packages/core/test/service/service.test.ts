import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import sinon from 'sinon';
import Type from 'typebox';
import {
  createLogger,
  Driver,
  definePlugin,
  EnvelopeSigner,
  endpoint,
  InvalidStateError,
  Launcher,
  type LoadedConfig,
  loadConfig,
  Manager,
  type ManagerEnv,
  MemoryBroker,
  MemoryTransport,
  openDatabase,
  periodicTask,
  RequestContext,
  RpcClient,
  Service,
  ServiceRegistry,
  type Store,
  StratusError,
  silentLogger,
} from '../../src/index.js';

class EchoDriver extends Driver {
  setupCalls = 0;
  closed = false;
  failSetupCheck = false;
  override async setup(): Promise<void> {
    this.setupCalls += 1;
  }
  override async checkForSetupError(): Promise<void> {
    if (this.failSetupCheck)
      throw new InvalidStateError('volume group "vg0" does not exist: create it with vgcreate');
  }
  override async close(): Promise<void> {
    this.closed = true;
  }
}

class EchoManager extends Manager<EchoDriver> {
  readonly rpcVersion = '1.2';
  initHostCalls = 0;
  cleanupCalls = 0;
  ticks = 0;
  release?: () => void;
  readonly endpoints = {
    echo: endpoint(Type.Object({ text: Type.String() }), (_ctx, args) => ({
      echoed: args.text,
      host: this.host,
    })),
    slow: endpoint(Type.Object({}), async () => {
      await new Promise<void>((resolve) => {
        this.release = resolve;
      });
      return 'finished';
    }),
  };
  override get periodicTasks() {
    const tick = () => {
      this.ticks += 1;
    };
    return { tick: periodicTask(tick, { spacing: 0.01, runImmediately: true }) };
  }
  override async initHost(): Promise<void> {
    this.initHostCalls += 1;
    expect(this.driver.setupCalls).to.equal(1);
  }
  override async cleanupHost(): Promise<void> {
    this.cleanupCalls += 1;
  }
  override async capabilities(): Promise<Record<string, unknown>> {
    return { freeCapacityGiB: 42 };
  }
}

let lastDriver: EchoDriver | undefined;
let failNextSetup = false;
const driverPlugin = definePlugin({
  name: 'echo-driver',
  kind: 'volume-driver',
  contract: '^1.0.0',
  create: () => {
    lastDriver = new EchoDriver();
    lastDriver.failSetupCheck = failNextSetup;
    return lastDriver;
  },
});
const managerPlugin = definePlugin({
  name: 'echo-manager',
  kind: 'manager',
  contract: '^1.0.0',
  driverKind: 'volume-driver',
  create: (_config, env) => new EchoManager(env as ManagerEnv),
});

describe('Service', () => {
  let dir: string;
  let loaded: LoadedConfig;
  let store: Store;
  let broker: MemoryBroker;
  let transports: MemoryTransport[];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stratus-service-'));
    loaded = await loadConfig({
      cwd: dir,
      env: {},
      overrides: { host: 'st-1', reportInterval: 0.05, gracefulShutdownTimeout: 2, log: { level: 'silent' } },
    });
    store = await openDatabase('sqlite::memory:');
    broker = new MemoryBroker();
    transports = [];
    failNextSetup = false;
  });
  afterEach(async () => {
    for (const t of transports) await t.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function transport(): Promise<MemoryTransport> {
    const t = new MemoryTransport({ broker });
    await t.connect();
    transports.push(t);
    return t;
  }

  async function service(host = 'st-1'): Promise<Service> {
    return new Service({
      name: 'echo',
      settings: { ...loaded.config, host },
      root: loaded.root,
      manager: managerPlugin,
      driver: driverPlugin,
      logger: silentLogger(),
      store,
      transport: await transport(),
    });
  }

  it('starts in DESIGN order: driver setup, initHost, registry, RPC, heartbeat, periodic tasks', async () => {
    const svc = await service();
    await svc.start();
    expect(svc.state).to.equal('running');
    const manager = svc.manager as EchoManager;
    expect(manager.initHostCalls).to.equal(1);

    const client = new RpcClient(await transport(), { defaultTimeoutMs: 2000 });
    const reply = await client.call(new RequestContext(), { topic: 'echo', host: 'st-1' }, 'echo', {
      text: 'hi',
    });
    expect(reply).to.deep.equal({ echoed: 'hi', host: 'st-1' });

    const registry = new ServiceRegistry(store);
    const [record] = await registry.list({ binary: 'stratus-echo' });
    expect(record?.host).to.equal('st-1');
    expect(record?.topic).to.equal('echo');
    expect(record?.up).to.equal(true);
    expect(record?.capabilities).to.deep.equal({ freeCapacityGiB: 42 });

    await new Promise((r) => setTimeout(r, 200));
    const later = await registry.get('st-1', 'stratus-echo');
    expect(later?.reportCount).to.be.greaterThan(1);
    expect(manager.ticks).to.be.greaterThan(1);

    await svc.stop();
    expect(svc.state).to.equal('stopped');
    expect(manager.cleanupCalls).to.equal(1);
    expect(lastDriver?.closed).to.equal(true);
    const reports = (await registry.get('st-1', 'stratus-echo'))?.reportCount;
    await new Promise((r) => setTimeout(r, 150));
    expect((await registry.get('st-1', 'stratus-echo'))?.reportCount).to.equal(reports);
  });

  it('drains an in-flight request on stop and delivers its reply', async () => {
    const svc = await service();
    await svc.start();
    const client = new RpcClient(await transport(), { defaultTimeoutMs: 5000 });
    const reply = client.call(new RequestContext(), { topic: 'echo' }, 'slow', {});
    const manager = svc.manager as EchoManager;
    while (!manager.release) await new Promise((r) => setTimeout(r, 5));
    const stopping = svc.stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(svc.state).to.equal('stopping');
    manager.release();
    expect(await reply).to.equal('finished');
    expect(await stopping).to.deep.equal({ drained: true, pending: 0 });
  });

  it('reports a handler still running after the graceful timeout', async () => {
    loaded = { ...loaded, config: { ...loaded.config, gracefulShutdownTimeout: 0.05 } };
    const svc = await service();
    await svc.start();
    const client = new RpcClient(await transport(), { defaultTimeoutMs: 5000 });
    void client.call(new RequestContext(), { topic: 'echo' }, 'slow', {}).catch(() => undefined);
    const manager = svc.manager as EchoManager;
    while (!manager.release) await new Promise((r) => setTimeout(r, 5));
    const result = await svc.stop();
    expect(result).to.deep.equal({ drained: false, pending: 1 });
    manager.release();
  });

  it('refuses to start when the driver setup check fails, and leaves nothing registered', async () => {
    failNextSetup = true;
    const svc = await service();
    let error: unknown;
    try {
      await svc.start();
    } catch (e) {
      error = e;
    }
    expect(StratusError.is(error, 'INVALID_STATE')).to.equal(true);
    expect((error as Error).message).to.contain('vgcreate');
    expect(svc.state).to.equal('failed');
    expect(lastDriver?.closed).to.equal(true);
    expect(await new ServiceRegistry(store).list({ includeDisabled: true })).to.deep.equal([]);
  });

  it('kill() removes the registry record', async () => {
    const svc = await service();
    await svc.start();
    await svc.kill();
    expect(await new ServiceRegistry(store).get('st-1', 'stratus-echo')).to.equal(undefined);
  });

  it('signs and verifies RPCs when rpcSigning is configured, and refuses unsigned callers', async () => {
    const signing = { keys: [{ id: 'k1', secret: 'a-shared-secret-of-enough-length-0123456789' }] };
    const signed = await loadConfig({
      cwd: dir,
      env: {},
      overrides: { host: 'st-1', reportInterval: 0.05, log: { level: 'silent' }, rpcSigning: signing },
    });
    loaded = signed;
    const svc = await service();
    await svc.start();
    const signer = new EnvelopeSigner(signed.config.rpcSigning!);
    const good = new RpcClient(await transport(), { defaultTimeoutMs: 2000, signer });
    expect(await good.call(new RequestContext(), { topic: 'echo' }, 'echo', { text: 'ok' })).to.deep.equal({
      echoed: 'ok',
      host: 'st-1',
    });
    const unsigned = new RpcClient(await transport(), { defaultTimeoutMs: 2000 });
    let error: unknown;
    try {
      await unsigned.call(new RequestContext(), { topic: 'echo' }, 'echo', { text: 'no' });
    } catch (e) {
      error = e;
    }
    expect(StratusError.is(error, 'UNAUTHENTICATED')).to.equal(true);
    await svc.stop();
  });

  it('fromConfig builds a service from services.<name> and names missing ones clearly', async () => {
    expect(() =>
      Service.fromConfig('volume', { settings: loaded.config, root: loaded.root, logger: silentLogger() }),
    ).to.throw(/No service "volume" in the config/);
  });

  it('opens its own store and transport from config, and closes them on stop', async () => {
    const svc = new Service({
      name: 'echo',
      settings: { ...loaded.config, database: { url: `sqlite:${path.join(dir, 'own.db')}` } },
      root: loaded.root,
      manager: managerPlugin,
      driver: driverPlugin,
      logger: silentLogger(),
    });
    await svc.start();
    expect(svc.store?.dialect).to.equal('sqlite');
    await svc.stop();
    expect(svc.store).to.equal(undefined);
    const reopened = await openDatabase(`sqlite:${path.join(dir, 'own.db')}`);
    try {
      expect((await new ServiceRegistry(reopened).get('st-1', 'stratus-echo'))?.topic).to.equal('echo');
    } finally {
      await reopened.close();
    }
  });
});

describe('Launcher', () => {
  function fakeService() {
    return {
      start: sinon.stub().resolves(),
      stop: sinon.stub().resolves({ drained: true, pending: 0 }),
      reload: sinon.spy(),
    };
  }

  it('stops every service on SIGTERM, and exits at once on a second signal', async () => {
    const signals = new EventEmitter();
    const exit = sinon.spy();
    const a = fakeService();
    const b = fakeService();
    const launcher = new Launcher({
      services: [a, b] as unknown as Service[],
      logger: silentLogger(),
      signals,
      exit,
    });
    await launcher.launch();
    expect(a.start.calledBefore(b.start)).to.equal(true);
    let release!: () => void;
    a.stop.returns(new Promise((r) => (release = () => r({ drained: true, pending: 0 }))));
    signals.emit('SIGTERM');
    await new Promise((r) => setImmediate(r));
    expect(b.stop.calledOnce).to.equal(true); // reverse order: b first
    signals.emit('SIGINT');
    expect(exit.calledOnceWith(130)).to.equal(true);
    release();
    expect(await launcher.wait()).to.have.length(2);
    expect(signals.listenerCount('SIGTERM')).to.equal(0);
  });

  it('reloads log level and spacing on SIGHUP', async () => {
    const signals = new EventEmitter();
    const svc = fakeService();
    const logger = createLogger({ level: 'silent', destination: { write: () => true } });
    const settings = { log: { level: 'debug' as const }, reportInterval: 3, periodicInterval: 7 };
    const launcher = new Launcher({
      services: [svc] as unknown as Service[],
      logger,
      signals,
      reloadConfig: async () => settings,
    });
    await launcher.launch();
    signals.emit('SIGHUP');
    await new Promise((r) => setTimeout(r, 10));
    expect(svc.reload.calledOnceWith(settings)).to.equal(true);
    expect(logger.level).to.equal('debug');
    await launcher.stop();
  });

  it('stops the services already started when a later one fails to start', async () => {
    const a = fakeService();
    const b = fakeService();
    b.start.rejects(new Error('no such volume group'));
    const launcher = new Launcher({
      services: [a, b] as unknown as Service[],
      logger: silentLogger(),
      signals: new EventEmitter(),
    });
    let error: unknown;
    try {
      await launcher.launch();
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).to.equal('no such volume group');
    expect(a.stop.calledOnce).to.equal(true);
  });
});

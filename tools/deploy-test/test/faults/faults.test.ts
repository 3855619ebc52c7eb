import { openDatabase, RequestContext, ServiceRegistry, type Store, StratusError } from '@stratus/core';
import { INTERRUPTED_REASON } from '@stratus/manager-compute';
import type { Instance } from '@stratus/manager-compute/client';
import type { Volume } from '@stratus/manager-volume/client';
import { expect } from 'chai';
import { connectClient, type DeploymentClient, demoContext } from '../../src/client.js';
import type { BackendView } from '../../src/control.js';
import { Deployment, rabbitmqctl, skipWithoutEnvironment, sleep, waitFor } from '../../src/deployment.js';
import { TcpProxy } from '../../src/proxy.js';
import { pool, reasonOf, Tally } from '../../src/tally.js';

/** Statuses an operation passes through; a volume left in one of them after the dust settles is lost. */
const TRANSITIONAL = new Set(['creating', 'deleting', 'extending', 'attaching', 'detaching']);
/** The harness's serviceDownTime and reportInterval (seconds; see Deployment.writeConfig). */
const SERVICE_DOWN_TIME = 4;
/** Seconds PostgreSQL is unreachable in the outage case (the 30 s unless overridden). */
const PG_OUTAGE_S = Number(process.env.STRATUS_FAULTS_PG_OUTAGE_S ?? 30);
const CONNECTOR = { host: 'faults-client', initiator: 'iqn.1993-08.org.debian:01:faults' };

/**
 * The fault suite of issue #13: real `serve.ts` processes on a real RabbitMQ and PostgreSQL, broken on
 * purpose (SIGKILL, broker restart, database outage, SIGTERM under load, a hung backend). Each case
 * counts what it sent and asserts that nothing accepted was lost; the summary lines print at the end.
 */
describe('faults: services on RabbitMQ + PostgreSQL, broken on purpose', function () {
  this.timeout(300_000);

  const ctx = demoContext();
  const admin = RequestContext.admin({ readDeleted: true });
  const tallies: Tally[] = [];
  let deployment: Deployment | undefined;
  let client: DeploymentClient | undefined;
  const opened: Array<{ close(): Promise<void> }> = [];
  let brokerStopped = false;
  const started = Date.now();

  before(async function () {
    this.timeout(30_000);
    await skipWithoutEnvironment(this);
  });

  beforeEach(async () => {
    deployment = await Deployment.create();
  });

  afterEach(async function () {
    this.timeout(120_000);
    // A case that failed while the broker was stopped must not leave it stopped for everyone else.
    if (brokerStopped) {
      await rabbitmqctl('start_app').catch((error: unknown) => console.error(error));
      brokerStopped = false;
    }
    if (this.currentTest?.state === 'failed' && deployment) {
      console.log(`      logs of the deployment (${deployment.dir}):\n${deployment.allLogTails()}`);
    }
    await client?.close();
    client = undefined;
    for (const thing of opened.splice(0)) await thing.close().catch(() => {});
    // STRATUS_DEPLOY_KEEP=1 keeps the config files and logs of a failed case for a post-mortem.
    const keepDir = Boolean(process.env.STRATUS_DEPLOY_KEEP) && this.currentTest?.state === 'failed';
    await deployment?.destroy({ keepDir });
    deployment = undefined;
  });

  after(() => {
    for (const tally of tallies) console.log(`      ${tally.line()}`);
    console.log(`      faults suite wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  function d(): Deployment {
    if (!deployment) throw new Error('no deployment');
    return deployment;
  }

  function tally(name: string): Tally {
    const t = new Tally(name);
    tallies.push(t);
    return t;
  }

  async function connect(databaseUrl = d().settings.databaseUrl): Promise<DeploymentClient> {
    client = await connectClient({ databaseUrl, transportConfig: d().settings.transportConfig });
    return client;
  }

  /** Every row of an admin listing, deleted ones included, a page of 1,000 at a time. */
  async function allRows<T extends { readonly id: string }>(
    list: (options: { limit: number; marker?: string }) => Promise<T[]>,
  ): Promise<T[]> {
    const rows: T[] = [];
    for (;;) {
      const marker = rows.at(-1)?.id;
      const page = await list({ limit: 1000, ...(marker ? { marker } : {}) });
      rows.push(...page);
      if (page.length < 1000) return rows;
    }
  }

  /** Every volume row, deleted ones included, read straight from the database (no proxy). */
  function allVolumes(c: DeploymentClient): Promise<Volume[]> {
    return allRows((options) => c.volumes.list(admin, options));
  }

  /** Every instance row, deleted ones included. */
  function allInstances(c: DeploymentClient): Promise<Instance[]> {
    return allRows((options) => c.compute.list(admin, options));
  }

  async function backend(host: string, service: 'volume' | 'compute' = 'volume'): Promise<BackendView> {
    return d().control<BackendView>(host, { type: 'inspect', service });
  }

  /** Hang the next `count` creations on a host's backend: `createVolume`, or `spawn` on a compute host. */
  async function hang(host: string, count: number, service: 'volume' | 'compute' = 'volume'): Promise<void> {
    await d().control(host, {
      type: 'fault',
      service,
      action: 'hang',
      method: service === 'volume' ? 'createVolume' : 'spawn',
      count,
    });
  }

  /** Wait until no volume is in a transitional state; returns the rows. */
  async function settled(c: DeploymentClient, timeoutMs = 90_000): Promise<Volume[]> {
    return waitFor(
      'every volume out of its transitional state',
      async () => {
        const rows = await allVolumes(c);
        return rows.every((v) => !TRANSITIONAL.has(v.status)) ? rows : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  }

  /**
   * Count the outcome of every accepted create or boot: `available` volumes and `active` instances
   * completed, `error` failed with its reason (asserted non-empty), anything else (missing,
   * transitional) lost.
   */
  function account(t: Tally, accepted: readonly string[], rows: ReadonlyArray<Volume | Instance>): void {
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const id of accepted) {
      const row = byId.get(id);
      const [kind, state] = row && 'status' in row ? ['volume', row.status] : ['instance', row?.vmState];
      if (state === 'available' || state === 'active') t.completed++;
      else if (state === 'error') {
        expect(row?.errorReason, `${kind} ${id} in error`).to.be.a('string').and.not.equal('');
        t.fail(`${kind} error: ${shortReason(row?.errorReason ?? '')}`);
      } else t.lost++;
    }
  }

  /**
   * The backends hold exactly what the database says: every backend volume has a live row on that
   * host, and every available row is on its host's backend, created there once.
   */
  async function assertBackendsMatch(
    c: DeploymentClient,
    hosts: readonly string[],
    { restarted = false } = {},
  ): Promise<void> {
    const rows = (await allVolumes(c)).filter((v) => v.status !== 'deleted');
    const byName = new Map(rows.map((v) => [`volume-${v.id}`, v]));
    const views = new Map<string, BackendView>();
    for (const host of hosts) views.set(host, await backend(host));
    for (const [host, view] of views) {
      for (const name of view.volumes ?? []) {
        const row = byName.get(name);
        expect(row, `${host} holds ${name}, which the database does not know`).to.not.equal(undefined);
        expect(row?.host, `${name} is on ${host}`).to.equal(host);
      }
    }
    for (const v of rows.filter((row) => row.status === 'available')) {
      const name = `volume-${v.id}`;
      const on = hosts.filter((h) => views.get(h)?.volumes?.includes(name));
      expect(on, `available ${name} on exactly its host's backend`).to.deep.equal([v.host]);
      // Created once: a redelivery never reached the backend a second time.
      const calls = hosts.reduce((n, h) => n + (views.get(h)?.createCalls[name] ?? 0), 0);
      // (A restarted host counts from its restart only.)
      if (restarted) expect(calls, `createVolume calls for ${name}`).to.be.at.most(1);
      else expect(calls, `createVolume calls for ${name}`).to.equal(1);
    }
  }

  /** Wait until no instance is building or has a task running; returns the rows. */
  async function settledInstances(c: DeploymentClient, timeoutMs = 60_000): Promise<Instance[]> {
    return waitFor(
      'every instance built and without a task',
      async () => {
        const rows = await allInstances(c);
        return rows.every((i) => i.vmState !== 'building' && i.taskState === null) ? rows : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  }

  /**
   * The hypervisors hold exactly what the database says: every hypervisor instance has a live row on
   * that host; a live row is on its host's hypervisor exactly when its power state is not `nostate`,
   * and an active one was spawned there once.
   */
  async function assertHypervisorsMatch(c: DeploymentClient, hosts: readonly string[]): Promise<void> {
    const rows = (await allInstances(c)).filter((i) => !i.deleted);
    const byName = new Map(rows.map((i) => [`instance-${i.id}`, i]));
    const views = new Map<string, BackendView>();
    for (const host of hosts) views.set(host, await backend(host, 'compute'));
    for (const [host, view] of views) {
      for (const name of view.instances ?? []) {
        const row = byName.get(name);
        expect(row, `${host} runs ${name}, which the database does not know`).to.not.equal(undefined);
        expect(row?.host, `${name} runs on ${host}`).to.equal(host);
      }
    }
    for (const i of rows) {
      const name = `instance-${i.id}`;
      const on = hosts.filter((h) => views.get(h)?.instances?.includes(name));
      const expected = i.powerState === 'nostate' ? [] : [i.host];
      expect(on, `${i.vmState} ${name} (power ${i.powerState}) on the hypervisors`).to.deep.equal(expected);
      if (i.vmState !== 'active') continue;
      // Spawned once: a redelivered run_instance never reached a hypervisor a second time.
      const spawns = hosts.reduce((n, h) => n + (views.get(h)?.createCalls[name] ?? 0), 0);
      // (A restarted host counts from its restart only.)
      expect(spawns, `spawn calls for ${name}`).to.be.at.most(1);
    }
  }

  /** Log lines (pino JSON) of a host. */
  function logLines(host: string): Array<Record<string, unknown>> {
    return d()
      .logTail(host, 1_000_000)
      .split('\n')
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }

  async function queueDepth(queue: string): Promise<{ messages: number; consumers: number }> {
    const text = await rabbitmqctl(
      '-q',
      '--no-table-headers',
      'list_queues',
      '-p',
      `stratus-deploy-${d().id}`,
      'name',
      'messages',
      'consumers',
    );
    for (const line of text.split('\n')) {
      const [name, messages, consumers] = line.trim().split(/\s+/);
      if (name === queue) return { messages: Number(messages), consumers: Number(consumers) };
    }
    throw new Error(`queue ${queue} not found in the deployment's vhost`);
  }

  function assertTypedRetryable(errors: readonly unknown[], what: string): void {
    for (const error of errors) {
      expect(StratusError.is(error), `${what}: ${String(error)}`).to.equal(true);
      expect((error as StratusError).retryable, `${what}: ${String(error)}`).to.equal(true);
    }
  }

  it('SIGKILL of a volume service with 200 creates in flight: after its restart every volume is available or error with a reason', async () => {
    const t = tally('sigkill-volume-service (200 creates)');
    await Promise.all([d().start('vol-a', 'volume'), d().start('vol-b', 'volume')]);
    const c = await connect();
    // vol-a's backend holds its next 20 creates, so some are surely mid-driver when the SIGKILL lands;
    // the rest are anywhere between the API, the queue, a claim and the backend.
    await hang('vol-a', 20);

    const accepted: string[] = [];
    const refused: unknown[] = [];
    const creates = pool(200, 8, async (i) => {
      t.attempted++;
      try {
        accepted.push((await c.volumes.create(ctx, { size: 1, name: `kill-${i}` })).id);
      } catch (error) {
        refused.push(error);
        t.fail(`refused: ${reasonOf(error)}`);
      }
    });
    await waitFor(
      'vol-a holding creates while 60 are accepted',
      async () => accepted.length >= 60 && (await backend('vol-a')).hanging >= 5,
      { timeoutMs: 60_000 },
    );
    expect(await d().kill('vol-a', 'SIGKILL')).to.equal('SIGKILL');
    await creates;
    assertTypedRetryable(refused, 'a create refused by the API');

    // Restarted with the same name: initHost settles what the crash cut short.
    await d().start('vol-a', 'volume');
    const rows = await settled(c);
    account(t, accepted, rows);
    await assertBackendsMatch(c, ['vol-a', 'vol-b'], { restarted: true });
    expect(t.lost, t.line()).to.equal(0);
    expect(t.completed + t.failed).to.equal(t.attempted);
    expect(t.completed, 'creates that ended available').to.be.greaterThan(100);
  });

  it('SIGKILL of a compute service with 100 instance boots in flight: after its restart every instance is active or error with a reason, the hypervisor holds exactly what the database says', async () => {
    const t = tally('sigkill-compute-service (100 boots)');
    await Promise.all([d().start('cmp-a', 'compute'), d().start('cmp-b', 'compute')]);
    const c = await connect();

    const accepted: string[] = [];
    const refused: unknown[] = [];
    const boots = pool(100, 8, async (i) => {
      t.attempted++;
      try {
        accepted.push(
          (await c.compute.run(ctx, { name: `kill-${i}`, flavor: 'm1.tiny', imageRef: 'cirros' })).id,
        );
      } catch (error) {
        refused.push(error);
        t.fail(`refused: ${reasonOf(error)}`);
      }
    });
    // cmp-a first runs a few instances (they must still run after the crash), then its hypervisor
    // holds its next 10 spawns, so some boots are surely mid-driver when the SIGKILL lands.
    await waitFor(
      'cmp-a running 5 instances',
      async () => ((await backend('cmp-a', 'compute')).instances?.length ?? 0) >= 5,
    );
    await hang('cmp-a', 10, 'compute');
    const hung = await waitFor(
      'cmp-a holding spawns while 50 boots are accepted',
      async () => {
        const { hanging } = await backend('cmp-a', 'compute');
        return accepted.length >= 50 && hanging >= 5 && hanging;
      },
      { timeoutMs: 60_000 },
    );
    const runningOnA = (await allInstances(c)).filter((i) => i.host === 'cmp-a' && i.vmState === 'active');
    expect(await d().kill('cmp-a', 'SIGKILL')).to.equal('SIGKILL');
    console.log(
      `      at the SIGKILL: ${runningOnA.length} instances active on cmp-a, ${hung} spawns hung there, ${accepted.length} boots accepted`,
    );
    await boots;
    assertTypedRetryable(refused, 'a boot refused by the API');

    // Restarted with the same name: initHost settles what the crash cut short.
    await d().start('cmp-a', 'compute');
    const rows = await settledInstances(c);
    account(t, accepted, rows);
    const byId = new Map(rows.map((i) => [i.id, i]));
    // The VMs outlived their service: what ran on cmp-a before the crash still runs, and is active.
    for (const i of runningOnA) {
      expect(byId.get(i.id), `instance ${i.id} running on cmp-a before the crash`).to.include({
        vmState: 'active',
        host: 'cmp-a',
        powerState: 'running',
      });
    }
    const interrupted = rows.filter((i) => i.errorReason === INTERRUPTED_REASON);
    expect(interrupted.length, 'boots cut short on cmp-a').to.be.at.least(hung);
    for (const i of interrupted) expect(i.host).to.equal('cmp-a');
    await assertHypervisorsMatch(c, ['cmp-a', 'cmp-b']);
    expect(t.lost, t.line()).to.equal(0);
    expect(t.completed + t.failed).to.equal(t.attempted);
    expect(t.completed, 'boots that ended active').to.be.greaterThan(50);

    // Nothing is left behind: every instance, the interrupted ones too, can be terminated.
    await Promise.all(rows.map((i) => c.compute.terminate(ctx, i.id)));
    await waitFor('every instance deleted', async () => (await allInstances(c)).every((i) => i.deleted), {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    for (const host of ['cmp-a', 'cmp-b']) {
      expect((await backend(host, 'compute')).instances, `${host}'s hypervisor`).to.deep.equal([]);
    }
  });

  it('RabbitMQ restart with 1,000 casts and 100 calls in flight: casts applied once, calls answered or typed retryable, no restart', async () => {
    const t = tally('rabbitmq-restart (1000 casts, 100 calls)');
    // Durable queues (the harness's transport config): with transient ones the broker drops the
    // queues and the casts waiting in them when it restarts, and "at least once" fails.
    expect(d().settings.transportConfig.durableQueues).to.equal(true);
    // Eight handlers per host, and (below) eight hung creates on each: the restart then hits
    // casts in handlers, casts waiting in the broker's queue and casts being published.
    const narrow = { overrides: { maxConcurrency: 8 } };
    const hosts = await Promise.all([
      d().start('vol-a', 'volume', narrow),
      d().start('vol-b', 'volume', narrow),
    ]);
    const c = await connect();
    // Targets of the calls: one volume on each host.
    const targets: Volume[] = [];
    for (let i = 0; i < 10 && new Set(targets.map((v) => v.host)).size < 2; i++) {
      const v = await c.volumes.create(ctx, { size: 1, name: `target-${i}` });
      targets.push(
        await waitFor('target available', async () => {
          const row = await c.volumes.get(ctx, v.id);
          return row.status === 'available' ? row : undefined;
        }),
      );
    }

    await hang('vol-a', 8);
    await hang('vol-b', 8);
    const accepted: string[] = [];
    const refused: unknown[] = [];
    const callErrors: unknown[] = [];
    let callsOk = 0;
    const casts = pool(1000, 12, async (i) => {
      t.attempted++;
      try {
        accepted.push((await c.volumes.create(ctx, { size: 1, name: `cast-${i}` })).id);
      } catch (error) {
        refused.push(error);
        t.fail(`cast refused: ${reasonOf(error)}`);
        // A client backs off after a retryable refusal instead of spinning through its work.
        await sleep(500);
      }
    });
    await waitFor('150 casts accepted before the restart', () => accepted.length >= 150, {
      timeoutMs: 60_000,
    });
    await waitFor('casts waiting in the queue', async () => (await queueDepth('volume')).messages >= 50);
    // Calls spread over ~15 s so that the restart hits calls in flight, refused and after.
    const calls = pool(100, 100, async (i) => {
      await sleep(i * 150);
      t.attempted++;
      const target = targets[i % targets.length] as Volume;
      try {
        await c.volumes.initializeConnection(ctx, target.id, CONNECTOR);
        callsOk++;
        t.completed++;
      } catch (error) {
        callErrors.push(error);
        t.fail(`call failed: ${reasonOf(error)}`);
      }
    });
    const before = accepted.length;
    brokerStopped = true;
    await rabbitmqctl('stop_app');
    await sleep(2000);
    await rabbitmqctl('start_app');
    brokerStopped = false;
    const during = accepted.length - before;
    // The backends were slow, not dead: the hung creates go on, the queue drains.
    await waitFor('both hosts consuming again', async () => (await queueDepth('volume')).consumers === 2);
    await sleep(1000);
    for (const host of ['vol-a', 'vol-b']) {
      await d().control(host, { type: 'fault', service: 'volume', action: 'clear' });
    }
    await Promise.all([casts, calls]);
    console.log(
      `      casts accepted before/around/after the restart: ${before}/${during}/${accepted.length - before - during}; refused ${refused.length}; calls ok ${callsOk}, failed ${callErrors.length}`,
    );
    assertTypedRetryable(refused, 'a cast refused while the broker was away');
    assertTypedRetryable(callErrors, 'a call during the restart');

    const rows = await settled(c);
    // A refused create is recorded as error with the reason, never left creating.
    const byId = new Map(rows.map((v) => [v.id, v]));
    for (const v of rows.filter((row) => !accepted.includes(row.id) && row.name?.startsWith('cast-'))) {
      expect(v.status, `refused create ${v.id}`).to.equal('error');
    }
    // At least once: every accepted cast was processed (its volume is available).
    for (const id of accepted) {
      const v = byId.get(id);
      if (v?.status === 'available') t.completed++;
      else t.lost++;
    }
    // Exactly once: on one backend, the one of its host, after a single createVolume.
    await assertBackendsMatch(c, ['vol-a', 'vol-b']);
    expect(t.lost, t.line()).to.equal(0);

    // The same processes resume by themselves: consumers are back and both hosts serve.
    for (const h of hosts) {
      expect(h.child.exitCode, `${h.host} exited`).to.equal(null);
      expect(d().host(h.host).pid).to.equal(h.pid);
    }
    await waitFor(
      '2 consumers on the volume topic',
      async () => (await queueDepth('volume')).consumers === 2,
    );
    const fresh = await Promise.all(
      Array.from({ length: 8 }, (_, i) => c.volumes.create(ctx, { size: 1, name: `post-${i}` })),
    );
    const done = await waitFor('the post-restart creates available', async () => {
      const list = await Promise.all(fresh.map((v) => c.volumes.get(ctx, v.id)));
      return list.every((v) => v.status === 'available') ? list : undefined;
    });
    expect(new Set(done.map((v) => v.host))).to.deep.equal(new Set(['vol-a', 'vol-b']));
    for (const target of targets) await c.volumes.initializeConnection(ctx, target.id, CONNECTOR);
  });

  it(`PostgreSQL unreachable for ${PG_OUTAGE_S} s under load: services stay up, fail typed and retryable, and resume`, async () => {
    const t = tally(`postgresql-outage (${PG_OUTAGE_S} s under load)`);
    const direct = new URL(d().settings.databaseUrl);
    const proxy = await TcpProxy.start(direct.hostname, Number(direct.port || 5432));
    opened.push(proxy);
    const proxied = proxy.rewrite(d().settings.databaseUrl);
    const viaProxy = { overrides: { database: { url: proxied } } };
    const hosts = await Promise.all([
      d().start('vol-a', 'volume', viaProxy),
      d().start('vol-b', 'volume', viaProxy),
    ]);
    // The client (the API process) loses the database too; the registry is read around the proxy.
    const c = await connect(proxied);
    const observer: Store = await openDatabase(d().settings.databaseUrl);
    opened.push(observer);
    const registry = new ServiceRegistry(observer, { serviceDownTimeSec: SERVICE_DOWN_TIME });
    const target = await c.volumes.create(ctx, { size: 1, name: 'pg-target' });
    await waitFor(
      'target available',
      async () => (await c.volumes.get(ctx, target.id)).status === 'available',
    );

    // One create hung on each backend: released during the outage, their handlers then find the
    // database gone right when they record the result, and must finish once it is back.
    await hang('vol-a', 1);
    await hang('vol-b', 1);
    const accepted: string[] = [];
    for (let i = 0; i < 20; i++) {
      accepted.push((await c.volumes.create(ctx, { size: 1, name: `pg-hung-${i}` })).id);
      t.attempted++;
      const [a, b] = await Promise.all([backend('vol-a'), backend('vol-b')]);
      if (a.hanging + b.hanging === 2) break;
    }
    const [ha, hb] = await Promise.all([backend('vol-a'), backend('vol-b')]);
    expect(ha.hanging + hb.hanging, 'a create hung on each backend').to.equal(2);

    type Phase = 'before' | 'during' | 'after';
    let phase: Phase = 'before';
    const currentPhase = (): Phase => phase;
    let acceptedAfter = 0;
    const refused: Array<{ phase: Phase; error: unknown }> = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading; i++) {
        // Read through a function: TypeScript narrows a `let` to its initial value inside this loop.
        const at = currentPhase();
        t.attempted += 2;
        try {
          accepted.push((await c.volumes.create(ctx, { size: 1, name: `pg-${i}` })).id);
          if (at === 'after') acceptedAfter++;
        } catch (error) {
          refused.push({ phase: at, error });
          t.fail(`create refused (${at}): ${reasonOf(error)}`);
        }
        try {
          await c.volumes.initializeConnection(ctx, target.id, CONNECTOR);
          t.completed++;
        } catch (error) {
          refused.push({ phase: at, error });
          t.fail(`call failed (${at}): ${reasonOf(error)}`);
        }
        await sleep(150);
      }
    })();

    let restoredAt = 0;
    try {
      await sleep(2000);
      phase = 'during';
      await proxy.cut();
      const cutAt = Date.now();
      await sleep(500);
      expect(
        await d().control<number>('vol-a', { type: 'fault', service: 'volume', action: 'release' }),
      ).to.equal(1);
      expect(
        await d().control<number>('vol-b', { type: 'fault', service: 'volume', action: 'release' }),
      ).to.equal(1);
      await sleep(Math.max(0, cutAt + PG_OUTAGE_S * 1000 - Date.now()));
      // Still the same processes, still serving their queues, while the database is away.
      for (const h of hosts) expect(h.child.exitCode, `${h.host} exited during the outage`).to.equal(null);
      expect((await queueDepth('volume')).consumers).to.equal(2);
      await proxy.restore();
      restoredAt = Date.now();
      phase = 'after';
      // Down in the registry no longer than serviceDownTime after the database is back.
      await waitFor(
        'both volume services up again',
        async () => {
          const list = await registry.list();
          return list.length === 2 && list.every((s) => s.up);
        },
        { timeoutMs: SERVICE_DOWN_TIME * 1000, intervalMs: 100 },
      );
      console.log(`      services up again ${Date.now() - restoredAt} ms after the database came back`);
      await waitFor('5 creates accepted after the outage', () => acceptedAfter >= 5, { timeoutMs: 30_000 });
    } finally {
      loading = false;
      await load;
      await proxy.restore();
    }
    const during = refused.filter((r) => r.phase === 'during');
    expect(during.length, 'operations refused during the outage').to.be.greaterThan(0);
    assertTypedRetryable(
      refused.map((r) => r.error),
      'an operation refused around the outage',
    );
    expect(
      refused.filter((r) => r.phase === 'after').length,
      'refusals after the database came back',
    ).to.be.at.most(2);

    const rows = await settled(c);
    const byId = new Map(rows.map((v) => [v.id, v]));
    for (const id of accepted) {
      // Nothing accepted ends in error: the handlers waited for the database instead.
      expect(byId.get(id)?.status, `accepted volume ${id}`).to.equal('available');
    }
    account(t, accepted, rows);
    await assertBackendsMatch(c, ['vol-a', 'vol-b']);

    for (const h of hosts) {
      expect(h.child.exitCode, `${h.host} exited`).to.equal(null);
      const lines = logLines(h.host);
      const failedBeat = lines.find((l) => String(l.msg).startsWith('heartbeat failed'));
      expect(failedBeat, `${h.host} logged its failing heartbeat`).to.not.equal(undefined);
      expect(failedBeat?.retryable, `${h.host}'s heartbeat failure is typed retryable`).to.equal(true);
      expect(lines.some((l) => String(l.msg).startsWith('heartbeat recovered'))).to.equal(true);
      // Its released create found the database gone when recording the result, and waited.
      expect(
        lines.some((l) => /^record volumes .* the database is unreachable; retrying/.test(String(l.msg))),
        `${h.host} waited to record a create`,
      ).to.equal(true);
    }
    expect(t.lost, t.line()).to.equal(0);
  });

  it('SIGTERM under load: in-flight creates finish and are acknowledged, the process exits within the graceful timeout', async () => {
    const t = tally('sigterm-under-load');
    await Promise.all([d().start('vol-a', 'volume'), d().start('vol-b', 'volume')]);
    const c = await connect();
    await hang('vol-a', 5);
    const accepted: string[] = [];
    for (let i = 0; i < 60 && (await backend('vol-a')).hanging < 5; i++) {
      t.attempted++;
      accepted.push((await c.volumes.create(ctx, { size: 1, name: `term-${i}` })).id);
    }
    expect((await backend('vol-a')).hanging, 'creates in flight on vol-a').to.equal(5);
    const inFlight = (await allVolumes(c)).filter((v) => v.host === 'vol-a' && v.status === 'creating');
    expect(inFlight).to.have.length(5);

    // Creates keep coming while vol-a drains; they must reach vol-b.
    const refused: unknown[] = [];
    const more = pool(30, 2, async (i) => {
      t.attempted++;
      try {
        accepted.push((await c.volumes.create(ctx, { size: 1, name: `term-more-${i}` })).id);
      } catch (error) {
        refused.push(error);
        t.fail(`refused: ${reasonOf(error)}`);
      }
      await sleep(50);
    });
    const termAt = Date.now();
    const exited = d().kill('vol-a', 'SIGTERM', { timeoutMs: 30_000 });
    // The backend is slow, not dead: the hung creates finish while the service drains.
    await sleep(1000);
    expect(
      await d().control<number>('vol-a', { type: 'fault', service: 'volume', action: 'release' }),
    ).to.equal(5);
    const code = await exited;
    const took = Date.now() - termAt;
    console.log(`      vol-a exited ${took} ms after SIGTERM (graceful timeout 10 s)`);
    expect(code, 'exit code after a drained shutdown').to.equal(0);
    expect(took).to.be.lessThan(10_000 + 2000);
    await more;
    assertTypedRetryable(refused, 'a create refused during the shutdown');

    const rows = await settled(c);
    const byId = new Map(rows.map((v) => [v.id, v]));
    for (const v of inFlight) expect(byId.get(v.id)).to.include({ status: 'available', host: 'vol-a' });
    account(t, accepted, rows);
    // Acknowledged: none of them came back to vol-b as a redelivery.
    const inFlightIds = new Set(inFlight.map((v) => v.id));
    const redelivered = logLines('vol-b').filter((l) => inFlightIds.has(String(l.volumeId)));
    expect(redelivered, 'vol-b saw a finished create again').to.deep.equal([]);
    await waitFor('the topic queue empty', async () => (await queueDepth('volume')).messages === 0);
    expect(t.lost, t.line()).to.equal(0);
  });

  it('a hung backend: its creates time out into error, the service keeps serving other requests', async () => {
    const t = tally('hung-driver');
    const driverTimeout = 4;
    const volA = await d().start('vol-a', 'volume', { managerConfig: { driverTimeout } });
    const c = await connect();
    const target = await c.volumes.create(ctx, { size: 1, name: 'hang-target' });
    await waitFor(
      'target available',
      async () => (await c.volumes.get(ctx, target.id)).status === 'available',
    );

    await hang('vol-a', 3);
    const hung = await Promise.all(
      Array.from({ length: 3 }, (_, i) => c.volumes.create(ctx, { size: 1, name: `hung-${i}` })),
    );
    t.attempted += 3;
    const hungAt = Date.now();
    await waitFor('3 creates hung on the backend', async () => (await backend('vol-a')).hanging === 3);

    // While they hang: creates and calls are served.
    const others = await Promise.all(
      Array.from({ length: 5 }, (_, i) => c.volumes.create(ctx, { size: 1, name: `meanwhile-${i}` })),
    );
    t.attempted += 5;
    await waitFor('the other creates available', async () => {
      const list = await Promise.all(others.map((v) => c.volumes.get(ctx, v.id)));
      return list.every((v) => v.status === 'available');
    });
    t.attempted++;
    await c.volumes.initializeConnection(ctx, target.id, CONNECTOR);
    t.completed++;
    const servedWithin = Date.now() - hungAt;
    for (const v of hung) expect((await c.volumes.get(ctx, v.id)).status).to.equal('creating');
    expect(servedWithin, 'served while the backend hung').to.be.lessThan(driverTimeout * 1000);

    // Then the hung creates time out into error, with a reason naming the timeout.
    const failed = await waitFor(
      'the hung creates in error',
      async () => {
        const list = await Promise.all(hung.map((v) => c.volumes.get(ctx, v.id)));
        return list.every((v) => v.status === 'error') ? list : undefined;
      },
      { timeoutMs: driverTimeout * 1000 + 10_000 },
    );
    for (const v of failed) expect(v.errorReason).to.match(/did not finish .* within 4 s \(driverTimeout\)/);
    expect((await backend('vol-a')).hanging, 'the backend calls are still hung').to.equal(3);

    // Still up and serving: registered up, and a create after the timeouts works.
    const registry = new ServiceRegistry(c.store, { serviceDownTimeSec: SERVICE_DOWN_TIME });
    expect((await registry.get('vol-a', 'stratus-volume'))?.up).to.equal(true);
    const after = await c.volumes.create(ctx, { size: 1, name: 'after-timeout' });
    t.attempted++;
    await waitFor(
      'a create after the timeouts',
      async () => (await c.volumes.get(ctx, after.id)).status === 'available',
    );
    expect(volA.child.exitCode).to.equal(null);
    account(
      t,
      [...hung, ...others, after].map((v) => v.id),
      await settled(c),
    );
    expect(t.failed).to.equal(3);
    expect(t.lost, t.line()).to.equal(0);
  });
});

function shortReason(reason: string): string {
  if (/driverTimeout/.test(reason)) return 'driver timeout';
  if (/interrupted by a service restart/.test(reason)) return 'interrupted by a service restart';
  if (/export could not be re-created/.test(reason)) return 'export lost with the backend';
  return reason.length > 60 ? `${reason.slice(0, 59)}…` : reason;
}

import { RequestContext, ServiceRegistry, StratusError } from '@stratus/core';
import type { Volume } from '@stratus/manager-volume/client';
import { expect } from 'chai';
import { connectClient, type DeploymentClient, demoContext } from '../../src/client.js';
import type { BackendView } from '../../src/control.js';
import { Deployment, rabbitmqctl, skipWithoutEnvironment, sleep, waitFor } from '../../src/deployment.js';
import { type ScenarioReport, waitForVolume } from '../../src/scenario.js';

const INTERRUPTED = 'interrupted by a service restart';

/**
 * Separate OS processes (`bin/serve.ts`: vol-a, vol-b, cmp-1; `bin/client.ts` or this process as the
 * client) on a real RabbitMQ and PostgreSQL. Each test gets its own database, vhost and processes.
 */
describe('multi-process deployment on RabbitMQ + PostgreSQL', function () {
  this.timeout(240_000);

  const ctx = demoContext();
  const admin = RequestContext.admin({ readDeleted: true });
  let deployment: Deployment | undefined;
  let client: DeploymentClient | undefined;
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
    // A test that failed while the broker was stopped must not leave it stopped for everyone else.
    if (brokerStopped) {
      await rabbitmqctl('start_app').catch((error: unknown) => console.error(error));
      brokerStopped = false;
    }
    if (this.currentTest?.state === 'failed' && deployment) {
      console.log(`      logs of the deployment (${deployment.dir}):\n${deployment.allLogTails()}`);
    }
    await client?.close();
    client = undefined;
    await deployment?.destroy();
    deployment = undefined;
  });

  after(() => {
    console.log(`      deployment suite wall time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  function d(): Deployment {
    if (!deployment) throw new Error('no deployment');
    return deployment;
  }

  async function connect(): Promise<DeploymentClient> {
    client = await connectClient({
      databaseUrl: d().settings.databaseUrl,
      transportConfig: d().settings.transportConfig,
    });
    return client;
  }

  async function allVolumes(c: DeploymentClient): Promise<Volume[]> {
    return c.volumes.list(admin, { limit: 1000 });
  }

  async function backend(host: string): Promise<BackendView> {
    return d().control<BackendView>(host, { type: 'inspect', service: 'volume' });
  }

  /** Create `count` volumes, one after another; returns them as written (`creating`). */
  async function createVolumes(c: DeploymentClient, count: number, prefix: string): Promise<Volume[]> {
    const out: Volume[] = [];
    for (let i = 0; i < count; i++)
      out.push(await c.volumes.create(ctx, { size: 1, name: `${prefix}-${i}` }));
    return out;
  }

  /** Messages ready (not yet delivered) in a queue of this deployment, and its consumers. */
  async function queueDepth(queue: string): Promise<{ messages: number; ready: number; consumers: number }> {
    const text = await rabbitmqctl(
      '-q',
      '--no-table-headers',
      'list_queues',
      '-p',
      `stratus-deploy-${d().id}`,
      'name',
      'messages',
      'messages_ready',
      'consumers',
    );
    for (const line of text.split('\n')) {
      const [name, messages, ready, consumers] = line.trim().split(/\s+/);
      if (name === queue) {
        return { messages: Number(messages), ready: Number(ready), consumers: Number(consumers) };
      }
    }
    throw new Error(`queue ${queue} not found in the deployment's vhost`);
  }

  it('runs two volume hosts, a compute host and a client script as separate processes, end to end', async () => {
    const [volA, volB, cmp] = await Promise.all([
      d().start('vol-a', 'volume'),
      d().start('vol-b', 'volume'),
      d().start('cmp-1', 'compute'),
    ]);
    expect(new Set([volA.pid, volB.pid, cmp.pid, process.pid]).size).to.equal(4);

    const c = await connect();
    const registry = new ServiceRegistry(c.store, { serviceDownTimeSec: 60 });
    const services = await registry.list();
    expect(services.map((s) => `${s.host}/${s.binary}/${s.topic}/${s.up}`)).to.deep.equal([
      'cmp-1/stratus-compute/compute/true',
      'vol-a/stratus-volume/volume/true',
      'vol-b/stratus-volume/volume/true',
    ]);

    const run = await d().runClient('vol-a', ['--volumes', '8']);
    expect(run.code, `client failed:\n${run.stderr}`).to.equal(0);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as ScenarioReport;

    // The shared topic queue spread the creates over both storage processes.
    expect(report.volumes).to.have.length(8);
    expect(new Set(report.volumes.map((v) => v.host))).to.deep.equal(new Set(['vol-a', 'vol-b']));
    expect(report.instance).to.include({ host: 'cmp-1', vmState: 'active' });
    // cmp-1 called each volume host for the connection and recorded the attachment.
    expect(report.attached.map((a) => a.host).sort()).to.deep.equal(['vol-a', 'vol-b']);
    for (const a of report.attached) {
      expect(a).to.include({ status: 'in-use', instanceId: report.instance.id });
    }
    expect(report.afterDetach).to.equal('available');
    expect(report.tornDown).to.equal(true);

    // The deletes reached the process that held each volume: every backend is empty again.
    expect((await backend('vol-a')).volumes).to.deep.equal([]);
    expect((await backend('vol-b')).volumes).to.deep.equal([]);
    const hv = await d().control<BackendView>('cmp-1', { type: 'inspect', service: 'compute' });
    expect(hv.instances).to.deep.equal([]);
    const rows = await allVolumes(c);
    expect(rows.map((v) => v.status)).to.deep.equal(Array(8).fill('deleted'));

    // Graceful stop of every host: SIGTERM → drained → exit 0.
    await client?.close();
    client = undefined;
    const codes = await Promise.all(['vol-a', 'vol-b', 'cmp-1'].map((h) => d().kill(h, 'SIGTERM')));
    expect(codes).to.deep.equal([0, 0, 0]);
  });

  it('loses no accepted cast when RabbitMQ restarts mid-run, and the services reconnect by themselves', async () => {
    // Two handlers per volume host, and their creates hang: further casts wait in the topic queue,
    // so the restart hits messages in flight, queued, and being published.
    const narrow = { overrides: { maxConcurrency: 2 } };
    const hosts = await Promise.all([
      d().start('vol-a', 'volume', narrow),
      d().start('vol-b', 'volume', narrow),
      d().start('cmp-1', 'compute'),
    ]);
    for (const host of ['vol-a', 'vol-b']) {
      await d().control(host, {
        type: 'fault',
        service: 'volume',
        action: 'hang',
        method: 'createVolume',
        count: 10_000,
      });
    }
    const c = await connect();

    type Outcome = { phase: 'before' | 'during' | 'after'; id?: string; error?: unknown };
    const outcomes: Outcome[] = [];
    let phase: Outcome['phase'] = 'before';
    let creating = true;
    const loop = (async () => {
      for (let i = 0; creating; i++) {
        const at = phase;
        try {
          const v = await c.volumes.create(ctx, { size: 1, name: `r-${i}` });
          outcomes.push({ phase: at, id: v.id });
        } catch (error) {
          outcomes.push({ phase: at, error });
        }
        await sleep(50);
      }
    })();
    const accepted = (p: Outcome['phase']) => outcomes.filter((o) => o.phase === p && o.id).length;

    try {
      await waitFor('8 creates accepted before the restart', () => accepted('before') >= 8);
      await waitFor(
        'creates waiting in the topic queue',
        async () => (await queueDepth('volume')).ready >= 2,
      );
      phase = 'during';
      brokerStopped = true;
      await rabbitmqctl('stop_app');
      await sleep(1000);
      await rabbitmqctl('start_app');
      brokerStopped = false;
      phase = 'after';
      await waitFor('5 creates accepted after the restart', () => accepted('after') >= 5, {
        timeoutMs: 60_000,
      });
    } finally {
      creating = false;
      await loop;
    }
    // Let the backends work again: hung creates proceed, later ones run normally.
    for (const host of ['vol-a', 'vol-b']) {
      await d().control(host, { type: 'fault', service: 'volume', action: 'clear' });
    }

    const rejected = outcomes.filter((o) => !o.id);
    console.log(
      `      creates accepted before/during/after the restart: ${accepted('before')}/${accepted('during')}/${accepted('after')}, refused while the broker was away: ${rejected.length}`,
    );
    for (const o of rejected) {
      // Refused while the broker was away: typed and retryable, never a hang.
      expect(StratusError.is(o.error), String(o.error)).to.equal(true);
      expect((o.error as StratusError).retryable, String(o.error)).to.equal(true);
    }

    const settled = await waitFor(
      'every volume out of creating',
      async () => {
        const rows = await allVolumes(c);
        return rows.every((v) => v.status !== 'creating') ? rows : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const byId = new Map(settled.map((v) => [v.id, v]));
    const acceptedIds = outcomes.flatMap((o) => (o.id ? [o.id] : []));
    for (const id of acceptedIds) {
      expect(byId.get(id)?.status, `accepted volume ${id}`).to.equal('available');
    }
    for (const v of settled.filter((row) => row.status !== 'available')) {
      expect(v.status).to.equal('error');
      expect(v.errorReason, `volume ${v.id}`).to.be.a('string').and.not.equal('');
    }

    // Exactly once: each available volume exists on the backend of its host, and nowhere else.
    const [a, b] = await Promise.all([backend('vol-a'), backend('vol-b')]);
    const onA = new Set(a.volumes);
    const onB = new Set(b.volumes);
    const available = settled.filter((v) => v.status === 'available');
    for (const v of available) {
      const name = `volume-${v.id}`;
      expect(onA.has(name) !== onB.has(name), `${name} on exactly one backend`).to.equal(true);
      expect(onA.has(name) ? 'vol-a' : 'vol-b').to.equal(v.host);
    }
    expect(onA.size + onB.size).to.equal(available.length);

    // Same processes as before the restart: nobody was restarted to get the connection back.
    for (const h of hosts) {
      expect(h.child.exitCode, `${h.host} exited`).to.equal(null);
      expect(d().host(h.host).pid).to.equal(h.pid);
    }
    expect(c.transport.state).to.equal('open');

    // Each host consumes again: the topic queue reaches both volume hosts, and the direct queues of
    // cmp-1, vol-a and vol-b answer calls (attach = cmp-1 calling the volume host).
    await waitFor(
      '2 consumers on the volume topic',
      async () => (await queueDepth('volume')).consumers === 2,
    );
    const fresh = await createVolumes(c, 6, 'post');
    const done = await Promise.all(fresh.map((v) => waitForVolume(c, ctx, v.id, ['available'])));
    expect(new Set(done.map((v) => v.host))).to.deep.equal(new Set(['vol-a', 'vol-b']));
    const vm = await c.compute.run(ctx, { name: 'after-restart', flavor: 'm1.tiny', imageRef: 'cirros' });
    await waitFor('instance active', async () => (await c.compute.get(ctx, vm.id)).vmState === 'active');
    const fromA = done.find((v) => v.host === 'vol-a');
    const fromB = done.find((v) => v.host === 'vol-b');
    if (!fromA || !fromB) throw new Error('expected a volume on each host');
    await c.compute.attachVolume(ctx, vm.id, { volumeId: fromA.id, mountpoint: '/dev/vdb' });
    await c.compute.attachVolume(ctx, vm.id, { volumeId: fromB.id, mountpoint: '/dev/vdc' });
    expect((await c.volumes.get(ctx, fromA.id)).status).to.equal('in-use');
    expect((await c.volumes.get(ctx, fromB.id)).status).to.equal('in-use');
  });

  it('keeps serving on vol-b when vol-a is SIGKILLed mid-create; on restart the cut-short volumes end in error', async () => {
    await Promise.all([d().start('vol-a', 'volume'), d().start('vol-b', 'volume')]);
    const c = await connect();
    const registry = new ServiceRegistry(c.store, { serviceDownTimeSec: 4 });

    // vol-a's backend never finishes a create: what it takes stays `creating` until it dies.
    await d().control('vol-a', {
      type: 'fault',
      service: 'volume',
      action: 'hang',
      method: 'createVolume',
      count: 1000,
    });
    const batch: Volume[] = [];
    let onA: Volume[] = [];
    for (let round = 0; round < 3 && onA.length === 0; round++) {
      batch.push(...(await createVolumes(c, 6, `k${round}`)));
      const rows = await waitFor('every create taken by a host', async () => {
        const list = await Promise.all(batch.map((v) => c.volumes.get(ctx, v.id)));
        const hung = list.filter((v) => v.host === 'vol-a' && v.status === 'creating');
        const ok = list.every((v) => (v.host === 'vol-b' && v.status === 'available') || hung.includes(v));
        return ok && (await backend('vol-a')).hanging === hung.length ? list : undefined;
      });
      onA = rows.filter((v) => v.host === 'vol-a');
    }
    expect(onA.length, 'creates that vol-a took').to.be.greaterThan(0);
    const onB = batch.filter((v) => !onA.some((a) => a.id === v.id));

    expect(await d().kill('vol-a', 'SIGKILL')).to.equal('SIGKILL');

    // vol-a's unacknowledged creates went back to the topic queue; vol-b refuses to take volumes
    // another host claimed, so they are settled without running twice.
    await waitFor('the topic queue drained', async () => (await queueDepth('volume')).messages === 0);
    for (const v of onA) {
      expect(await c.volumes.get(ctx, v.id)).to.include({ status: 'creating', host: 'vol-a' });
    }
    expect((await backend('vol-b')).volumes).to.deep.equal(onB.map((v) => `volume-${v.id}`).sort());

    // The other host keeps serving: every new create lands on vol-b.
    const meanwhile = await createVolumes(c, 4, 'meanwhile');
    for (const v of await Promise.all(meanwhile.map((m) => waitForVolume(c, ctx, m.id, ['available'])))) {
      expect(v.host).to.equal('vol-b');
    }
    await waitFor('vol-a reported down, vol-b up', async () => {
      const [a, b] = await Promise.all([
        registry.get('vol-a', 'stratus-volume'),
        registry.get('vol-b', 'stratus-volume'),
      ]);
      return a?.up === false && b?.up === true;
    });

    // Restart with the same host name: initHost moves what the crash cut short to error.
    await d().start('vol-a', 'volume');
    for (const v of onA) {
      expect(await c.volumes.get(ctx, v.id)).to.include({
        status: 'error',
        host: 'vol-a',
        errorReason: INTERRUPTED,
      });
    }
    expect((await allVolumes(c)).filter((v) => v.status === 'creating')).to.deep.equal([]);

    // vol-a serves again (a fresh backend, no injected hang), and its error volumes can be deleted.
    const again = await createVolumes(c, 6, 'again');
    const hosts = (await Promise.all(again.map((v) => waitForVolume(c, ctx, v.id, ['available'])))).map(
      (v) => v.host,
    );
    expect(new Set(hosts)).to.deep.equal(new Set(['vol-a', 'vol-b']));
    const broken = onA[0];
    if (!broken) throw new Error('unreachable');
    await c.volumes.delete(ctx, broken.id);
    await waitFor('the error volume deleted', async () => {
      try {
        await c.volumes.get(ctx, broken.id);
        return false;
      } catch (error) {
        return StratusError.is(error, 'NOT_FOUND');
      }
    });
  });
});

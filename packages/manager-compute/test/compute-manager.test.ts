import { ServiceRegistry } from '@stratus/core';
import type { FakeComputeDriver } from '@stratus/driver-fake';
import { admin, projectA, projectB, rejectionOf, waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { sql } from 'kysely';
import { INTERRUPTED_REASON, instanceName, MISSING_REASON } from '../src/index.js';
import { Cluster, computeOf, hypervisorOf, settled } from './helpers.js';

/** Calls about instances (the heartbeat's resource reads may come at any time). */
function instanceCalls(fake: FakeComputeDriver): string[] {
  return fake.calls.map((c) => c.method).filter((m) => m !== 'getAvailableResources');
}

describe('ComputeManager through ComputeApi (fake hypervisor, MemoryTransport, SQLite)', () => {
  let cluster: Cluster;

  beforeEach(async () => {
    cluster = await Cluster.open();
  });

  afterEach(async () => {
    await cluster.stop();
  });

  async function boot(name = 'web', flavor: string = 'm1.tiny') {
    const created = await cluster.api.run(projectA, { name, flavor, imageRef: 'cirros' });
    return settled(cluster, created.id);
  }

  describe('lifecycle', () => {
    it('run: building/scheduling, then active and running on the host that took it', async () => {
      const service = await cluster.startCompute('cp-1');
      const before = new Date(Date.now() - 1000);
      const created = await cluster.api.run(projectA, {
        name: 'web',
        flavor: 'm1.small',
        imageRef: 'cirros',
      });
      expect(created).to.include({
        vmState: 'building',
        taskState: 'scheduling',
        powerState: 'nostate',
        host: null,
        projectId: 'project-a',
        launchedAt: null,
      });
      expect(created.flavor).to.deep.equal({ name: 'm1.small', vcpus: 1, memoryMiB: 2048, rootGiB: 20 });
      const active = await settled(cluster, created.id);
      expect(active).to.include({ vmState: 'active', taskState: null, powerState: 'running', host: 'cp-1' });
      expect(active.launchedAt?.getTime()).to.be.greaterThan(before.getTime());
      const vm = hypervisorOf(service).inspectInstance(instanceName(created.id));
      expect(vm).to.include({ state: 'running', id: created.id });
    });

    it('walks pause/unpause, suspend/resume, stop/start, reboot, rescue/unrescue, console and terminate', async () => {
      const service = await cluster.startCompute('cp-1');
      const fake = hypervisorOf(service);
      const { id } = await boot();
      const name = instanceName(id);
      const step = async (action: Promise<unknown>, vmState: string, powerState: string) => {
        await action;
        const after = await settled(cluster, id);
        expect(after, `after reaching ${vmState}`).to.include({ vmState, powerState, taskState: null });
        return after;
      };

      const pausing = await cluster.api.pause(projectA, id);
      expect(pausing).to.include({ vmState: 'active', taskState: 'pausing' });
      await step(Promise.resolve(), 'paused', 'paused');
      await step(cluster.api.unpause(projectA, id), 'active', 'running');
      await step(cluster.api.suspend(projectA, id), 'suspended', 'suspended');
      await step(cluster.api.resume(projectA, id), 'active', 'running');
      await step(cluster.api.stop(projectA, id), 'stopped', 'shutdown');
      await step(cluster.api.start(projectA, id), 'active', 'running');

      const boots = fake.inspectInstance(name)?.boots ?? 0;
      await step(cluster.api.reboot(projectA, id), 'active', 'running');
      await step(cluster.api.reboot(projectA, id, 'HARD'), 'active', 'running');
      expect(fake.inspectInstance(name)?.boots).to.equal(boots + 2);

      const { password, instance } = await cluster.api.rescue(projectA, id);
      expect(instance.taskState).to.equal('rescuing');
      const rescued = await step(Promise.resolve(), 'rescued', 'running');
      expect(rescued.rescuedAt).to.be.instanceOf(Date);
      expect(fake.inspectInstance(name)).to.include({ rescued: true, rescuePassword: password });
      const unrescued = await step(cluster.api.unrescue(projectA, id), 'active', 'running');
      expect(unrescued.rescuedAt).to.equal(null);
      expect(fake.inspectInstance(name)?.rescued).to.equal(false);

      const console = await cluster.api.getConsoleOutput(projectA, id);
      expect(console).to.include(`instance-id ${id}`);

      const beforeDelete = new Date(Date.now() - 1000);
      await cluster.api.terminate(projectA, id);
      const gone = await waitFor(
        () => cluster.api.get(admin.elevated(true), id),
        (i) => i.deleted,
        'instance to be deleted',
      );
      expect(gone).to.include({ vmState: 'deleted', taskState: null, powerState: 'nostate' });
      expect(gone.terminatedAt?.getTime()).to.be.greaterThan(beforeDelete.getTime());
      expect(gone.deletedAt).to.be.instanceOf(Date);
      expect((await rejectionOf(cluster.api.get(projectA, id))).code).to.equal('NOT_FOUND');
      expect(fake.inspectInstance(name)).to.equal(undefined);
      expect(await cluster.api.list(projectA)).to.deep.equal([]);
    });

    it('refuses an action from the wrong state with InvalidState, without calling the driver', async () => {
      const service = await cluster.startCompute('cp-1');
      const fake = hypervisorOf(service);
      const { id } = await boot();
      await cluster.api.stop(projectA, id);
      await settled(cluster, id);
      fake.clearCalls();

      const paused = await rejectionOf(cluster.api.pause(projectA, id));
      expect(paused.code).to.equal('INVALID_STATE');
      expect(paused.message).to.match(/is stopped; to pause it, it must be active/);
      expect(paused.details).to.include({ reason: 'vm_state', vmState: 'stopped' });
      expect((await rejectionOf(cluster.api.unrescue(projectA, id))).code).to.equal('INVALID_STATE');
      expect((await rejectionOf(cluster.api.reboot(projectA, id, 'SOFT'))).code).to.equal('INVALID_STATE');
      expect(instanceCalls(fake)).to.deep.equal([]);
      expect(await cluster.api.get(projectA, id)).to.include({ vmState: 'stopped', taskState: null });
    });

    it('refuses a second action while one is running (busy), and a redelivered request changes nothing', async () => {
      const service = await cluster.startCompute('cp-1');
      const fake = hypervisorOf(service);
      const { id } = await boot();
      fake.faults.hangNext('pause');
      await cluster.api.pause(projectA, id);
      await waitFor(
        async () => fake.faults.hangingCount,
        (n) => n === 1,
        'pause to hang',
      );
      const busy = await rejectionOf(cluster.api.suspend(projectA, id));
      expect(busy.code).to.equal('INVALID_STATE');
      expect(busy.details).to.include({ reason: 'busy', taskState: 'pausing' });
      fake.faults.releaseHangs();
      expect(await settled(cluster, id)).to.include({ vmState: 'paused' });

      // The same message again: the task is no longer pausing, so nothing happens.
      fake.clearCalls();
      await cluster.rpc.call(admin, { topic: 'compute', host: 'cp-1' }, 'pause_instance', {
        instance_id: id,
      });
      await cluster.rpc.call(admin, { topic: 'compute', host: 'cp-1' }, 'run_instance', { instance_id: id });
      expect(instanceCalls(fake)).to.deep.equal([]);
      expect(await cluster.api.get(projectA, id)).to.include({ vmState: 'paused', taskState: null });
    });

    it('validates input: unknown flavor (listing the known ones), bad fields, bad reboot type', async () => {
      const unknown = await rejectionOf(
        cluster.api.run(projectA, { name: 'x', flavor: 'm9.huge', imageRef: 'i' }),
      );
      expect(unknown.code).to.equal('INVALID_INPUT');
      expect(unknown.message).to.match(/\/flavor/);
      expect(unknown.message).to.match(/m1\.tiny/);
      const bad = await rejectionOf(
        cluster.api.run(projectA, { name: '', flavor: 'm1.tiny', imageRef: 'i', extra: 1 } as never),
      );
      expect(bad.code).to.equal('INVALID_INPUT');
      expect(bad.message).to.match(/\/name/);
      expect(bad.message).to.match(/\/extra/);
      const custom = await cluster.api.run(projectA, {
        name: 'c',
        flavor: { name: 'custom', vcpus: 2, memoryMiB: 256, rootGiB: 0 },
        imageRef: 'i',
      });
      expect(custom.flavor).to.include({ name: 'custom', vcpus: 2 });
      const reboot = await rejectionOf(cluster.api.reboot(projectA, custom.id, 'WARM' as never));
      expect(reboot.code).to.equal('INVALID_INPUT');
      expect(reboot.message).to.match(/\/type/);
    });

    it('uses the flavors option instead of the defaults', async () => {
      const { ComputeApi } = await import('../src/client.js');
      const api = new ComputeApi({
        store: cluster.store,
        rpc: cluster.rpc,
        flavors: { small: { vcpus: 1, memoryMiB: 128, rootGiB: 1 } },
      });
      expect(
        (await api.run(projectA, { name: 'x', flavor: 'small', imageRef: 'i' })).flavor.memoryMiB,
      ).to.equal(128);
      expect(
        (await rejectionOf(api.run(projectA, { name: 'x', flavor: 'm1.tiny', imageRef: 'i' }))).code,
      ).to.equal('INVALID_INPUT');
      expect(
        () =>
          new ComputeApi({
            store: cluster.store,
            rpc: cluster.rpc,
            flavors: { bad: { vcpus: 0, memoryMiB: 1, rootGiB: 1 } },
          }),
      ).to.throw(/\/flavors\/bad\/vcpus/);
    });

    it('an instance no host took yet is deleted at once; its queued run_instance then does nothing', async () => {
      const { id } = await cluster.api.run(projectA, { name: 'early', flavor: 'm1.tiny', imageRef: 'i' });
      await cluster.api.terminate(projectA, id);
      expect(await cluster.api.get(admin.elevated(true), id)).to.include({
        vmState: 'deleted',
        deleted: true,
      });
      const service = await cluster.startCompute('cp-1');
      // A later instance is spawned after the queued message was handled.
      const later = await boot('later');
      expect(later.vmState).to.equal('active');
      const spawned = hypervisorOf(service).calls.filter((c) => c.method === 'spawn');
      expect(spawned.map((c) => (c.args[0] as { id: string }).id)).to.deep.equal([later.id]);
    });
  });

  describe('driver failures', () => {
    it('a failing spawn leaves the instance in error with the reason; it can be terminated', async () => {
      const service = await cluster.startCompute('cp-1');
      hypervisorOf(service).faults.failNext('spawn');
      const { id } = await cluster.api.run(projectA, { name: 'x', flavor: 'm1.tiny', imageRef: 'i' });
      const failed = await settled(cluster, id);
      expect(failed).to.include({ vmState: 'error', taskState: null, powerState: 'nostate', host: 'cp-1' });
      expect(failed.errorReason).to.match(/^spawn failed: /);
      await cluster.api.terminate(projectA, id);
      await waitFor(
        () => cluster.api.get(admin.elevated(true), id),
        (i) => i.deleted,
        'deleted',
      );
    });

    it('a hypervisor without room refuses the spawn: error with its reason', async () => {
      await cluster.startCompute('cp-1', { driverConfig: { vcpus: 1 } });
      const { id } = await cluster.api.run(projectA, { name: 'big', flavor: 'm1.large', imageRef: 'i' });
      const failed = await settled(cluster, id);
      expect(failed.vmState).to.equal('error');
      expect(failed.errorReason).to.match(/Insufficient resources/);
    });

    it('a failing pause puts task_state back, keeps vm_state and records the reason', async () => {
      const service = await cluster.startCompute('cp-1');
      const { id } = await boot();
      hypervisorOf(service).faults.failNext('pause');
      await cluster.api.pause(projectA, id);
      const after = await settled(cluster, id);
      expect(after).to.include({ vmState: 'active', powerState: 'running', taskState: null });
      expect(after.errorReason).to.match(/^pause failed: /);
      await cluster.api.pause(projectA, id);
      expect(await settled(cluster, id)).to.include({ vmState: 'paused', errorReason: null });
    });

    it('a failing destroy leaves the instance in error; terminating again succeeds', async () => {
      const service = await cluster.startCompute('cp-1');
      const { id } = await boot();
      hypervisorOf(service).faults.failNext('destroy');
      await cluster.api.terminate(projectA, id);
      const failed = await settled(cluster, id);
      expect(failed).to.include({ vmState: 'error', deleted: false });
      expect(failed.errorReason).to.match(/^terminate failed: /);
      await cluster.api.terminate(projectA, id);
      await waitFor(
        () => cluster.api.get(admin.elevated(true), id),
        (i) => i.deleted,
        'deleted',
      );
    });
  });

  describe('locks and projects', () => {
    it('a locked instance refuses actions from non-admins; admins may act; owner lock vs admin lock', async () => {
      await cluster.startCompute('cp-1');
      const { id } = await boot();
      expect(await cluster.api.lock(projectA, id)).to.include({ locked: true, lockedBy: 'owner' });
      const refused = await rejectionOf(cluster.api.pause(projectA, id));
      expect(refused.code).to.equal('INVALID_STATE');
      expect(refused.details).to.include({ reason: 'locked' });
      expect((await rejectionOf(cluster.api.terminate(projectA, id))).details).to.include({
        reason: 'locked',
      });
      await cluster.api.pause(admin, id);
      expect(await settled(cluster, id)).to.include({ vmState: 'paused' });

      expect(await cluster.api.unlock(projectA, id)).to.include({ locked: false, lockedBy: null });
      await cluster.api.lock(admin, id);
      expect((await cluster.api.lock(projectA, id)).lockedBy).to.equal('admin');
      expect((await rejectionOf(cluster.api.unlock(projectA, id))).code).to.equal('FORBIDDEN');
      expect(await cluster.api.unlock(admin, id)).to.include({ locked: false });
      await cluster.api.unpause(projectA, id);
      expect(await settled(cluster, id)).to.include({ vmState: 'active' });
    });

    it('the manager itself refuses a locked instance to a non-admin caller and clears the task', async () => {
      const service = await cluster.startCompute('cp-1');
      const { id } = await boot();
      await cluster.api.lock(admin, id);
      // As if the API had let it through: task set, then the request from a member.
      await sql`update instances set task_state = 'pausing' where id = ${id}`.execute(cluster.store.db);
      const refused = await rejectionOf(
        cluster.rpc.call(projectA, { topic: 'compute', host: 'cp-1' }, 'pause_instance', { instance_id: id }),
      );
      expect(refused.code).to.equal('INVALID_STATE');
      expect(refused.message).to.match(/locked/);
      expect(await cluster.api.get(admin, id)).to.include({ vmState: 'active', taskState: null });
      expect(hypervisorOf(service).calls.filter((c) => c.method === 'pause')).to.have.length(0);
    });

    it("another project's instance is NotFound; admin sees every project; list pages with a marker", async () => {
      await cluster.startCompute('cp-1');
      const a1 = await boot('a1');
      const a2 = await boot('a2');
      const b1 = await cluster.api.run(projectB, { name: 'b1', flavor: 'm1.tiny', imageRef: 'i' });
      await settled(cluster, b1.id);
      expect((await rejectionOf(cluster.api.get(projectB, a1.id))).code).to.equal('NOT_FOUND');
      expect((await rejectionOf(cluster.api.pause(projectB, a1.id))).code).to.equal('NOT_FOUND');
      expect((await cluster.api.list(projectA)).map((i) => i.name)).to.deep.equal(['a1', 'a2']);
      expect((await cluster.api.list(admin)).map((i) => i.name)).to.have.members(['a1', 'a2', 'b1']);
      const page1 = await cluster.api.list(projectA, { limit: 1 });
      const page2 = await cluster.api.list(projectA, { limit: 1, marker: page1[0]?.id as string });
      expect(page2.map((i) => i.id)).to.deep.equal([a2.id]);
      expect(await cluster.api.list(projectA, { vmState: 'paused' })).to.deep.equal([]);
      expect((await rejectionOf(cluster.api.list(projectA, { marker: b1.id }))).code).to.equal(
        'INVALID_INPUT',
      );
    });
  });

  describe('periodic tasks', () => {
    it('sync_power_states: a guest that shut itself down becomes stopped; a vanished one nostate', async () => {
      const service = await cluster.startCompute('cp-1');
      const fake = hypervisorOf(service);
      const one = await boot('one');
      const two = await boot('two');
      fake.setPowerState(instanceName(one.id), 'shutdown');
      fake.removeInstance(instanceName(two.id));
      await computeOf(service).syncPowerStates();
      expect(await cluster.api.get(projectA, one.id)).to.include({
        powerState: 'shutdown',
        vmState: 'stopped',
      });
      expect(await cluster.api.get(projectA, two.id)).to.include({
        powerState: 'nostate',
        vmState: 'active',
      });
      // The recorded state is usable: a stopped instance starts again.
      await cluster.api.start(projectA, one.id);
      expect(await settled(cluster, one.id)).to.include({ vmState: 'active', powerState: 'running' });
    });

    it('publishes vcpus, memory and disk (total and used) as capabilities', async () => {
      const service = await cluster.startCompute('cp-1', {
        driverConfig: { vcpus: 8, memoryMiB: 8192, localDiskGiB: 100 },
      });
      const registry = new ServiceRegistry(cluster.store);
      const [record] = await registry.list({ topic: 'compute' });
      expect(record?.capabilities).to.include({ vcpus: 8, vcpusUsed: 0, memoryMiB: 8192, localDiskGiB: 100 });
      await boot('a', 'm1.small');
      await service.reportState();
      const [after] = await registry.list({ topic: 'compute' });
      expect(after?.capabilities).to.include({ vcpusUsed: 1, memoryMiBUsed: 2048, localDiskGiBUsed: 20 });
    });

    it('poll_rescued_instances unrescues rescues older than rescueTimeoutSec, and only those', async () => {
      const service = await cluster.startCompute('cp-1', { managerConfig: { rescueTimeoutSec: 600 } });
      const old = await boot('old');
      const recent = await boot('recent');
      for (const { id } of [old, recent]) {
        await cluster.api.rescue(projectA, id);
        await settled(cluster, id);
      }
      // Backdate one rescue by an hour, on the store's own clock format.
      const hourAgo = new Date(Date.now() - 3600_000).toISOString();
      await sql`update instances set rescued_at = ${hourAgo} where id = ${old.id}`.execute(cluster.store.db);
      await computeOf(service).pollRescuedInstances();
      expect(await settled(cluster, old.id)).to.include({ vmState: 'active', rescuedAt: null });
      expect(await cluster.api.get(projectA, recent.id)).to.include({ vmState: 'rescued' });
      expect(hypervisorOf(service).inspectInstance(instanceName(old.id))?.rescued).to.equal(false);
    });

    it('poll_rescued_instances does nothing when rescueTimeoutSec is 0', async () => {
      const service = await cluster.startCompute('cp-1');
      const { id } = await boot();
      await cluster.api.rescue(projectA, id);
      await settled(cluster, id);
      await sql`update instances set rescued_at = ${'2000-01-01T00:00:00.000Z'} where id = ${id}`.execute(
        cluster.store.db,
      );
      await computeOf(service).pollRescuedInstances();
      expect(await cluster.api.get(projectA, id)).to.include({ vmState: 'rescued', taskState: null });
    });
  });

  describe('initHost', () => {
    it('marks instances the hypervisor no longer knows, and settles interrupted tasks', async () => {
      const driver = cluster.persistentDriver('cp-1');
      const first = await cluster.startCompute('cp-1', { driver });
      const missing = await boot('missing');
      const pausing = await boot('pausing');
      const building = await boot('building');
      driver.faults.hangNext('pause');
      await cluster.api.pause(projectA, pausing.id);
      await waitFor(
        async () => driver.faults.hangingCount,
        (n) => n === 1,
        'pause to hang',
      );
      await first.kill();
      driver.faults.releaseHangs(new Error('the old service is gone'));
      driver.removeInstance(instanceName(missing.id));
      // As if the service had died in the middle of a spawn.
      await sql`update instances set vm_state = 'building', task_state = 'spawning' where id = ${building.id}`.execute(
        cluster.store.db,
      );

      await cluster.startCompute('cp-1', { driver });
      expect(await cluster.api.get(projectA, missing.id)).to.include({
        vmState: 'error',
        powerState: 'nostate',
        errorReason: MISSING_REASON,
      });
      // The hung pause never reached the hypervisor: still running, so active again.
      const settledPause = await cluster.api.get(projectA, pausing.id);
      expect(settledPause).to.include({ vmState: 'active', taskState: null, powerState: 'running' });
      expect(settledPause.errorReason).to.include(INTERRUPTED_REASON);
      expect(await cluster.api.get(projectA, building.id)).to.include({
        vmState: 'error',
        taskState: null,
        errorReason: INTERRUPTED_REASON,
      });
    });

    it('finishes a deletion a stop cut short', async () => {
      const driver = cluster.persistentDriver('cp-1');
      const first = await cluster.startCompute('cp-1', { driver });
      const { id } = await boot();
      driver.faults.hangNext('destroy');
      await cluster.api.terminate(projectA, id);
      await waitFor(
        async () => driver.faults.hangingCount,
        (n) => n === 1,
        'destroy to hang',
      );
      await first.kill();
      driver.faults.releaseHangs(new Error('the old service is gone'));
      await cluster.startCompute('cp-1', { driver });
      expect(await cluster.api.get(admin.elevated(true), id)).to.include({
        vmState: 'deleted',
        deleted: true,
      });
      expect(driver.inspectInstance(instanceName(id))).to.equal(undefined);
    });
  });

  describe('service integration', () => {
    it('answers bad endpoint args with a typed error naming the field, and goes on serving', async () => {
      await cluster.startCompute('cp-1');
      const target = { topic: 'compute', host: 'cp-1' };
      const wrong = await rejectionOf(
        cluster.rpc.call(admin, target, 'reboot_instance', { instance_id: 'x', reboot_type: 'WARM' }),
      );
      expect(wrong.code).to.equal('INVALID_INPUT');
      expect(wrong.message).to.match(/\/reboot_type/);
      const missing = await rejectionOf(
        cluster.rpc.call(admin, target, 'get_console_output', { instance_id: 'nope' }),
      );
      expect(missing.code).to.equal('NOT_FOUND');
      expect((await boot()).vmState).to.equal('active');
    });
  });
});

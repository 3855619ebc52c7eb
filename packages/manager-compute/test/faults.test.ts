import type { StratusError } from '@stratus/core';
import type { FakeComputeDriver } from '@stratus/driver-fake';
import { admin, projectA, StoreOutage, waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { instanceName } from '../src/index.js';
import { Cluster, computeOf, hypervisorOf, settled, volumeBackendOf, volumeStatus } from './helpers.js';

function callsOf(fake: FakeComputeDriver, method: string): number {
  return fake.calls.filter((c) => c.method === method).length;
}

async function until(check: () => boolean, what: string): Promise<void> {
  await waitFor(async () => check(), Boolean, what);
}

describe('ComputeManager during a database outage (SQLite, injected)', () => {
  let cluster: Cluster;
  let outage: StoreOutage;

  beforeEach(async () => {
    outage = new StoreOutage();
    cluster = await Cluster.open();
    // The compute service's store fails while `outage.down`; the API, the volume service and the
    // test use `cluster.store`.
    cluster.computeStore = outage.wrap(cluster.store);
  });

  afterEach(async () => {
    outage.down = false;
    await cluster.stop();
  });

  async function boot() {
    const { id } = await cluster.api.run(projectA, { name: 'web', flavor: 'm1.tiny', imageRef: 'cirros' });
    return settled(cluster, id);
  }

  it('a spawn whose result cannot be recorded waits for the database, then records it without spawning again', async () => {
    const service = await cluster.startCompute('cp-1');
    const fake = hypervisorOf(service);
    fake.faults.hangNext('spawn');
    const { id } = await cluster.api.run(projectA, { name: 'web', flavor: 'm1.tiny', imageRef: 'cirros' });
    await until(() => fake.faults.hangingCount === 1, 'spawn to hang');

    outage.down = true;
    fake.faults.releaseHangs();
    await until(() => outage.failed >= 3, 'attempts to record the spawn');
    expect(await cluster.api.get(projectA, id)).to.include({ vmState: 'building', taskState: 'spawning' });

    outage.down = false;
    expect(await settled(cluster, id)).to.include({ vmState: 'active', powerState: 'running', host: 'cp-1' });
    expect(callsOf(fake, 'spawn')).to.equal(1);
  });

  it('a run_instance that cannot even be claimed is run once the database is back', async () => {
    const service = await cluster.startCompute('cp-1');
    outage.down = true;
    const { id } = await cluster.api.run(projectA, { name: 'web', flavor: 'm1.tiny', imageRef: 'cirros' });
    await until(() => outage.failed >= 3, 'the claim to fail');
    expect(await cluster.api.get(projectA, id)).to.include({ vmState: 'building', taskState: 'scheduling' });

    outage.down = false;
    expect(await settled(cluster, id)).to.include({ vmState: 'active', host: 'cp-1' });
    expect(callsOf(hypervisorOf(service), 'spawn')).to.equal(1);
  });

  it('a run_instance that lost the database right after its claim resumes the spawn', async () => {
    const service = await cluster.startCompute('cp-1');
    outage.downAfterNextUpdate = true;
    const { id } = await cluster.api.run(projectA, { name: 'web', flavor: 'm1.tiny', imageRef: 'cirros' });
    await until(() => outage.failed >= 2, 'the read after the claim to fail');
    expect(await cluster.api.get(projectA, id)).to.include({ taskState: 'spawning', host: 'cp-1' });

    outage.down = false;
    expect(await settled(cluster, id)).to.include({ vmState: 'active', powerState: 'running' });
    expect(callsOf(hypervisorOf(service), 'spawn')).to.equal(1);
  });

  it('a service stopping during an outage gives up its retries without settling the cast', async () => {
    const first = await cluster.startCompute('cp-1');
    const fake = hypervisorOf(first);
    outage.down = true;
    const { id } = await cluster.api.run(projectA, { name: 'web', flavor: 'm1.tiny', imageRef: 'cirros' });
    await until(() => outage.failed >= 3, 'the claim to fail');
    await first.stop();
    const attempts = outage.failed;
    await new Promise((r) => setTimeout(r, 600));
    expect(outage.failed, 'store attempts after the stop').to.equal(attempts);

    // Once the database is back the stopped service does not take the instance; a new one does.
    outage.down = false;
    await new Promise((r) => setTimeout(r, 600));
    expect(await cluster.api.get(projectA, id)).to.include({ taskState: 'scheduling', host: null });
    expect(callsOf(fake, 'spawn')).to.equal(0);
  });

  it('terminate and reboot sent during an outage are done once it ends, each driver step once', async () => {
    const service = await cluster.startCompute('cp-1');
    const fake = hypervisorOf(service);
    const doomed = await boot();
    const rebooted = await boot();

    outage.down = true;
    await cluster.api.terminate(projectA, doomed.id);
    await cluster.api.reboot(projectA, rebooted.id, 'HARD');
    await until(() => outage.failed >= 4, 'both handlers to fail');
    expect(callsOf(fake, 'destroy')).to.equal(0);

    outage.down = false;
    await waitFor(
      () => cluster.api.get(admin.elevated(true), doomed.id),
      (i) => i.deleted,
      'the terminate to finish',
    );
    expect(await settled(cluster, rebooted.id)).to.include({ vmState: 'active', errorReason: null });
    expect(fake.inspectInstance(instanceName(doomed.id))).to.equal(undefined);
    expect(callsOf(fake, 'destroy')).to.equal(1);
    expect(callsOf(fake, 'reboot')).to.equal(1);
  });

  it('a pause whose result cannot be recorded is recorded once the database is back, not redone', async () => {
    const service = await cluster.startCompute('cp-1');
    const fake = hypervisorOf(service);
    const { id } = await boot();
    fake.faults.hangNext('pause');
    await cluster.api.pause(projectA, id);
    await until(() => fake.faults.hangingCount === 1, 'pause to hang');

    outage.down = true;
    fake.faults.releaseHangs();
    await until(() => outage.failed >= 3, 'attempts to record the pause');
    outage.down = false;
    expect(await settled(cluster, id)).to.include({
      vmState: 'paused',
      powerState: 'paused',
      errorReason: null,
    });
    expect(callsOf(fake, 'pause')).to.equal(1);
  });

  it('a destroy whose result cannot be recorded is recorded once the database is back, not redone', async () => {
    const service = await cluster.startCompute('cp-1');
    const fake = hypervisorOf(service);
    const { id } = await boot();
    fake.faults.hangNext('destroy');
    await cluster.api.terminate(projectA, id);
    await until(() => fake.faults.hangingCount === 1, 'destroy to hang');

    outage.down = true;
    fake.faults.releaseHangs();
    await until(() => outage.failed >= 3, 'attempts to record the destroy');
    outage.down = false;
    const gone = await waitFor(
      () => cluster.api.get(admin.elevated(true), id),
      (i) => i.deleted,
      'the terminate to be recorded',
    );
    expect(gone).to.include({ vmState: 'deleted', taskState: null });
    expect(callsOf(fake, 'destroy')).to.equal(1);
  });
});

describe('attach and detach during a database outage of the compute host (SQLite, injected)', () => {
  let cluster: Cluster;
  let outage: StoreOutage;

  beforeEach(async () => {
    outage = new StoreOutage();
    cluster = await Cluster.open();
    cluster.computeStore = outage.wrap(cluster.store);
  });

  afterEach(async () => {
    outage.down = false;
    await cluster.stop();
  });

  async function attached() {
    const volumeHost = await cluster.startVolume('st-1');
    const computeHost = await cluster.startCompute('cp-1');
    const vm = await settled(
      cluster,
      (await cluster.api.run(projectA, { name: 'vm', flavor: 'm1.tiny', imageRef: 'i' })).id,
    );
    const { id } = await cluster.volumes.create(projectA, { size: 1 });
    await volumeStatus(cluster, id, ['available']);
    return { vm, volumeId: id, fake: hypervisorOf(computeHost), volumeHost };
  }

  it('an attach cut by the outage is undone everywhere, its row removed once the database is back; a retry attaches', async () => {
    const { vm, volumeId, fake, volumeHost } = await attached();
    fake.faults.hangNext('attachVolume');
    const attaching = cluster.api
      .attachVolume(projectA, vm.id, { volumeId, mountpoint: '/dev/vdb' })
      .catch((e: unknown) => e as StratusError);
    await until(() => fake.faults.hangingCount === 1, 'the hypervisor attach to hang');
    outage.down = true;
    fake.faults.releaseHangs();
    // The volume bookkeeping fails: the mount and the connection are undone, the row waits.
    await until(() => outage.failed >= 3, 'attempts to remove the attachment');
    outage.down = false;

    const error = await attaching;
    expect(error).to.include({ code: 'STORE_UNAVAILABLE', retryable: true });
    expect(await cluster.api.listAttachments(admin, vm.id)).to.deep.equal([]);
    expect(await cluster.volumes.get(admin, volumeId)).to.include({ status: 'available', instanceId: null });
    expect(fake.inspectInstance(instanceName(vm.id))?.mounts).to.deep.equal({});
    expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${volumeId}`)?.connectors).to.deep.equal([]);

    await cluster.api.attachVolume(projectA, vm.id, { volumeId, mountpoint: '/dev/vdb' });
    expect(await cluster.volumes.get(admin, volumeId)).to.include({ status: 'in-use', instanceId: vm.id });
  });

  it('a detach whose first read meets the outage waits for the database, then detaches', async () => {
    const { vm, volumeId, fake } = await attached();
    await cluster.api.attachVolume(projectA, vm.id, { volumeId, mountpoint: '/dev/vdb' });
    outage.down = true;
    const detaching = cluster.api.detachVolume(projectA, vm.id, volumeId);
    await until(() => outage.failed >= 3, 'the detach to fail');
    outage.down = false;

    await detaching;
    expect(await cluster.api.listAttachments(admin, vm.id)).to.deep.equal([]);
    expect(await cluster.volumes.get(admin, volumeId)).to.include({ status: 'available', instanceId: null });
    expect(fake.inspectInstance(instanceName(vm.id))?.mounts).to.deep.equal({});
  });
});

describe('ComputeManager driverTimeout (hung hypervisor)', () => {
  let cluster: Cluster;

  beforeEach(async () => {
    cluster = await Cluster.open();
  });

  afterEach(async () => {
    await cluster.stop();
  });

  const fast = { managerConfig: { driverTimeout: 0.3 } };

  it('a hung spawn ends in error with the reason; other instances still boot; the late spawn changes nothing', async () => {
    const service = await cluster.startCompute('cp-1', fast);
    const fake = hypervisorOf(service);
    fake.faults.hangNext('spawn');
    const hung = await cluster.api.run(projectA, { name: 'hung', flavor: 'm1.tiny', imageRef: 'i' });
    const failed = await settled(cluster, hung.id);
    expect(failed).to.include({ vmState: 'error', taskState: null });
    expect(failed.errorReason).to.match(
      /^spawn failed: the hypervisor did not finish instance .* \(spawning\) within 0.3 s \(driverTimeout\)/,
    );

    const next = await cluster.api.run(projectA, { name: 'next', flavor: 'm1.tiny', imageRef: 'i' });
    expect(await settled(cluster, next.id)).to.include({ vmState: 'active' });

    expect(fake.faults.releaseHangs()).to.equal(1);
    await until(() => fake.inspectInstance(instanceName(hung.id)) !== undefined, 'the late spawn');
    expect((await cluster.api.get(projectA, hung.id)).vmState).to.equal('error');
    await cluster.api.terminate(projectA, hung.id);
    await waitFor(
      () => cluster.api.get(admin.elevated(true), hung.id),
      (i) => i.deleted,
      'the errored instance to be terminated',
    );
    expect(fake.inspectInstance(instanceName(hung.id))).to.equal(undefined);
  });

  it('a hung reboot frees the instance: task cleared, reason kept, the next action runs', async () => {
    const service = await cluster.startCompute('cp-1', fast);
    const fake = hypervisorOf(service);
    const { id } = await cluster.api
      .run(projectA, { name: 'web', flavor: 'm1.tiny', imageRef: 'i' })
      .then((i) => settled(cluster, i.id));
    fake.faults.hangNext('reboot');
    await cluster.api.reboot(projectA, id, 'SOFT');
    const after = await settled(cluster, id);
    expect(after).to.include({ vmState: 'active', taskState: null });
    expect(after.errorReason).to.match(/^reboot failed: .*within 0.3 s \(driverTimeout\)/);
    await cluster.api.pause(projectA, id);
    expect(await settled(cluster, id)).to.include({ vmState: 'paused', errorReason: null });
    fake.faults.releaseHangs();
  });

  it('a hung destroy puts the instance in error with the reason', async () => {
    const service = await cluster.startCompute('cp-1', fast);
    const fake = hypervisorOf(service);
    const { id } = await cluster.api
      .run(projectA, { name: 'web', flavor: 'm1.tiny', imageRef: 'i' })
      .then((i) => settled(cluster, i.id));
    fake.faults.hangNext('destroy');
    await cluster.api.terminate(projectA, id);
    const failed = await settled(cluster, id);
    expect(failed).to.include({ vmState: 'error', deleted: false });
    expect(failed.errorReason).to.match(/^terminate failed: .*\(deleting\) within 0.3 s \(driverTimeout\)/);
    fake.faults.releaseHangs();
  });

  it('waits for a slow hypervisor by default (600 s), and forever with 0', async () => {
    const byDefault = await cluster.startCompute('cp-1');
    expect(computeOf(byDefault).config.driverTimeout).to.equal(600);
    const never = await cluster.startCompute('cp-2', { managerConfig: { driverTimeout: 0 } });
    await byDefault.kill();
    const fake = hypervisorOf(never);
    fake.faults.hangNext('spawn');
    const { id } = await cluster.api.run(projectA, { name: 'slow', flavor: 'm1.tiny', imageRef: 'i' });
    await until(() => fake.faults.hangingCount === 1, 'spawn to hang');
    await new Promise((r) => setTimeout(r, 400));
    expect(await cluster.api.get(projectA, id)).to.include({ taskState: 'spawning' });
    fake.faults.releaseHangs();
    expect(await settled(cluster, id)).to.include({ vmState: 'active' });
  });
});

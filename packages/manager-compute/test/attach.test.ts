import { type Service, TransportUnavailableError } from '@stratus/core';
import { VolumeManager } from '@stratus/manager-volume';
import { admin, projectA, projectB, rejectionOf, waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import sinon from 'sinon';
import { instanceName } from '../src/index.js';
import { Cluster, computeOf, hypervisorOf, settled, volumeBackendOf, volumeStatus } from './helpers.js';

/**
 * Compute on `cp-1`, volumes on `st-1`: every attach goes compute → volume host (connection) →
 * hypervisor → volume bookkeeping, across two services on one broker and store.
 */
describe('attach and detach across a compute and a volume service (MemoryTransport, SQLite)', () => {
  let cluster: Cluster;
  let computeHost: Service;
  let volumeHost: Service;

  beforeEach(async () => {
    cluster = await Cluster.open();
    volumeHost = await cluster.startVolume('st-1');
    computeHost = await cluster.startCompute('cp-1');
  });

  afterEach(async () => {
    sinon.restore();
    await cluster.stop();
  });

  async function instance(ctx = projectA) {
    const { id } = await cluster.api.run(ctx, { name: 'vm', flavor: 'm1.tiny', imageRef: 'cirros' });
    return settled(cluster, id);
  }

  async function volume(ctx = projectA) {
    const { id } = await cluster.volumes.create(ctx, { size: 1, name: 'data' });
    return volumeStatus(cluster, id, ['available']);
  }

  /** Nothing of the attachment left anywhere: volume available, no mount, no connection, no row. */
  async function expectClean(instanceId: string, volumeId: string) {
    expect(await cluster.volumes.get(admin, volumeId)).to.include({
      status: 'available',
      attachStatus: 'detached',
      instanceId: null,
      mountpoint: null,
    });
    expect(hypervisorOf(computeHost).inspectInstance(instanceName(instanceId))?.mounts).to.deep.equal({});
    expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${volumeId}`)?.connectors).to.deep.equal([]);
    expect(await cluster.api.listAttachments(admin, instanceId)).to.deep.equal([]);
  }

  it('attach: connection from the volume host, mounted in the hypervisor, volume in-use; detach undoes it all', async () => {
    const vm = await instance();
    const vol = await volume();
    const attachment = await cluster.api.attachVolume(projectA, vm.id, {
      volumeId: vol.id,
      mountpoint: '/dev/vdb',
    });
    expect(attachment).to.include({
      instanceId: vm.id,
      volumeId: vol.id,
      mountpoint: '/dev/vdb',
      status: 'attached',
    });
    expect(await cluster.volumes.get(projectA, vol.id)).to.include({
      status: 'in-use',
      attachStatus: 'attached',
      instanceId: vm.id,
      mountpoint: '/dev/vdb',
    });
    const mounts = hypervisorOf(computeHost).inspectInstance(instanceName(vm.id))?.mounts ?? {};
    expect(mounts['/dev/vdb']).to.deep.include({ driverVolumeType: 'iscsi' });
    expect(mounts['/dev/vdb']?.data).to.include({ volumeId: vol.id });
    expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${vol.id}`)?.connectors).to.deep.equal([
      computeOf(computeHost).connector,
    ]);
    expect((await cluster.api.listAttachments(projectA, vm.id)).map((a) => a.volumeId)).to.deep.equal([
      vol.id,
    ]);

    await cluster.api.detachVolume(projectA, vm.id, vol.id);
    await expectClean(vm.id, vol.id);
  });

  it('refuses what cannot be attached: a volume in use, a taken device, a busy instance, a foreign volume', async () => {
    const vm = await instance();
    const other = await instance();
    const vol = await volume();
    const vol2 = await volume();
    await cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' });

    const inUse = await rejectionOf(
      cluster.api.attachVolume(projectA, other.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
    );
    expect(inUse.code).to.equal('INVALID_STATE');
    expect(inUse.message).to.match(/in-use/);
    const device = await rejectionOf(
      cluster.api.attachVolume(projectA, vm.id, { volumeId: vol2.id, mountpoint: '/dev/vdb' }),
    );
    expect(device.code).to.equal('INVALID_STATE');
    expect(device.details).to.include({ reason: 'mountpoint_in_use' });
    expect(await cluster.volumes.get(admin, vol2.id)).to.include({ status: 'available' });

    hypervisorOf(computeHost).faults.hangNext('pause');
    await cluster.api.pause(projectA, other.id);
    const busy = await rejectionOf(
      cluster.api.attachVolume(projectA, other.id, { volumeId: vol2.id, mountpoint: '/dev/vdc' }),
    );
    expect(busy.details).to.include({ reason: 'busy' });
    hypervisorOf(computeHost).faults.releaseHangs();
    await settled(cluster, other.id);

    const bad = await rejectionOf(
      cluster.api.attachVolume(projectA, vm.id, { volumeId: vol2.id, mountpoint: 'vdc' }),
    );
    expect(bad.code).to.equal('INVALID_INPUT');
    expect(bad.message).to.match(/\/mountpoint/);
    const foreign = await volume(projectB);
    expect(
      (
        await rejectionOf(
          cluster.api.attachVolume(projectA, vm.id, { volumeId: foreign.id, mountpoint: '/dev/vdc' }),
        )
      ).code,
    ).to.equal('NOT_FOUND');
    const notAttached = await rejectionOf(cluster.api.detachVolume(projectA, vm.id, vol2.id));
    expect(notAttached.code).to.equal('NOT_FOUND');
  });

  describe('each failure point of attach is undone', () => {
    it('1. initialize_connection fails on the volume host: nothing to undo, the error is typed', async () => {
      const vm = await instance();
      const vol = await volume();
      volumeBackendOf(volumeHost).faults.failNext('initializeConnection');
      const error = await rejectionOf(
        cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
      );
      expect(error.code).to.equal('DRIVER_FAILURE');
      expect(error.message).to.match(/initializeConnection/);
      await expectClean(vm.id, vol.id);
      expect(hypervisorOf(computeHost).calls.filter((c) => c.method === 'attachVolume')).to.have.length(0);
    });

    it('2. the hypervisor attach fails: the connection is revoked', async () => {
      const vm = await instance();
      const vol = await volume();
      hypervisorOf(computeHost).faults.failNext('attachVolume');
      const error = await rejectionOf(
        cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
      );
      expect(error.code).to.equal('DRIVER_FAILURE');
      await expectClean(vm.id, vol.id);
      const volumeCalls = volumeBackendOf(volumeHost).calls.map((c) => c.method);
      expect(volumeCalls).to.include.members(['initializeConnection', 'terminateConnection']);
    });

    it('3a. the volume bookkeeping fails on the volume host: detached in the hypervisor, connection revoked', async () => {
      const vm = await instance();
      const vol = await volume();
      sinon.stub(VolumeManager.prototype, 'attachVolume').rejects(new Error('volume host database hiccup'));
      const error = await rejectionOf(
        cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
      );
      expect(error.message).to.match(/database hiccup/);
      await expectClean(vm.id, vol.id);
      expect(hypervisorOf(computeHost).calls.map((c) => c.method)).to.include.members([
        'attachVolume',
        'detachVolume',
      ]);
    });

    it('3b. the volume was taken meanwhile (reservation lost): everything done for this attach is undone', async () => {
      const vm = await instance();
      const vol = await volume();
      const hypervisor = hypervisorOf(computeHost);
      hypervisor.faults.hangNext('attachVolume');
      const attaching = rejectionOf(
        cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
      );
      await waitFor(
        async () => hypervisor.faults.hangingCount,
        (n) => n === 1,
        'the hypervisor attach to hang',
      );
      // Someone else reserves and attaches the volume through the volume API directly.
      await cluster.volumes.attach(admin, vol.id, { instanceId: 'elsewhere', mountpoint: '/dev/vdz' });
      hypervisor.faults.releaseHangs();
      const error = await attaching;
      expect(error.code).to.equal('INVALID_STATE');
      expect(await cluster.volumes.get(admin, vol.id)).to.include({
        status: 'in-use',
        instanceId: 'elsewhere',
      });
      expect(hypervisor.inspectInstance(instanceName(vm.id))?.mounts).to.deep.equal({});
      expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${vol.id}`)?.connectors).to.deep.equal([]);
      expect(await cluster.api.listAttachments(admin, vm.id)).to.deep.equal([]);
    });

    it('the API forgets the attachment when the compute host cannot be reached', async () => {
      const vm = await instance();
      const vol = await volume();
      const request = sinon
        .stub(cluster.rpc.transport, 'request')
        .rejects(new TransportUnavailableError('the broker is down'));
      const error = await rejectionOf(
        cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
      );
      expect(error.code).to.equal('TRANSPORT_UNAVAILABLE');
      request.restore();
      expect(await cluster.api.listAttachments(admin, vm.id)).to.deep.equal([]);
      // And it can be attached right after.
      await cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' });
      expect(await cluster.volumes.get(admin, vol.id)).to.include({ status: 'in-use' });
    });
  });

  describe('detach failures are undone', () => {
    it('a failing hypervisor detach leaves the volume attached and in-use', async () => {
      const vm = await instance();
      const vol = await volume();
      await cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' });
      hypervisorOf(computeHost).faults.failNext('detachVolume');
      expect((await rejectionOf(cluster.api.detachVolume(projectA, vm.id, vol.id))).code).to.equal(
        'DRIVER_FAILURE',
      );
      expect((await cluster.api.listAttachments(projectA, vm.id)).map((a) => a.status)).to.deep.equal([
        'attached',
      ]);
      expect(await cluster.volumes.get(admin, vol.id)).to.include({ status: 'in-use', instanceId: vm.id });
      expect(
        Object.keys(hypervisorOf(computeHost).inspectInstance(instanceName(vm.id))?.mounts ?? {}),
      ).to.deep.equal(['/dev/vdb']);
      await cluster.api.detachVolume(projectA, vm.id, vol.id);
      await expectClean(vm.id, vol.id);
    });

    it('a failing volume bookkeeping re-connects and re-attaches: still attached and in-use', async () => {
      const vm = await instance();
      const vol = await volume();
      await cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' });
      sinon.stub(VolumeManager.prototype, 'detachVolume').rejects(new Error('volume host database hiccup'));
      expect((await rejectionOf(cluster.api.detachVolume(projectA, vm.id, vol.id))).message).to.match(
        /hiccup/,
      );
      expect((await cluster.api.listAttachments(projectA, vm.id)).map((a) => a.status)).to.deep.equal([
        'attached',
      ]);
      expect(await cluster.volumes.get(admin, vol.id)).to.include({ status: 'in-use', instanceId: vm.id });
      expect(
        Object.keys(hypervisorOf(computeHost).inspectInstance(instanceName(vm.id))?.mounts ?? {}),
      ).to.deep.equal(['/dev/vdb']);
      expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${vol.id}`)?.connectors).to.have.length(1);
      sinon.restore();
      await cluster.api.detachVolume(projectA, vm.id, vol.id);
      await expectClean(vm.id, vol.id);
    });
  });

  it('terminating an instance detaches its volumes first', async () => {
    const vm = await instance();
    const vol1 = await volume();
    const vol2 = await volume();
    await cluster.api.attachVolume(projectA, vm.id, { volumeId: vol1.id, mountpoint: '/dev/vdb' });
    await cluster.api.attachVolume(projectA, vm.id, { volumeId: vol2.id, mountpoint: '/dev/vdc' });
    await cluster.api.terminate(projectA, vm.id);
    await waitFor(
      () => cluster.api.get(admin.elevated(true), vm.id),
      (i) => i.deleted,
      'instance deleted',
    );
    for (const vol of [vol1, vol2]) {
      expect(await cluster.volumes.get(admin, vol.id)).to.include({
        status: 'available',
        attachStatus: 'detached',
      });
      expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${vol.id}`)?.connectors).to.deep.equal([]);
    }
    // The volumes are free again.
    await cluster.volumes.delete(projectA, vol1.id);
    const deleted = await waitFor(
      () => cluster.volumes.get(admin.elevated(true), vol1.id),
      (v) => v.status === 'deleted' || v.status === 'error_deleting',
      'volume deleted',
    );
    expect(deleted.status).to.equal('deleted');
  });

  it('a locked instance refuses attach and detach to its non-admin owner', async () => {
    const vm = await instance();
    const vol = await volume();
    await cluster.api.attachVolume(projectA, vm.id, { volumeId: vol.id, mountpoint: '/dev/vdb' });
    await cluster.api.lock(admin, vm.id);
    expect((await rejectionOf(cluster.api.detachVolume(projectA, vm.id, vol.id))).details).to.include({
      reason: 'locked',
    });
    const vol2 = await volume();
    expect(
      (
        await rejectionOf(
          cluster.api.attachVolume(projectA, vm.id, { volumeId: vol2.id, mountpoint: '/dev/vdc' }),
        )
      ).details,
    ).to.include({ reason: 'locked' });
    await cluster.api.detachVolume(admin, vm.id, vol.id);
    await expectClean(vm.id, vol.id);
  });
});

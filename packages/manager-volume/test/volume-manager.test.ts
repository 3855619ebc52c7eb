import { RequestContext, ServiceRegistry, StratusError } from '@stratus/core';
import { admin, projectA, projectB, rejectionOf, waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { VolumeApi } from '../src/client.js';
import { INTERRUPTED_REASON } from '../src/index.js';
import { Cluster, fakeOf, managerOf, snapshotStatus, volumeStatus } from './helpers.js';

const connector = { host: 'compute-1', initiator: 'iqn.1993-08.org.debian:01:compute-1' };

describe('VolumeManager through VolumeApi (fake driver, MemoryTransport, SQLite)', () => {
  let cluster: Cluster;

  beforeEach(async () => {
    cluster = await Cluster.open();
  });

  afterEach(async () => {
    await cluster.stop();
  });

  describe('create and delete', () => {
    it('creates a volume: creating, then available on the host that took it, exported on the backend', async () => {
      const service = await cluster.startHost('st-1');
      const created = await cluster.api.create(projectA, { size: 2, name: 'data' });
      expect(created).to.include({
        status: 'creating',
        sizeGiB: 2,
        name: 'data',
        projectId: 'project-a',
        userId: 'alice',
      });
      expect(created.host).to.equal(null);
      expect(created.createdAt).to.be.instanceOf(Date);

      const ready = await volumeStatus(cluster, created.id, ['available', 'error']);
      expect(ready).to.include({
        status: 'available',
        host: 'st-1',
        attachStatus: 'detached',
        errorReason: null,
      });
      expect(ready.providerLocation).to.match(/ iqn\.2010-10\.org\.openstack:volume-/);
      expect(ready).to.not.have.property('providerAuth');
      const backend = fakeOf(service).inspectVolume(`volume-${created.id}`);
      expect(backend).to.include({ sizeGiB: 2 });
      expect(backend?.exportedAs).to.equal(ready.providerLocation);
    });

    it('spreads creations over the hosts of the topic', async () => {
      await cluster.startHost('st-1');
      await cluster.startHost('st-2');
      const ids = [];
      for (let i = 0; i < 4; i++) ids.push((await cluster.api.create(projectA, { size: 1 })).id);
      const hosts = new Set<string | null>();
      for (const id of ids) hosts.add((await volumeStatus(cluster, id, ['available'])).host);
      expect([...hosts].sort()).to.deep.equal(['st-1', 'st-2']);
    });

    it('deletes a volume: the row is soft-deleted, the backend volume is gone, get says NotFound', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      await cluster.api.delete(projectA, id);
      const gone = await volumeStatus(cluster, id, ['deleted', 'error_deleting']);
      expect(gone.status).to.equal('deleted');
      expect(gone.deleted).to.equal(true);
      expect(gone.deletedAt).to.be.instanceOf(Date);
      expect(fakeOf(service).inspectVolume(`volume-${id}`)).to.equal(undefined);
      expect((await rejectionOf(cluster.api.get(projectA, id))).code).to.equal('NOT_FOUND');
      expect(await cluster.api.list(projectA)).to.deep.equal([]);
    });

    it('refuses invalid input with InvalidInput naming the field', async () => {
      const cases: [unknown, string][] = [
        [{ size: 0 }, '/size'],
        [{ size: 1.5 }, '/size'],
        [{ size: 1001 }, '/size'],
        [{ size: 1, name: 'x'.repeat(256) }, '/name'],
        [{ size: 1, colour: 'red' }, '/colour'],
      ];
      for (const [input, path] of cases) {
        const error = await rejectionOf(cluster.api.create(projectA, input as { size: number }));
        expect(error.code, JSON.stringify(input)).to.equal('INVALID_INPUT');
        expect((error.details.fields as { path: string }[]).map((f) => f.path)).to.include(path);
      }
      expect(await cluster.api.list(admin)).to.deep.equal([]);
    });

    it('a redelivered create_volume for an available volume changes nothing', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      const before = await volumeStatus(cluster, id, ['available']);
      const result = await cluster.rpc.call(admin, { topic: 'volume', host: 'st-1' }, 'create_volume', {
        volume_id: id,
      });
      expect(result).to.equal(id);
      const after = await cluster.api.get(projectA, id);
      expect(after.providerLocation).to.equal(before.providerLocation);
      expect(fakeOf(service).calls.filter((c) => c.method === 'createVolume')).to.have.length(1);
    });

    it('delete_volume of an already deleted volume does nothing', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      await cluster.api.delete(projectA, id);
      await volumeStatus(cluster, id, ['deleted']);
      fakeOf(service).clearCalls();
      await cluster.rpc.call(admin, { topic: 'volume', host: 'st-1' }, 'delete_volume', { volume_id: id });
      expect(fakeOf(service).calls).to.deep.equal([]);
      expect((await volumeStatus(cluster, id, ['deleted'])).status).to.equal('deleted');
    });

    it('a volume that never got a host (status error) is deleted without any RPC', async () => {
      // No service runs, so the cast waits in the queue; the row is put in error by hand.
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await cluster.store.db.updateTable('volumes').set({ status: 'error' }).where('id', '=', id).execute();
      await cluster.api.delete(projectA, id);
      expect((await volumeStatus(cluster, id, ['deleted'])).deleted).to.equal(true);
    });
  });

  describe('driver failures', () => {
    it('a failing createVolume leaves the row in error with the reason; it can then be deleted', async () => {
      const service = await cluster.startHost('st-1');
      fakeOf(service).faults.failNext('createVolume');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      const failed = await volumeStatus(cluster, id, ['available', 'error']);
      expect(failed.status).to.equal('error');
      expect(failed.host).to.equal('st-1');
      expect(failed.errorReason).to.match(/failNext\('createVolume'\)/);
      await cluster.api.delete(projectA, id);
      expect((await volumeStatus(cluster, id, ['deleted', 'error_deleting'])).status).to.equal('deleted');
    });

    it('a failing createExport leaves the row in error, never half-done', async () => {
      const service = await cluster.startHost('st-1');
      fakeOf(service).faults.failNext('createExport');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      const failed = await volumeStatus(cluster, id, ['available', 'error']);
      expect(failed).to.include({ status: 'error', providerLocation: null });
    });

    it('a failing deleteVolume leaves error_deleting with the reason; deleting again succeeds', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      fakeOf(service).faults.failNext('deleteVolume');
      await cluster.api.delete(projectA, id);
      const failed = await volumeStatus(cluster, id, ['deleted', 'error_deleting']);
      expect(failed.status).to.equal('error_deleting');
      expect(failed.errorReason).to.match(/injected|failNext/);
      await cluster.api.delete(projectA, id);
      expect((await volumeStatus(cluster, id, ['deleted', 'error_deleting'])).status).to.equal('deleted');
    });

    it('a failing extend leaves error_extending and the old size', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      fakeOf(service).faults.failNext('extendVolume');
      await cluster.api.extend(projectA, id, 3);
      const failed = await volumeStatus(cluster, id, ['available', 'error_extending']);
      expect(failed).to.include({ status: 'error_extending', sizeGiB: 1 });
      expect(failed.errorReason).to.be.a('string').and.not.equal('');
    });

    it('a hung backend times out after driverTimeout: the volume ends in error, other creates go on', async () => {
      const service = await cluster.startHost('st-1', { managerConfig: { driverTimeout: 0.3 } });
      fakeOf(service).faults.hangNext('createVolume');
      const hung = await cluster.api.create(projectA, { size: 1 });
      const failed = await volumeStatus(cluster, hung.id, ['available', 'error']);
      expect(failed.status).to.equal('error');
      expect(failed.errorReason).to.match(/did not finish volume .* within 0.3 s \(driverTimeout\)/);
      const next = await cluster.api.create(projectA, { size: 1 });
      expect((await volumeStatus(cluster, next.id, ['available', 'error'])).status).to.equal('available');
      // The hung call finishing late does not resurrect the volume: it stays in error, deletable.
      expect(fakeOf(service).faults.releaseHangs()).to.equal(1);
      await waitFor(
        async () => fakeOf(service).inspectVolume(`volume-${hung.id}`)?.exportedAs ?? null,
        (exported) => exported !== null,
        'the late create to finish on the backend',
      );
      expect((await cluster.api.get(projectA, hung.id)).status).to.equal('error');
      await cluster.api.delete(projectA, hung.id);
      expect((await volumeStatus(cluster, hung.id, ['deleted', 'error_deleting'])).status).to.equal(
        'deleted',
      );
      expect(fakeOf(service).inspectVolume(`volume-${hung.id}`)).to.equal(undefined);
    });
  });

  describe('snapshots', () => {
    it('snapshot → volume from it on the same host → delete all', async () => {
      const service = await cluster.startHost('st-1');
      await cluster.startHost('st-2');
      const { id: source } = await cluster.api.create(projectA, { size: 2 });
      const src = await volumeStatus(cluster, source, ['available']);

      const snap = await cluster.api.createSnapshot(projectA, source, { name: 'nightly' });
      expect(snap).to.include({ status: 'creating', volumeId: source, volumeSizeGiB: 2, name: 'nightly' });
      expect((await snapshotStatus(cluster, snap.id, ['available', 'error'])).status).to.equal('available');

      const tooSmall = await rejectionOf(cluster.api.create(projectA, { size: 1, snapshotId: snap.id }));
      expect(tooSmall.code).to.equal('INVALID_INPUT');
      expect(tooSmall.message).to.match(/\/size/);

      const { id: copy } = await cluster.api.create(projectA, { size: 3, snapshotId: snap.id });
      const made = await volumeStatus(cluster, copy, ['available', 'error']);
      expect(made).to.include({ status: 'available', host: src.host, sourceSnapshotId: snap.id });
      const backend = managerOf(cluster.services.find((s) => s.host === src.host) ?? service).driver;
      expect(await backend.listVolumes()).to.deep.include({ name: `volume-${copy}`, sizeGiB: 3 });

      const refused = await rejectionOf(cluster.api.delete(projectA, source));
      expect(refused.code).to.equal('INVALID_STATE');
      expect(refused.message).to.match(/snapshot/);

      await cluster.api.delete(projectA, copy);
      await cluster.api.deleteSnapshot(projectA, snap.id);
      expect((await snapshotStatus(cluster, snap.id, ['deleted', 'error_deleting'])).status).to.equal(
        'deleted',
      );
      expect((await rejectionOf(cluster.api.getSnapshot(projectA, snap.id))).code).to.equal('NOT_FOUND');
      await cluster.api.delete(projectA, source);
      expect((await volumeStatus(cluster, source, ['deleted', 'error_deleting'])).status).to.equal('deleted');
      expect((await volumeStatus(cluster, copy, ['deleted', 'error_deleting'])).status).to.equal('deleted');
    });

    it('refuses to snapshot an in-use volume unless forced', async () => {
      await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      await cluster.api.attach(projectA, id, { instanceId: 'i-1', mountpoint: '/dev/vdb' });
      const refused = await rejectionOf(cluster.api.createSnapshot(projectA, id));
      expect(refused.code).to.equal('INVALID_STATE');
      expect(refused.message).to.match(/force/);
      const forced = await cluster.api.createSnapshot(projectA, id, { force: true });
      expect((await snapshotStatus(cluster, forced.id, ['available', 'error'])).status).to.equal('available');
    });

    it('a failing createSnapshot leaves the snapshot in error with the reason', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      fakeOf(service).faults.failNext('createSnapshot');
      const snap = await cluster.api.createSnapshot(projectA, id);
      const failed = await snapshotStatus(cluster, snap.id, ['available', 'error']);
      expect(failed.status).to.equal('error');
      expect(failed.errorReason).to.match(/failNext/);
      expect(
        (await cluster.api.listSnapshots(projectA, { volumeId: id, status: 'error' })).map((s) => s.id),
      ).to.deep.equal([snap.id]);
    });
  });

  describe('extend', () => {
    it('extends an available volume to the new size', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      expect((await cluster.api.extend(projectA, id, 4)).status).to.equal('extending');
      const grown = await volumeStatus(cluster, id, ['available', 'error_extending']);
      expect(grown).to.include({ status: 'available', sizeGiB: 4 });
      expect(fakeOf(service).inspectVolume(`volume-${id}`)?.sizeGiB).to.equal(4);
    });

    it('refuses a size that does not grow, and an in-use volume', async () => {
      await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 2 });
      await volumeStatus(cluster, id, ['available']);
      const same = await rejectionOf(cluster.api.extend(projectA, id, 2));
      expect(same.code).to.equal('INVALID_INPUT');
      expect(same.message).to.match(/\/newSize/);
      await cluster.api.attach(projectA, id, { instanceId: 'i-1', mountpoint: '/dev/vdb' });
      expect((await rejectionOf(cluster.api.extend(projectA, id, 3))).code).to.equal('INVALID_STATE');
    });
  });

  describe('connections, attach and detach', () => {
    it('initialize_connection returns iSCSI info; attach → in-use; delete refused; detach → available', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);

      const info = await cluster.api.initializeConnection(projectA, id, connector);
      expect(info.driverVolumeType).to.equal('iscsi');
      expect(info.data).to.include({
        targetIqn: `iqn.2010-10.org.openstack:volume-${id}`,
        targetLun: 1,
        authMethod: 'CHAP',
      });
      expect(fakeOf(service).inspectVolume(`volume-${id}`)?.connectors).to.deep.equal([connector]);

      const attached = await cluster.api.attach(projectA, id, { instanceId: 'i-42', mountpoint: '/dev/vdb' });
      expect(attached).to.include({
        status: 'in-use',
        attachStatus: 'attached',
        instanceId: 'i-42',
        mountpoint: '/dev/vdb',
      });

      const again = await rejectionOf(
        cluster.api.attach(projectA, id, { instanceId: 'i-43', mountpoint: '/dev/vdc' }),
      );
      expect(again.code).to.equal('INVALID_STATE');
      const refused = await rejectionOf(cluster.api.delete(projectA, id));
      expect(refused.code).to.equal('INVALID_STATE');
      expect(refused.message).to.match(/detach/);

      const detached = await cluster.api.detach(projectA, id);
      expect(detached).to.include({
        status: 'available',
        attachStatus: 'detached',
        instanceId: null,
        mountpoint: null,
      });
      await cluster.api.terminateConnection(projectA, id, connector);
      expect(fakeOf(service).inspectVolume(`volume-${id}`)?.connectors).to.deep.equal([]);
      expect((await rejectionOf(cluster.api.detach(projectA, id))).code).to.equal('INVALID_STATE');
    });

    it('undoes the reservation when the host cannot be reached', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      await service.stop();
      const short = new VolumeApi({
        store: cluster.store,
        rpc: cluster.rpc,
        callTimeoutMs: 50,
      });
      const error = await rejectionOf(
        short.attach(projectA, id, { instanceId: 'i-1', mountpoint: '/dev/vdb' }),
      );
      expect(error.code).to.equal('TIMEOUT');
      expect(await cluster.api.get(projectA, id)).to.include({ status: 'available', instanceId: null });
    });

    it('validates the connector and the attachment fields', async () => {
      await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      const badConnector = await rejectionOf(
        cluster.api.initializeConnection(projectA, id, { initiator: 'x' } as never),
      );
      expect(badConnector.code).to.equal('INVALID_INPUT');
      expect(badConnector.message).to.match(/\/connector\/host/);
      const badMount = await rejectionOf(
        cluster.api.attach(projectA, id, { instanceId: 'i-1', mountpoint: 'vdb' }),
      );
      expect(badMount.code).to.equal('INVALID_INPUT');
      expect(badMount.message).to.match(/\/mountpoint/);
    });
  });

  describe('races', () => {
    it('two concurrent deletes: exactly one is accepted, the other is InvalidState', async () => {
      const service = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      fakeOf(service).faults.hangNext('removeExport');
      const results = await Promise.allSettled([
        cluster.api.delete(projectA, id),
        cluster.api.delete(projectA, id),
      ]);
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(fulfilled).to.have.length(1);
      expect(rejected).to.have.length(1);
      expect(StratusError.is(rejected[0]?.reason, 'INVALID_STATE')).to.equal(true);
      await waitFor(
        async () => fakeOf(service).faults.hangingCount,
        (n) => n === 1,
        'removeExport to hang',
      );
      fakeOf(service).faults.releaseHangs();
      expect((await volumeStatus(cluster, id, ['deleted', 'error_deleting'])).status).to.equal('deleted');
      expect(fakeOf(service).calls.filter((c) => c.method === 'deleteVolume')).to.have.length(1);
    });

    it('delete during attach: exactly one wins, the loser is InvalidState', async () => {
      const service = await cluster.startHost('st-1');
      for (let round = 0; round < 4; round++) {
        const { id } = await cluster.api.create(projectA, { size: 1 });
        await volumeStatus(cluster, id, ['available']);
        // Hold a winning delete in `deleting`, so the loser sees the state it lost to.
        fakeOf(service).faults.hangNext('removeExport');
        const ops = [
          cluster.api.attach(projectA, id, { instanceId: 'i-1', mountpoint: '/dev/vdb' }),
          cluster.api.delete(projectA, id),
        ];
        if (round % 2) ops.reverse();
        const results = await Promise.allSettled(ops);
        const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(rejected, `round ${round}`).to.have.length(1);
        expect(StratusError.is(rejected[0]?.reason, 'INVALID_STATE'), String(rejected[0]?.reason)).to.equal(
          true,
        );
        fakeOf(service).faults.clear();
        const final = await volumeStatus(cluster, id, ['in-use', 'deleted']);
        if (final.status === 'in-use') await cluster.api.detach(projectA, id);
        if (final.status === 'in-use') await cluster.api.delete(projectA, id);
        await volumeStatus(cluster, id, ['deleted']);
      }
    });

    it('delete racing a snapshot: never a deleted volume with a live snapshot', async () => {
      await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      const results = await Promise.allSettled([
        cluster.api.createSnapshot(projectA, id),
        cluster.api.delete(projectA, id),
      ]);
      expect(results.filter((r) => r.status === 'rejected')).to.have.length(1);
      const snaps = await cluster.api.listSnapshots(admin, { volumeId: id });
      const volume = await volumeStatus(cluster, id, ['available', 'deleted']);
      expect(snaps.length === 0 || volume.status === 'available').to.equal(true);
    });
  });

  describe('quotas', () => {
    it('counts volumes and gigabytes per project, with a message giving the limit and usage', async () => {
      await cluster.stop();
      cluster = await Cluster.open({ api: { quotas: { volumes: 2, gigabytes: 5, snapshots: 1 } } });
      await cluster.startHost('st-1');
      const first = await cluster.api.create(projectA, { size: 3 });
      const tooBig = await rejectionOf(cluster.api.create(projectA, { size: 3 }));
      expect(tooBig.code).to.equal('QUOTA_EXCEEDED');
      expect(tooBig.message)
        .to.match(/gigabytes/)
        .and.match(/3 GiB in use of a limit of 5/);
      await cluster.api.create(projectA, { size: 2 });
      const tooMany = await rejectionOf(cluster.api.create(projectA, { size: 1 }));
      expect(tooMany.code).to.equal('QUOTA_EXCEEDED');
      expect(tooMany.message).to.match(/2 volumes in use of a limit of 2/);
      // Another project has its own quota.
      await cluster.api.create(projectB, { size: 5 });

      await volumeStatus(cluster, first.id, ['available']);
      expect((await rejectionOf(cluster.api.extend(projectA, first.id, 4))).code).to.equal('QUOTA_EXCEEDED');
      await cluster.api.createSnapshot(projectA, first.id);
      expect((await rejectionOf(cluster.api.createSnapshot(projectA, first.id))).code).to.equal(
        'QUOTA_EXCEEDED',
      );
    });

    it('concurrent creates never exceed the quota', async () => {
      await cluster.stop();
      cluster = await Cluster.open({ api: { quotas: { volumes: 3 } } });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => cluster.api.create(projectA, { size: 1 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(3);
      expect(await cluster.api.list(projectA)).to.have.length(3);
    });
  });

  describe('update', () => {
    it('renames a volume and changes its description, within its project only', async () => {
      await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1, name: 'old', description: 'first' });
      await volumeStatus(cluster, id, ['available']);
      const renamed = await cluster.api.update(projectA, id, { name: 'new' });
      expect(renamed).to.include({ name: 'new', description: 'first', status: 'available' });
      const cleared = await cluster.api.update(projectA, id, { description: null });
      expect(cleared).to.include({ name: 'new', description: null });
      expect((await rejectionOf(cluster.api.update(projectB, id, { name: 'x' }))).code).to.equal('NOT_FOUND');
      const bad = await rejectionOf(
        cluster.api.update(projectA, id, { name: 'x'.repeat(256), size: 3 } as never),
      );
      expect(bad.code).to.equal('INVALID_INPUT');
      expect(bad.message).to.contain('/name').and.to.contain('/size');
      expect((await cluster.api.get(projectA, id)).name).to.equal('new');
    });
  });

  describe('projects', () => {
    it("another project's volume is NotFound; admin sees every project", async () => {
      await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      for (const attempt of [
        cluster.api.get(projectB, id),
        cluster.api.delete(projectB, id),
        cluster.api.extend(projectB, id, 2),
        cluster.api.createSnapshot(projectB, id),
        cluster.api.attach(projectB, id, { instanceId: 'i-1', mountpoint: '/dev/vdb' }),
        cluster.api.initializeConnection(projectB, id, connector),
      ]) {
        expect((await rejectionOf(attempt)).code).to.equal('NOT_FOUND');
      }
      expect(await cluster.api.list(projectB)).to.deep.equal([]);
      await cluster.api.create(projectB, { size: 1 });
      expect((await cluster.api.list(admin)).map((v) => v.projectId).sort()).to.deep.equal([
        'project-a',
        'project-b',
      ]);
      expect((await cluster.api.get(admin, id)).id).to.equal(id);
      const noProject = new RequestContext({ userId: 'x', projectId: null });
      expect((await rejectionOf(cluster.api.create(noProject, { size: 1 }))).code).to.equal('FORBIDDEN');
    });

    it('lists a page at a time with limit and marker, and filters by status', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await cluster.api.create(projectA, { size: 1 })).id);
      const first = await cluster.api.list(projectA, { limit: 2 });
      const second = await cluster.api.list(projectA, { limit: 2, marker: first[1]?.id as string });
      const third = await cluster.api.list(projectA, { limit: 2, marker: second[1]?.id as string });
      expect([...first, ...second, ...third].map((v) => v.id).sort()).to.deep.equal([...ids].sort());
      expect(third).to.have.length(1);
      expect(await cluster.api.list(projectA, { status: 'available' })).to.deep.equal([]);
      expect((await rejectionOf(cluster.api.list(projectA, { marker: 'nope' }))).code).to.equal(
        'INVALID_INPUT',
      );
      expect((await rejectionOf(cluster.api.list(projectA, { status: 'bogus' as never }))).code).to.equal(
        'INVALID_INPUT',
      );
    });
  });

  describe('service integration', () => {
    it('answers bad endpoint args with a typed error naming the field, and goes on serving', async () => {
      await cluster.startHost('st-1');
      const target = { topic: 'volume', host: 'st-1' };
      const wrongType = await rejectionOf(cluster.rpc.call(admin, target, 'create_volume', { volume_id: 5 }));
      expect(wrongType.code).to.equal('INVALID_INPUT');
      expect(wrongType.message).to.match(/\/volume_id/);
      const extra = await rejectionOf(
        cluster.rpc.call(admin, target, 'extend_volume', { volume_id: 'v', new_size: 2, x: 1 }),
      );
      expect(extra.code).to.equal('INVALID_INPUT');
      expect(extra.message).to.match(/\/x/);
      // Deleting what is not there is done already (idempotent).
      expect(await cluster.rpc.call(admin, target, 'delete_volume', { volume_id: 'no-such' })).to.equal(
        undefined,
      );
      const notFound = await rejectionOf(
        cluster.rpc.call(admin, target, 'initialize_connection', { volume_id: 'nope', connector }),
      );
      expect(notFound.code).to.equal('NOT_FOUND');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      expect((await volumeStatus(cluster, id, ['available'])).status).to.equal('available');
    });

    it('publishes the backend capacity in the service registry', async () => {
      const service = await cluster.startHost('st-1', { driverConfig: { capacityGiB: 50 } });
      const registry = new ServiceRegistry(cluster.store);
      const [record] = await registry.list({ topic: 'volume' });
      expect(record?.capabilities).to.include({
        totalCapacityGiB: 50,
        freeCapacityGiB: 50,
        provisionedCapacityGiB: 0,
      });
      const { id } = await cluster.api.create(projectA, { size: 7 });
      await volumeStatus(cluster, id, ['available']);
      await service.reportState();
      const [after] = await registry.list({ topic: 'volume' });
      expect(after?.capabilities).to.include({ freeCapacityGiB: 43, provisionedCapacityGiB: 7 });
      expect(after?.up).to.equal(true);
    });

    it('restart recovery: an operation cut short is moved to its error state by the next start', async () => {
      const first = await cluster.startHost('st-1');
      fakeOf(first).faults.hangNext('createVolume');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await waitFor(
        async () => fakeOf(first).faults.hangingCount,
        (n) => n === 1,
        'createVolume to hang',
      );
      await first.kill();
      expect(await cluster.api.get(projectA, id)).to.include({ status: 'creating', host: 'st-1' });

      await cluster.startHost('st-1');
      const recovered = await cluster.api.get(projectA, id);
      expect(recovered).to.include({ status: 'error', errorReason: INTERRUPTED_REASON });
    });

    it('restart recovery: deleting, extending and snapshot states, and re-exports of available volumes', async () => {
      const driver = cluster.persistentDriver();
      const first = await cluster.startHost('st-1', { driver });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await cluster.api.create(projectA, { size: 1 })).id);
      for (const id of ids) await volumeStatus(cluster, id, ['available']);
      const [keep, toDelete, toExtend, snapped] = ids as [string, string, string, string];
      const snap = await cluster.api.createSnapshot(projectA, snapped);
      await snapshotStatus(cluster, snap.id, ['available']);

      driver.faults.hangNext('removeExport').hangNext('extendVolume').hangNext('deleteSnapshot');
      await cluster.api.delete(projectA, toDelete);
      await cluster.api.extend(projectA, toExtend, 2);
      await cluster.api.deleteSnapshot(projectA, snap.id);
      await waitFor(
        async () => driver.faults.hangingCount,
        (n) => n === 3,
        'three calls to hang',
      );
      await first.stop();
      driver.faults.releaseHangs(new Error('process died'));
      driver.clearCalls();

      await cluster.startHost('st-1', { driver });
      expect(await cluster.api.get(projectA, toDelete)).to.include({
        status: 'error_deleting',
        errorReason: INTERRUPTED_REASON,
      });
      expect(await cluster.api.get(projectA, toExtend)).to.include({ status: 'error_extending', sizeGiB: 1 });
      expect(await cluster.api.getSnapshot(projectA, snap.id)).to.include({ status: 'error_deleting' });
      expect(await cluster.api.get(projectA, keep)).to.include({ status: 'available' });
      const reexported = driver.calls
        .filter((c) => c.method === 'ensureExport')
        .map((c) => (c.args[0] as { id: string }).id);
      expect(reexported).to.include.members([keep, snapped]);
    });

    it('initHost marks a volume error when its export cannot be re-created', async () => {
      const first = await cluster.startHost('st-1');
      const { id } = await cluster.api.create(projectA, { size: 1 });
      await volumeStatus(cluster, id, ['available']);
      await first.stop();
      // A fresh fake backend does not have the volume any more.
      await cluster.startHost('st-1');
      const marked = await cluster.api.get(projectA, id);
      expect(marked.status).to.equal('error');
      expect(marked.errorReason).to.match(/export could not be re-created/);
    });
  });
});

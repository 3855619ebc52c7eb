import { postgresSchemaFixture, projectA, rejectionOf } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { Cluster, fakeOf, snapshotStatus, volumeStatus } from './helpers.js';

describe('VolumeManager end to end on PostgreSQL', function () {
  this.timeout(20000);
  const pg = postgresSchemaFixture({ schemaPrefix: 'stratus_volume' });
  let cluster: Cluster | undefined;

  beforeEach(async () => {
    cluster = await Cluster.open({ store: await pg.freshStore() });
  });

  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('create → snapshot → delete snapshot → extend → attach/detach → delete', async () => {
    const c = cluster!;
    const service = await c.startHost('pg-1');
    const created = await c.api.create(projectA, { size: 1, name: 'pg' });
    expect(created.createdAt).to.be.instanceOf(Date);
    expect((await volumeStatus(c, created.id, ['available', 'error'])).status).to.equal('available');

    const snap = await c.api.createSnapshot(projectA, created.id);
    expect((await snapshotStatus(c, snap.id, ['available', 'error'])).status).to.equal('available');
    expect((await rejectionOf(c.api.delete(projectA, created.id))).code).to.equal('INVALID_STATE');
    await c.api.deleteSnapshot(projectA, snap.id);
    expect((await snapshotStatus(c, snap.id, ['deleted', 'error_deleting'])).status).to.equal('deleted');

    await c.api.extend(projectA, created.id, 2);
    expect(await volumeStatus(c, created.id, ['available', 'error_extending'])).to.include({
      status: 'available',
      sizeGiB: 2,
    });

    const info = await c.api.initializeConnection(projectA, created.id, { host: 'compute-1' });
    expect(info.driverVolumeType).to.equal('iscsi');
    expect(
      await c.api.attach(projectA, created.id, { instanceId: 'i-1', mountpoint: '/dev/vdb' }),
    ).to.include({
      status: 'in-use',
    });
    expect(await c.api.detach(projectA, created.id)).to.include({
      status: 'available',
      attachStatus: 'detached',
    });

    await c.api.delete(projectA, created.id);
    const gone = await volumeStatus(c, created.id, ['deleted', 'error_deleting']);
    expect(gone).to.include({ status: 'deleted', deleted: true });
    expect(fakeOf(service).inspectVolume(`volume-${created.id}`)).to.equal(undefined);
  });

  it('two concurrent deletes and concurrent creates against the quota stay consistent', async () => {
    const c = cluster!;
    const service = await c.startHost('pg-1');
    const { id } = await c.api.create(projectA, { size: 1 });
    await volumeStatus(c, id, ['available']);
    fakeOf(service).faults.hangNext('removeExport');
    const results = await Promise.allSettled([c.api.delete(projectA, id), c.api.delete(projectA, id)]);
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    fakeOf(service).faults.clear();
    await volumeStatus(c, id, ['deleted']);

    const creates = await Promise.allSettled(
      Array.from({ length: 14 }, () => c.api.create(projectA, { size: 1 })),
    );
    expect(creates.filter((r) => r.status === 'fulfilled')).to.have.length(10);
    expect(await c.api.list(projectA)).to.have.length(10);
  });
});

import { admin, postgresSchemaFixture, projectA, rejectionOf, waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { sql } from 'kysely';
import { instanceName } from '../src/index.js';
import { Cluster, computeOf, hypervisorOf, settled, volumeBackendOf, volumeStatus } from './helpers.js';

describe('ComputeManager with a volume service on PostgreSQL', function () {
  this.timeout(20000);
  const pg = postgresSchemaFixture({ schemaPrefix: 'stratus_compute' });
  let cluster: Cluster | undefined;

  beforeEach(async () => {
    cluster = await Cluster.open({ store: await pg.freshStore() });
  });

  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it('run → attach (compute cp-1, volume st-1) → failed attach undone → detach → rescue timeout → terminate', async () => {
    const c = cluster!;
    const volumeHost = await c.startVolume('st-1');
    const computeHost = await c.startCompute('cp-1', { managerConfig: { rescueTimeoutSec: 60 } });
    const { id } = await c.api.run(projectA, { name: 'pg', flavor: 'm1.tiny', imageRef: 'cirros' });
    const vm = await settled(c, id);
    expect(vm).to.include({ vmState: 'active', powerState: 'running', host: 'cp-1' });
    expect(vm.launchedAt).to.be.instanceOf(Date);

    const vol = await volumeStatus(c, (await c.volumes.create(projectA, { size: 1 })).id, ['available']);
    const failing = await volumeStatus(c, (await c.volumes.create(projectA, { size: 1 })).id, ['available']);

    await c.api.attachVolume(projectA, id, { volumeId: vol.id, mountpoint: '/dev/vdb' });
    expect(await c.volumes.get(projectA, vol.id)).to.include({ status: 'in-use', instanceId: id });

    hypervisorOf(computeHost).faults.failNext('attachVolume');
    const error = await rejectionOf(
      c.api.attachVolume(projectA, id, { volumeId: failing.id, mountpoint: '/dev/vdc' }),
    );
    expect(error.code).to.equal('DRIVER_FAILURE');
    expect(await c.volumes.get(projectA, failing.id)).to.include({
      status: 'available',
      attachStatus: 'detached',
    });
    expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${failing.id}`)?.connectors).to.deep.equal([]);

    await c.api.detachVolume(projectA, id, vol.id);
    expect(await c.volumes.get(projectA, vol.id)).to.include({
      status: 'available',
      attachStatus: 'detached',
    });
    expect(hypervisorOf(computeHost).inspectInstance(instanceName(id))?.mounts).to.deep.equal({});

    // The rescue timeout compares on the database clock (PostgreSQL interval arithmetic).
    await c.api.rescue(projectA, id);
    await settled(c, id);
    await computeOf(computeHost).pollRescuedInstances();
    expect(await c.api.get(projectA, id)).to.include({ vmState: 'rescued' });
    await sql`update instances set rescued_at = now() - interval '2 hours' where id = ${id}`.execute(
      c.store.db,
    );
    await computeOf(computeHost).pollRescuedInstances();
    expect(await settled(c, id)).to.include({ vmState: 'active' });

    await c.api.attachVolume(projectA, id, { volumeId: vol.id, mountpoint: '/dev/vdb' });
    await c.api.terminate(projectA, id);
    const gone = await waitFor(
      () => c.api.get(admin.elevated(true), id),
      (i) => i.deleted,
      'instance deleted',
    );
    expect(gone.terminatedAt).to.be.instanceOf(Date);
    expect(await c.volumes.get(projectA, vol.id)).to.include({ status: 'available' });
  });

  it('two concurrent attaches of one volume: exactly one wins, nothing is left of the other', async () => {
    const c = cluster!;
    const volumeHost = await c.startVolume('st-1');
    await c.startCompute('cp-1');
    const first = await settled(
      c,
      (await c.api.run(projectA, { name: 'a', flavor: 'm1.tiny', imageRef: 'i' })).id,
    );
    const second = await settled(
      c,
      (await c.api.run(projectA, { name: 'b', flavor: 'm1.tiny', imageRef: 'i' })).id,
    );
    const vol = await volumeStatus(c, (await c.volumes.create(projectA, { size: 1 })).id, ['available']);
    const results = await Promise.allSettled([
      c.api.attachVolume(projectA, first.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
      c.api.attachVolume(projectA, second.id, { volumeId: vol.id, mountpoint: '/dev/vdb' }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).to.have.length(1);
    expect(lost).to.have.length(1);
    expect(lost[0]?.reason).to.have.property('code', 'INVALID_STATE');
    const winner = results[0]?.status === 'fulfilled' ? first.id : second.id;
    expect(await c.volumes.get(projectA, vol.id)).to.include({ status: 'in-use', instanceId: winner });
    expect(volumeBackendOf(volumeHost).inspectVolume(`volume-${vol.id}`)?.connectors).to.have.length(1);
  });
});

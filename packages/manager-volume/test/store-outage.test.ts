import { admin, projectA, StoreOutage } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { Cluster, fakeOf, volumeStatus } from './helpers.js';

describe('VolumeManager during a database outage (SQLite, injected)', () => {
  let cluster: Cluster;
  let outage: StoreOutage;

  beforeEach(async () => {
    outage = new StoreOutage();
    cluster = await Cluster.open();
    // The service's store fails while `outage.down`; the API and the test read through `cluster.store`.
    cluster.serviceStore = outage.wrap(cluster.store);
  });

  afterEach(async () => {
    outage.down = false;
    await cluster.stop();
  });

  it('a create whose result cannot be recorded waits for the database, then records it without redoing the backend work', async () => {
    const service = await cluster.startHost('st-1');
    const fake = fakeOf(service);
    fake.faults.hangNext('createVolume');
    const { id } = await cluster.api.create(projectA, { size: 1 });
    await volumeStatus(cluster, id, ['creating']);
    for (let i = 0; i < 200 && fake.faults.hangingCount === 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(fake.faults.hangingCount).to.equal(1);

    outage.down = true;
    fake.faults.releaseHangs();
    // The backend work is done; recording it fails for as long as the database is away.
    for (let i = 0; i < 200 && outage.failed < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(outage.failed, 'attempts to record the result').to.be.at.least(2);
    expect((await cluster.api.get(admin, id)).status).to.equal('creating');

    outage.down = false;
    expect((await volumeStatus(cluster, id, ['available', 'error'])).status).to.equal('available');
    expect(fake.calls.filter((c) => c.method === 'createVolume')).to.have.length(1);
  });

  it('a create that cannot even be claimed is run again once the database is back', async () => {
    const service = await cluster.startHost('st-1');
    outage.down = true;
    const { id } = await cluster.api.create(projectA, { size: 1 });
    for (let i = 0; i < 200 && outage.failed < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect((await cluster.api.get(admin, id)).status).to.equal('creating');

    outage.down = false;
    expect((await volumeStatus(cluster, id, ['available', 'error'])).status).to.equal('available');
    expect(fakeOf(service).calls.filter((c) => c.method === 'createVolume')).to.have.length(1);
  });
});

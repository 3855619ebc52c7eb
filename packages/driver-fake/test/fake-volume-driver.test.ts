import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { schemaIssues, withDefaults } from '@stratus/core';
import { expect } from 'chai';
import plugins, { compute, FakeVolumeConfig, type FakeVolumeDriver, volume } from '../src/index.js';
import { env, rejection, snap, vol, volumeDriver } from './helpers.js';

const connector = { host: 'compute-1', initiator: 'iqn.1993-08.org.debian:01:abc' };

describe('@stratus/driver-fake manifests', () => {
  it('default-exports the volume and compute manifests, also named volume and compute', () => {
    expect(plugins).to.deep.equal([volume, compute]);
    expect(plugins.map((m) => [m.name, m.kind, m.contract])).to.deep.equal([
      ['@stratus/driver-fake', 'volume-driver', '^1.0.0'],
      ['@stratus/driver-fake', 'compute-driver', '^1.0.0'],
    ]);
    expect(Object.isFrozen(volume)).to.equal(true);
  });

  it('fills every volume config default from {} and refuses unknown keys', () => {
    expect(withDefaults(FakeVolumeConfig, {}).value).to.deep.equal({
      capacityGiB: 1000,
      thin: false,
      maxOverSubscriptionRatio: 20,
      snapshotReserveRatio: 1,
      targetPrefix: 'iqn.2010-10.org.openstack:',
      portal: '127.0.0.1:3260',
      backendName: 'fake',
    });
    expect(
      schemaIssues(FakeVolumeConfig, { ...withDefaults(FakeVolumeConfig, {}).value, size: 1 }),
    ).to.deep.equal([{ path: '/size', message: 'is not a known property' }]);
  });

  it('create() builds a FakeVolumeDriver with the config it is given', async () => {
    const { value } = withDefaults(FakeVolumeConfig, { capacityGiB: 7 });
    const driver = (await volume.create(value, env())) as FakeVolumeDriver;
    expect((await driver.getVolumeStats(true)).totalCapacityGiB).to.equal(7);
  });
});

describe('FakeVolumeDriver', () => {
  describe('thick capacity', () => {
    it('refuses a volume past the free space like a full volume group, naming requested and free GiB', async () => {
      const d = volumeDriver({ capacityGiB: 10 });
      await d.createVolume(vol('a', 6));
      const error = await rejection(d.createVolume(vol('b', 5)), 'DRIVER_FAILURE');
      expect(error.details).to.deep.include({ reason: 'insufficient_capacity', requestedGiB: 5, freeGiB: 4 });
      expect(error.message).to.match(/raise capacityGiB/);
      await d.createVolume(vol('c', 4));
      expect((await d.getVolumeStats(true)).freeCapacityGiB).to.equal(0);
    });

    it('a snapshot reserves its whole volume size by default, and a share of it with snapshotReserveRatio', async () => {
      const full = volumeDriver({ capacityGiB: 10 });
      await full.createVolume(vol('a', 4));
      await full.createSnapshot(snap('s1', 'a', 4));
      expect((await full.getVolumeStats(true)).freeCapacityGiB).to.equal(2);
      const error = await rejection(full.createSnapshot(snap('s2', 'a', 4)), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('insufficient_capacity');

      const half = volumeDriver({ capacityGiB: 10, snapshotReserveRatio: 0.3 });
      await half.createVolume(vol('a', 4));
      await half.createSnapshot(snap('s1', 'a', 4));
      expect((await half.getVolumeStats(true)).freeCapacityGiB).to.equal(10 - 4 - 2);
    });

    it('deleting a snapshot gives its space back', async () => {
      const d = volumeDriver({ capacityGiB: 10 });
      await d.createVolume(vol('a', 4));
      await d.createSnapshot(snap('s', 'a', 4));
      await d.deleteSnapshot(snap('s', 'a', 4));
      expect((await d.getVolumeStats(true)).freeCapacityGiB).to.equal(6);
    });

    it('extend past the free space fails and keeps the size', async () => {
      const d = volumeDriver({ capacityGiB: 10 });
      await d.createVolume(vol('a', 4));
      await rejection(d.extendVolume(vol('a', 4), 11), 'DRIVER_FAILURE');
      expect(d.inspectVolume('a')?.sizeGiB).to.equal(4);
      await d.extendVolume(vol('a', 4), 10);
      expect((await d.getVolumeStats(true)).freeCapacityGiB).to.equal(0);
    });
  });

  describe('thin capacity', () => {
    it('provisions up to capacity × maxOverSubscriptionRatio without allocating', async () => {
      const d = volumeDriver({ capacityGiB: 10, thin: true, maxOverSubscriptionRatio: 2 });
      await d.createVolume(vol('a', 15));
      let stats = await d.getVolumeStats(true);
      expect(stats).to.deep.include({
        freeCapacityGiB: 10,
        provisionedCapacityGiB: 15,
        thinProvisioning: true,
        maxOverSubscriptionRatio: 2,
      });
      const error = await rejection(d.createVolume(vol('b', 6)), 'DRIVER_FAILURE');
      expect(error.details).to.deep.include({ reason: 'insufficient_capacity', provisionableGiB: 5 });
      await d.createVolume(vol('b', 5));
      stats = await d.getVolumeStats(true);
      expect(stats.provisionedCapacityGiB).to.equal(20);
    });

    it('a volume made from a snapshot allocates the copied data; the snapshot itself allocates nothing', async () => {
      const d = volumeDriver({ capacityGiB: 10, thin: true, maxOverSubscriptionRatio: 10 });
      await d.createVolume(vol('a', 4));
      await d.createSnapshot(snap('s', 'a', 4));
      expect((await d.getVolumeStats(true)).freeCapacityGiB).to.equal(10);
      await d.createVolumeFromSnapshot(vol('b', 8), snap('s', 'a', 4));
      expect(d.inspectVolume('b')).to.deep.include({ sizeGiB: 8, allocatedGiB: 4, origin: 's' });
      expect((await d.getVolumeStats(true)).freeCapacityGiB).to.equal(6);
    });

    it('copying from snapshots fails once the pool is really full, whatever the ratio', async () => {
      const d = volumeDriver({ capacityGiB: 5, thin: true, maxOverSubscriptionRatio: 100 });
      await d.createVolume(vol('a', 3));
      await d.createSnapshot(snap('s', 'a', 3));
      await d.createVolumeFromSnapshot(vol('b', 3), snap('s', 'a', 3));
      const error = await rejection(
        d.createVolumeFromSnapshot(vol('c', 3), snap('s', 'a', 3)),
        'DRIVER_FAILURE',
      );
      expect(error.details).to.deep.include({ reason: 'insufficient_capacity', freeGiB: 2 });
    });
  });

  describe('volumes and snapshots', () => {
    it('creating an existing volume with another size is Conflict; with the same size succeeds', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a', 2));
      await d.createVolume(vol('a', 2));
      await rejection(d.createVolume(vol('a', 3)), 'CONFLICT');
      expect(await d.listVolumes()).to.deep.equal([{ name: 'a', sizeGiB: 2 }]);
    });

    it('volumes and snapshots share one namespace', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      await d.createSnapshot(snap('s', 'a'));
      await rejection(d.createVolume(vol('s')), 'CONFLICT');
      await rejection(d.createSnapshot(snap('a', 'a')), 'CONFLICT');
    });

    it('a snapshot name reused for another volume is Conflict; for the same volume it succeeds', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      await d.createVolume(vol('b'));
      await d.createSnapshot(snap('s', 'a'));
      await d.createSnapshot(snap('s', 'a'));
      await rejection(d.createSnapshot(snap('s', 'b')), 'CONFLICT');
      expect(d.listSnapshots()).to.deep.equal(['s']);
    });

    it('deleteVolume with snapshots names them in the InvalidState error', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      await d.createSnapshot(snap('s1', 'a'));
      await d.createSnapshot(snap('s2', 'a'));
      const error = await rejection(d.deleteVolume(vol('a')), 'INVALID_STATE');
      expect(error.details).to.deep.include({ reason: 'has_snapshots', snapshots: ['s1', 's2'] });
    });

    it('names outside the backend pattern are InvalidInput on every entry point', async () => {
      const d = volumeDriver();
      const bad = vol('bad/name');
      await rejection(d.createVolume(bad), 'INVALID_INPUT');
      await rejection(d.deleteVolume(bad), 'INVALID_INPUT');
      await rejection(d.extendVolume(bad, 2), 'INVALID_INPUT');
      await rejection(d.createExport(bad), 'INVALID_INPUT');
      await rejection(d.createSnapshot(snap('ok', 'bad name')), 'INVALID_INPUT');
      await rejection(d.deleteSnapshot(snap('-x', 'a')), 'INVALID_INPUT');
    });

    it('extendVolume to a fractional size is InvalidInput', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      const error = await rejection(d.extendVolume(vol('a'), 2.5), 'INVALID_INPUT');
      expect(error.details.fields).to.deep.equal([
        { path: '/newSizeGiB', message: '2.5 is not a whole number of GiB of at least 1' },
      ]);
    });
  });

  describe('exports and connections', () => {
    it('createExport returns an iSCSI provider location and CHAP auth, and the same again when repeated', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('volume-1'));
      const update = await d.createExport(vol('volume-1'), connector);
      expect(update?.providerLocation).to.equal('127.0.0.1:3260,1 iqn.2010-10.org.openstack:volume-1 1');
      expect(update?.providerAuth).to.match(/^CHAP [0-9a-f]{20} [0-9a-f]{32}$/);
      expect(await d.createExport(vol('volume-1'))).to.deep.equal(update);
    });

    it('each export gets its own secret', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      await d.createVolume(vol('b'));
      const a = await d.createExport(vol('a'));
      const b = await d.createExport(vol('b'));
      expect(a?.providerAuth).to.not.equal(b?.providerAuth);
    });

    it('initializeConnection returns the CHAP credentials of the export and records the connector', async () => {
      const d = volumeDriver({ portal: '10.0.0.5:3260', targetPrefix: 'iqn.2024-01.test:' });
      await d.createVolume(vol('a'));
      const update = await d.createExport(vol('a'));
      const [, user, secret] = (update?.providerAuth ?? '').split(' ');
      const info = await d.initializeConnection(vol('a'), connector);
      expect(info).to.deep.equal({
        driverVolumeType: 'iscsi',
        data: {
          targetPortal: '10.0.0.5:3260',
          targetIqn: 'iqn.2024-01.test:a',
          targetLun: 1,
          volumeId: 'id-a',
          authMethod: 'CHAP',
          authUsername: user,
          authPassword: secret,
        },
      });
      expect(d.inspectVolume('a')?.connectors).to.deep.equal([connector]);
      await d.terminateConnection(vol('a'), connector);
      expect(d.inspectVolume('a')?.connectors).to.deep.equal([]);
    });

    it('initializeConnection before createExport is InvalidState saying to export first', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      const error = await rejection(d.initializeConnection(vol('a'), connector), 'INVALID_STATE');
      expect(error.message).to.match(/call createExport/);
    });

    it('initializeConnection with a connector without host is InvalidInput', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      await d.createExport(vol('a'));
      await rejection(d.initializeConnection(vol('a'), { initiator: 'x' } as never), 'INVALID_INPUT');
    });

    it('ensureExport on a restarted backend re-creates the export with the stored credentials', async () => {
      const before = volumeDriver();
      await before.createVolume(vol('a'));
      const stored = { ...vol('a'), ...(await before.createExport(vol('a'))) };
      const original = await before.initializeConnection(stored, connector);

      const after = volumeDriver();
      await after.createVolume(vol('a'));
      await after.ensureExport(stored);
      await after.ensureExport(stored);
      expect(await after.initializeConnection(stored, connector)).to.deep.equal(original);
    });

    it('ensureExport without stored provider fields exports nothing', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      await d.ensureExport(vol('a'));
      expect(d.inspectVolume('a')?.exportedAs).to.equal(null);
    });

    it('ensureExport with unparsable provider fields is InvalidInput naming both fields', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      const error = await rejection(
        d.ensureExport({ ...vol('a'), providerLocation: 'nonsense', providerAuth: 'PLAIN x' }),
        'INVALID_INPUT',
      );
      expect((error.details.fields as Array<{ path: string }>).map((f) => f.path)).to.deep.equal([
        '/volume/providerLocation',
        '/volume/providerAuth',
      ]);
    });

    it('removeExport drops the connections with the target', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      await d.createExport(vol('a'));
      await d.initializeConnection(vol('a'), connector);
      await d.removeExport(vol('a'));
      expect(d.inspectVolume('a')).to.deep.include({ exportedAs: null, connectors: [] });
      await rejection(d.initializeConnection(vol('a'), connector), 'INVALID_STATE');
    });
  });

  describe('stats', () => {
    it('getVolumeStats() returns the cached figures until asked to refresh', async () => {
      const d = volumeDriver({ capacityGiB: 10 });
      expect((await d.getVolumeStats()).freeCapacityGiB).to.equal(10);
      await d.createVolume(vol('a', 3));
      expect((await d.getVolumeStats()).freeCapacityGiB).to.equal(10);
      expect((await d.getVolumeStats(true)).freeCapacityGiB).to.equal(7);
      expect((await d.getVolumeStats()).freeCapacityGiB).to.equal(7);
    });

    it('reports thick stats without an over-subscription ratio', async () => {
      const stats = await volumeDriver({ backendName: 'lab' }).getVolumeStats(true);
      expect(stats).to.deep.equal({
        backendName: 'lab',
        vendorName: 'Stratus',
        driverVersion: '1.0.0',
        storageProtocol: 'iSCSI',
        totalCapacityGiB: 1000,
        freeCapacityGiB: 1000,
        provisionedCapacityGiB: 0,
        thinProvisioning: false,
      });
    });
  });

  describe('stateFile', () => {
    it('keeps volumes, snapshots and exports in the file, so a new process finds them', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'fake-state-'));
      try {
        const file = path.join(dir, 'backend.json');
        const first = volumeDriver({ stateFile: file });
        await first.createVolume(vol('v1', 2));
        const exported = await first.createExport(vol('v1', 2));
        await first.createSnapshot(snap('s1', 'v1', 2));
        await first.createVolume(vol('v2'));
        await first.deleteVolume(vol('v2'));
        // A failed change writes nothing.
        first.faults.failNext('createVolume');
        await rejection(first.createVolume(vol('v3')), 'DRIVER_FAILURE');

        const second = volumeDriver({ stateFile: file });
        expect((await second.listVolumes()).map((v) => v.name)).to.deep.equal(['v1']);
        expect(second.listSnapshots()).to.deep.equal(['s1']);
        expect(second.inspectVolume('v1')?.exportedAs).to.equal(exported?.providerLocation);
        expect((await second.getVolumeStats(true)).freeCapacityGiB).to.equal(1000 - 4);
        await second.deleteSnapshot(snap('s1', 'v1', 2));
        await second.deleteVolume(vol('v1', 2));
        expect(await volumeDriver({ stateFile: file }).listVolumes()).to.deep.equal([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('without stateFile, nothing is written and a new driver starts empty', async () => {
      const first = volumeDriver();
      await first.createVolume(vol('v1'));
      expect(await volumeDriver().listVolumes()).to.deep.equal([]);
    });
  });

  describe('close', () => {
    it('refuses calls after close() with InvalidState', async () => {
      const d = volumeDriver();
      await d.close();
      const error = await rejection(d.listVolumes(), 'INVALID_STATE');
      expect(error.message).to.match(/after close/);
    });
  });
});

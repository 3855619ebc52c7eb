import { Writable } from 'node:stream';
import {
  createLogger,
  type Logger,
  matchFilters,
  StratusError,
  type StratusErrorCode,
  silentLogger,
  withDefaults,
} from '@stratus/core';
import { expect } from 'chai';
import sinon from 'sinon';
import { LVM_COMMANDS, LvmDriverConfig, LvmVolumeDriver } from '../../src/index.js';
import { FakeLvmHost } from '../support/fake-lvm.js';

const GiB = 1024 ** 3;

function config(raw: Record<string, unknown> = {}): LvmDriverConfig {
  const { value, issues } = withDefaults(LvmDriverConfig, {
    volumeGroup: 'volumes',
    retryDelayMs: 10,
    ...raw,
  });
  expect(issues).to.deep.equal([]);
  return value;
}

function make(
  raw: Record<string, unknown> = {},
  host = new FakeLvmHost(),
  logger: Logger = silentLogger(),
): { driver: LvmVolumeDriver; host: FakeLvmHost; sleep: sinon.SinonStub } {
  const sleep = sinon.stub().resolves();
  const driver = new LvmVolumeDriver(
    config(raw),
    { host: 'st-1', logger, executor: host, dataDir: '/nonexistent' },
    { sleep },
  );
  return { driver, host, sleep };
}

async function rejects(promise: Promise<unknown>, code: StratusErrorCode): Promise<StratusError> {
  try {
    await promise;
  } catch (e) {
    if (StratusError.is(e, code)) return e;
    throw e;
  }
  expect.fail(`expected ${code}`);
}

const vol = (name: string, sizeGiB = 1, extra: object = {}) => ({
  id: `id-${name}`,
  name,
  sizeGiB,
  ...extra,
});
const snap = (name: string, volumeName: string, volumeSizeGiB = 1) => ({
  id: `id-${name}`,
  name,
  volumeId: `id-${volumeName}`,
  volumeName,
  volumeSizeGiB,
});
const L = ['env', 'LC_ALL=C'];

describe('LvmVolumeDriver', () => {
  afterEach(() => sinon.restore());

  describe('command lines', () => {
    it('reads the VG and LVs with machine-readable, explicit-column reports', async () => {
      const { driver, host } = make();
      await driver.getVolumeStats(true);
      expect(host.commands).to.deep.include([
        ...L,
        'vgs',
        '--noheadings',
        '--units=b',
        '--nosuffix',
        '--separator=|',
        '--options=vg_name,vg_size,vg_free,vg_extent_size,lv_count',
        '/dev/volumes',
      ]);
      expect(host.commands).to.deep.include([
        ...L,
        'lvs',
        '--noheadings',
        '--units=b',
        '--nosuffix',
        '--separator=|',
        '--options=lv_name,lv_attr,lv_size,origin,pool_lv,data_percent,lv_tags',
        '/dev/volumes',
      ]);
    });

    it('creates a thick volume with lvcreate --size in GiB, with the command time limit', async () => {
      const { driver, host } = make({ commandTimeoutMs: 5000 });
      await driver.createVolume(vol('volume-1', 2));
      const [create] = host.ran('lvcreate');
      expect(create?.argv).to.deep.equal([
        ...L,
        'lvcreate',
        '--yes',
        '--name=volume-1',
        '--size=2g',
        '/dev/volumes',
      ]);
      expect(create?.options.timeoutMs).to.equal(5000);
    });

    it('creates a thin volume in the pool with --thin --virtualsize', async () => {
      const { driver, host } = make({ lvmType: 'thin' });
      await driver.setup();
      await driver.createVolume(vol('volume-1', 3));
      expect(host.ran('lvcreate', '--thin').map((r) => r.argv)).to.deep.equal([
        [
          ...L,
          'lvcreate',
          '--yes',
          '--name=volume-1',
          '--thin',
          '--virtualsize=3g',
          '/dev/volumes/volumes-pool',
        ],
      ]);
    });

    it('setup creates the thin pool at thinPoolShare of the free space, once', async () => {
      const { driver, host } = make({ lvmType: 'thin', thinPoolShare: 0.9, thinPoolName: 'tp' });
      await driver.setup();
      await driver.setup();
      expect(host.ran('lvcreate').map((r) => r.argv)).to.deep.equal([
        [...L, 'lvcreate', '--yes', '--type=thin-pool', '--extents=90%FREE', '--name=tp', '/dev/volumes'],
      ]);
      await driver.checkForSetupError();
    });

    it('takes a thick snapshot of the origin size, tagged, under an escaped name', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1', 2));
      await driver.createSnapshot(snap('snapshot-1', 'volume-1', 2));
      expect(host.ran('--snapshot')[0]?.argv).to.deep.equal([
        ...L,
        'lvcreate',
        '--yes',
        '--name=_snapshot-1',
        '--snapshot',
        '--size=2g',
        '--addtag=stratus_snapshot',
        '/dev/volumes/volume-1',
      ]);
      expect((await driver.listVolumes()).map((v) => v.name)).to.deep.equal(['volume-1']);
    });

    it('takes a thin snapshot without a size', async () => {
      const { driver, host } = make({ lvmType: 'thin' });
      await driver.setup();
      await driver.createVolume(vol('volume-1'));
      await driver.createSnapshot(snap('snapshot-1', 'volume-1'));
      expect(host.ran('--snapshot')[0]?.argv).to.deep.equal([
        ...L,
        'lvcreate',
        '--yes',
        '--name=_snapshot-1',
        '--snapshot',
        '--addtag=stratus_snapshot',
        '/dev/volumes/volume-1',
      ]);
    });

    it('wipes a thick volume with direct-I/O dd before lvremove --force', async () => {
      const { driver, host } = make({ commandTimeoutMs: 1000 });
      await driver.createVolume(vol('volume-1', 2));
      await driver.deleteVolume(vol('volume-1', 2));
      const tail = host.commands.slice(-2);
      expect(tail).to.deep.equal([
        ['dd', 'if=/dev/zero', 'of=/dev/volumes/volume-1', 'bs=1M', 'count=2048', 'oflag=direct'],
        [...L, 'lvremove', '--force', '/dev/volumes/volume-1'],
      ]);
      // Data commands get the time limit per GiB.
      expect(host.ran('dd')[0]?.options.timeoutMs).to.equal(2000);
    });

    it('wipes at most volumeClearSizeMiB, and nothing with volumeClear none', async () => {
      const limited = make({ volumeClearSizeMiB: 64 });
      await limited.driver.createVolume(vol('volume-1'));
      await limited.driver.deleteVolume(vol('volume-1'));
      expect(limited.host.ran('dd')[0]?.argv).to.include('count=64');

      const none = make({ volumeClear: 'none' });
      await none.driver.createVolume(vol('volume-1'));
      await none.driver.deleteVolume(vol('volume-1'));
      expect(none.host.ran('dd')).to.have.length(0);
      expect(none.host.ran('lvremove')).to.have.length(1);
    });

    it('never wipes thin volumes (their blocks come back zeroed)', async () => {
      const { driver, host } = make({ lvmType: 'thin' });
      await driver.setup();
      await driver.createVolume(vol('volume-1'));
      await driver.deleteVolume(vol('volume-1'));
      expect(host.ran('dd')).to.have.length(0);
    });

    it("wipes a thick snapshot's exception store, not its view", async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      await driver.createSnapshot(snap('snapshot-1', 'volume-1'));
      await driver.deleteSnapshot(snap('snapshot-1', 'volume-1'));
      expect(host.ran('dd')[0]?.argv).to.include('of=/dev/mapper/volumes-_snapshot--1-cow');
      expect(host.commands.at(-1)).to.deep.equal([...L, 'lvremove', '--force', '/dev/volumes/_snapshot-1']);
    });

    it('copies a thick snapshot into a new volume with dd, snapshot size only', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      await driver.createSnapshot(snap('snapshot-1', 'volume-1'));
      await driver.createVolumeFromSnapshot(vol('volume-2', 3), snap('snapshot-1', 'volume-1'));
      expect(host.ran('dd').at(-1)?.argv).to.deep.equal([
        'dd',
        'if=/dev/volumes/_snapshot-1',
        'of=/dev/volumes/volume-2',
        'bs=1M',
        'count=1024',
        'iflag=direct',
        'oflag=direct',
      ]);
      expect(host.lvs.get('volume-2')?.sizeBytes).to.equal(3 * GiB);
    });

    it('removes the half-made volume when the copy fails', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      await driver.createSnapshot(snap('snapshot-1', 'volume-1'));
      host.failNext(['dd', 'iflag=direct'], 1, 'dd: error reading: Input/output error');
      await rejects(
        driver.createVolumeFromSnapshot(vol('volume-2'), snap('snapshot-1', 'volume-1')),
        'COMMAND_FAILED',
      );
      expect(host.lvs.has('volume-2')).to.equal(false);
    });

    it('makes a thin volume from a snapshot as an active thin snapshot, grown to its size', async () => {
      const { driver, host } = make({ lvmType: 'thin' });
      await driver.setup();
      await driver.createVolume(vol('volume-1'));
      await driver.createSnapshot(snap('snapshot-1', 'volume-1'));
      await driver.createVolumeFromSnapshot(vol('volume-2', 2), snap('snapshot-1', 'volume-1'));
      expect(host.commands.slice(-2)).to.deep.equal([
        [
          ...L,
          'lvcreate',
          '--yes',
          '--name=volume-2',
          '--snapshot',
          '--setactivationskip=n',
          '/dev/volumes/_snapshot-1',
        ],
        [...L, 'lvextend', '--size=2g', '/dev/volumes/volume-2'],
      ]);
      expect(host.ran('dd')).to.have.length(0);
    });

    it('extends with lvextend --size', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      await driver.extendVolume(vol('volume-1'), 4);
      expect(host.commands.at(-1)).to.deep.equal([...L, 'lvextend', '--size=4g', '/dev/volumes/volume-1']);
    });

    it('every command the driver ran passed its own filters (the fake refuses others)', async () => {
      const { driver, host } = make();
      await driver.setup();
      await driver.checkForSetupError();
      await driver.createVolume(vol('volume-1'));
      const exported = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      await driver.initializeConnection(exported, { host: 'c1', initiator: 'iqn.1993-08.org.debian:01:abc' });
      await driver.removeExport(exported);
      await driver.deleteVolume(vol('volume-1'));
      for (const argv of host.commands)
        expect(matchFilters(LVM_COMMANDS, argv).allowed, argv.join(' ')).to.equal(true);
    });
  });

  describe('retries and robustness', () => {
    it('retries lvremove while the LV is in use, with doubling backoff and udevadm settle', async () => {
      const { driver, host, sleep } = make({ volumeClear: 'none', lvremoveRetries: 3, retryDelayMs: 100 });
      await driver.createVolume(vol('volume-1'));
      host.failNext(['lvremove'], 5, '  Logical volume volumes/volume-1 in use.');
      host.failNext(
        ['lvremove'],
        5,
        '  device-mapper: remove ioctl on (253:2) failed: Device or resource busy',
      );
      await driver.deleteVolume(vol('volume-1'));
      expect(host.ran('lvremove')).to.have.length(3);
      expect(host.ran('udevadm', 'settle')).to.have.length(2);
      expect(sleep.args.map((a) => a[0])).to.deep.equal([100, 200]);
      expect(host.lvs.has('volume-1')).to.equal(false);
    });

    it('gives up after lvremoveRetries and reports the command failure', async () => {
      const { driver, host } = make({ volumeClear: 'none', lvremoveRetries: 1 });
      await driver.createVolume(vol('volume-1'));
      host.failNext(['lvremove'], 5, '  Can\'t remove open logical volume "volume-1"');
      host.failNext(['lvremove'], 5, '  Can\'t remove open logical volume "volume-1"');
      const error = await rejects(driver.deleteVolume(vol('volume-1')), 'COMMAND_FAILED');
      expect(error.details.exitCode).to.equal(5);
      expect(host.ran('lvremove')).to.have.length(2);
    });

    it('does not retry lvremove on other failures', async () => {
      const { driver, host } = make({ volumeClear: 'none' });
      await driver.createVolume(vol('volume-1'));
      host.failNext(['lvremove'], 5, '  Internal error: something else');
      await rejects(driver.deleteVolume(vol('volume-1')), 'COMMAND_FAILED');
      expect(host.ran('lvremove')).to.have.length(1);
      expect(host.ran('udevadm')).to.have.length(0);
    });

    it('treats an LV gone by the time of the retry as removed', async () => {
      const { driver, host } = make({ volumeClear: 'none' });
      await driver.createVolume(vol('volume-1'));
      host.failNext(['lvremove'], 5, '  Logical volume volumes/volume-1 in use.');
      host.failNext(['lvremove'], 5, '  Failed to find logical volume "volumes/volume-1"');
      await driver.deleteVolume(vol('volume-1'));
    });

    it('goes on when udevadm is not installed', async () => {
      const { driver, host } = make({ volumeClear: 'none' });
      await driver.createVolume(vol('volume-1'));
      host.failNext(['lvremove'], 5, '  Logical volume volumes/volume-1 in use.');
      host.failNext(['udevadm'], 127, 'udevadm: not found');
      await driver.deleteVolume(vol('volume-1'));
      expect(host.lvs.has('volume-1')).to.equal(false);
    });

    it('retries vgs and lvs after a segfault (exit 139)', async () => {
      const { driver, host } = make();
      host.failNext(['vgs'], 139, 'Segmentation fault');
      host.failNext(['lvs'], 139, 'Segmentation fault');
      const stats = await driver.getVolumeStats(true);
      expect(stats.totalCapacityGiB).to.equal(100);
      expect(host.ran('vgs')).to.have.length(2);
      expect(host.ran('lvs')).to.have.length(2);
    });

    it('gives up on lvs after repeated segfaults', async () => {
      const { driver, host } = make();
      for (let i = 0; i < 3; i++) host.failNext(['lvs'], 139, 'Segmentation fault');
      await rejects(driver.listVolumes(), 'COMMAND_FAILED');
      expect(host.ran('lvs')).to.have.length(3);
    });

    it('does not retry lvcreate (it may have half-happened)', async () => {
      const { driver, host } = make();
      host.failNext(['lvcreate'], 139, 'Segmentation fault');
      await rejects(driver.createVolume(vol('volume-1')), 'COMMAND_FAILED');
      expect(host.ran('lvcreate')).to.have.length(1);
    });

    it('runs at most maxConcurrentCommands LVM commands at once', async () => {
      const { driver, host } = make({ maxConcurrentCommands: 2 });
      host.delayMs = 15;
      await Promise.all(Array.from({ length: 6 }, () => driver.listVolumes()));
      expect(host.maxActive).to.equal(2);
      expect(host.ran('lvs')).to.have.length(6);
    });
  });

  describe('odd vgs/lvs answers', () => {
    it('a missing volume group (exit 5) is DriverFailure volume_group_missing saying what to do', async () => {
      const { driver } = make({ volumeGroup: 'nosuch' });
      const error = await rejects(driver.checkForSetupError(), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('volume_group_missing');
      expect(error.message).to.include('vgcreate nosuch');
    });

    it('thin: a missing volume group shows in setup() through lvs, with the same reason', async () => {
      const { driver } = make({ volumeGroup: 'nosuch', lvmType: 'thin' });
      const error = await rejects(driver.setup(), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('volume_group_missing');
    });

    it('empty vgs output is DriverFailure volume_group_missing', async () => {
      const host = new FakeLvmHost();
      sinon
        .stub(host, 'run')
        .callsFake(async (argv) => ({ argv, exitCode: 0, stdout: '', stderr: '', durationMs: 1 }));
      const { driver } = make({}, host);
      const error = await rejects(driver.checkForSetupError(), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('volume_group_missing');
    });

    it('vgs output in a locale with decimal commas is DriverFailure unparseable_output', async () => {
      const host = new FakeLvmHost();
      const real = host.run.bind(host);
      sinon.stub(host, 'run').callsFake(async (argv, options) => {
        if (argv.includes('vgs'))
          return { argv, exitCode: 0, stdout: '  volumes|4,00|1,00|4,00|0\n', stderr: '', durationMs: 1 };
        return real(argv, options);
      });
      const { driver } = make({}, host);
      const error = await rejects(driver.getVolumeStats(true), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('unparseable_output');
    });

    it('LVM missing on the host (exit 127) is DriverFailure command_missing', async () => {
      const { driver, host } = make();
      host.failNext(['vgs'], 127, 'env: vgs: No such file or directory');
      const error = await rejects(driver.checkForSetupError(), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('command_missing');
      expect(error.message).to.include('install lvm2');
    });

    it('a full volume group is DriverFailure insufficient_capacity', async () => {
      const { driver } = make({}, new FakeLvmHost('volumes', 2));
      const error = await rejects(driver.createVolume(vol('volume-1', 3)), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('insufficient_capacity');
    });

    it('growing a thick origin with snapshots is InvalidState', async () => {
      const { driver } = make();
      await driver.createVolume(vol('volume-1'));
      await driver.createSnapshot(snap('snapshot-1', 'volume-1'));
      const error = await rejects(driver.extendVolume(vol('volume-1'), 2), 'INVALID_STATE');
      expect(error.message).to.include('delete its snapshots');
    });

    it('thin: a create past pool size × maxOverSubscriptionRatio is refused before lvcreate', async () => {
      const { driver, host } = make({ lvmType: 'thin', maxOverSubscriptionRatio: 1, thinPoolShare: 0.5 });
      await driver.setup();
      const error = await rejects(driver.createVolume(vol('volume-1', 51)), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('insufficient_capacity');
      expect(host.ran('lvcreate', '--thin')).to.have.length(0);
    });

    it('thin stats: pool size, free from data_percent, provisioned = thin LV sizes', async () => {
      const { driver } = make({ lvmType: 'thin', thinPoolShare: 0.5 });
      await driver.setup();
      await driver.createVolume(vol('volume-1', 7));
      const stats = await driver.getVolumeStats(true);
      expect(stats).to.include({
        totalCapacityGiB: 50,
        freeCapacityGiB: 43.75, // the fake pool reports 12.50% data used
        provisionedCapacityGiB: 7,
        thinProvisioning: true,
        maxOverSubscriptionRatio: 20,
      });
    });

    it('thick stats: VG size and free, provisioned = LV sizes; cached until refreshed', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1', 5));
      const stats = await driver.getVolumeStats(true);
      expect(stats).to.include({ totalCapacityGiB: 100, freeCapacityGiB: 95, provisionedCapacityGiB: 5 });
      const before = host.runs.length;
      await driver.getVolumeStats();
      expect(host.runs.length).to.equal(before);
    });

    it('lvmType auto picks thin when the pool exists, default when LVM has no thin-pool segtype', async () => {
      const withPool = make({ lvmType: 'thin' });
      await withPool.driver.setup();
      const auto = make({ lvmType: 'auto' }, withPool.host);
      await auto.driver.setup();
      expect(auto.driver.mode).to.equal('thin');

      const host = new FakeLvmHost();
      sinon.stub(host, 'run').callsFake(async (argv) => {
        const stdout = argv.includes('segtypes')
          ? '  linear\n  striped\n'
          : argv.includes('vgs')
            ? `  volumes|${100 * GiB}|${100 * GiB}|4194304|0\n`
            : '';
        return { argv, exitCode: 0, stdout, stderr: '', durationMs: 1 };
      });
      const plain = make({ lvmType: 'auto' }, host);
      await plain.driver.setup();
      expect(plain.driver.mode).to.equal('default');
    });

    it('checkForSetupError: a missing thin pool is DriverFailure thin_pool_missing', async () => {
      const { driver } = make({ lvmType: 'thin' });
      const error = await rejects(driver.checkForSetupError(), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('thin_pool_missing');
    });

    it('checkForSetupError: tgtd not running is DriverFailure target_unavailable', async () => {
      const { driver, host } = make();
      host.tgtdRunning = false;
      const error = await rejects(driver.checkForSetupError(), 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('target_unavailable');
    });
  });

  describe('names are checked before any command runs', () => {
    const badVolumes = [
      '-leading-dash',
      'has space',
      '../escape',
      'semi;colon',
      'a/b',
      'pvmove0',
      'data_tmeta',
      'x_rimage_0',
      `v${'-'.repeat(126)}`, // fits the contract's 128, but its dm name with dashes doubled does not
    ];
    for (const name of badVolumes) {
      it(`volume ${JSON.stringify(name.slice(0, 20))} is InvalidInput for every method, with no command run`, async () => {
        const { driver, host } = make();
        const v = vol(name);
        await rejects(driver.createVolume(v), 'INVALID_INPUT');
        await rejects(driver.deleteVolume(v), 'INVALID_INPUT');
        await rejects(driver.extendVolume(v, 2), 'INVALID_INPUT');
        await rejects(driver.createExport(v), 'INVALID_INPUT');
        await rejects(driver.ensureExport(v), 'INVALID_INPUT');
        await rejects(driver.removeExport(v), 'INVALID_INPUT');
        await rejects(driver.initializeConnection(v, { host: 'c' }), 'INVALID_INPUT');
        await rejects(driver.createSnapshot(snap('s1', name)), 'INVALID_INPUT');
        await rejects(driver.createSnapshot(snap(name, 'volume-1')), 'INVALID_INPUT');
        await rejects(driver.deleteSnapshot(snap(name, 'volume-1')), 'INVALID_INPUT');
        await rejects(driver.createVolumeFromSnapshot(v, snap('s1', 'volume-1')), 'INVALID_INPUT');
        expect(host.runs).to.deep.equal([]);
      });
    }

    it('an initiator name with shell or path characters is InvalidInput, with no command run', async () => {
      const { driver, host } = make();
      for (const initiator of ['iqn.1993-08.org.debian:01;reboot', '../x', '-o', 'iqn.x y']) {
        await rejects(
          driver.initializeConnection(vol('volume-1'), { host: 'c', initiator }),
          'INVALID_INPUT',
        );
        await rejects(driver.terminateConnection(vol('volume-1'), { host: 'c', initiator }), 'INVALID_INPUT');
      }
      expect(host.runs).to.deep.equal([]);
    });

    it('stored provider fields that are not safe are InvalidInput before any target command', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      const before = host.runs.length;
      const bad = vol('volume-1', 1, {
        providerLocation: '127.0.0.1:3260,1 iqn.2010-10.org.openstack:x;rm 1',
        providerAuth: 'CHAP user$(x) secretsecret12',
      });
      const error = await rejects(driver.ensureExport(bad), 'INVALID_INPUT');
      expect(error.message).to.include('providerLocation').and.include('providerAuth');
      expect(host.runs.slice(before).filter((r) => r.argv[0] === 'tgtadm')).to.deep.equal([]);
    });

    it('config refuses a volume group, prefix or portal that could reach a command line unsafely', () => {
      for (const bad of [
        { volumeGroup: '-vg' },
        { volumeGroup: 'vg/x' },
        { volumeGroup: 'vg x' },
        { thinPoolName: '../p' },
        { targetPrefix: 'iqn.2010-10.org.openstack: x' },
        { targetPrefix: 'not-an-iqn' },
        { targetPortal: '127.0.0.1' },
        { targetPortal: 'host;x:3260' },
        { volumeClear: 'shred' },
        { unknownKey: 1 },
      ]) {
        const { issues } = withDefaults(LvmDriverConfig, { volumeGroup: 'volumes', ...bad });
        expect(issues, JSON.stringify(bad)).to.not.deep.equal([]);
      }
    });

    it('the filters refuse commands and arguments the driver never builds', () => {
      for (const argv of [
        ['env', 'LC_ALL=C', 'sh', '-c', 'id'],
        ['env', 'LC_ALL=C', 'lvcreate', '--name=-x', '/dev/volumes'],
        ['env', 'LC_ALL=C', 'reboot'],
        ['env', 'LC_ALL=C', 'lvcreate', '--name', 'x', 'volumes'],
        ['env', 'LC_ALL=C', 'lvremove', '--force', '/dev/volumes/../x'],
        ['env', 'LC_ALL=C', 'vgs', '-o', 'vg_name;id', 'volumes'],
        ['env', '-S', 'vgs'],
        ['dd', 'if=/dev/zero', 'of=/etc/passwd'],
        ['dd', 'if=/dev/zero', 'of=/dev/sda'],
        [
          'tgtadm',
          '--lld',
          'iscsi',
          '--mode',
          'account',
          '--op',
          'new',
          '--user',
          'u ser1234',
          '--password',
          'x',
        ],
        ['targetcli', '/', 'clearconfig', 'confirm=True'],
        ['lvcreate', '--name=x', 'volumes'],
      ]) {
        expect(matchFilters(LVM_COMMANDS, argv).allowed, argv.join(' ')).to.equal(false);
      }
    });
  });

  describe('exports', () => {
    const connector = { host: 'compute-1', initiator: 'iqn.1993-08.org.debian:01:abc', ip: '10.0.0.5' };

    it('tgtadm: target with the next tid, LUN 1 on the LV, a bound CHAP account, ACL ALL', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      await driver.createVolume(vol('volume-2'));
      await driver.createExport(vol('volume-1'));
      const first = host.runs.length;
      const update = await driver.createExport(vol('volume-2'));
      const [, user, secret] = (update?.providerAuth ?? '').split(' ') as [string, string, string];
      expect(user).to.match(/^[A-Za-z0-9]{20}$/);
      expect(secret).to.match(/^[A-Za-z0-9]{16}$/);
      const iqn = 'iqn.2010-10.org.openstack:volume-2';
      expect(update?.providerLocation).to.equal(`127.0.0.1:3260,1 ${iqn} 1`);
      const tgt = host.runs.slice(first).filter((r) => r.argv[0] === 'tgtadm');
      const base = ['tgtadm', '--lld', 'iscsi', '--mode'];
      expect(tgt.map((r) => r.argv)).to.deep.equal([
        [...base, 'target', '--op', 'show'],
        [...base, 'target', '--op', 'new', '--tid', '2', '--targetname', iqn],
        [
          ...base,
          'logicalunit',
          '--op',
          'new',
          '--tid',
          '2',
          '--lun',
          '1',
          '--backing-store',
          '/dev/volumes/volume-2',
        ],
        [...base, 'account', '--op', 'new', '--user', user, '--password', secret],
        [...base, 'account', '--op', 'bind', '--tid', '2', '--user', user],
        [...base, 'target', '--op', 'bind', '--tid', '2', '--initiator-address', 'ALL'],
      ]);
      // The secret's argv position is masked in logs and errors.
      expect(tgt[3]?.options.redact).to.deep.equal([10]);
    });

    it('tgtadm: a tid taken between show and new is retried with the next free tid', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      host.failNext(['tgtadm', 'new', '--targetname'], 22, 'tgtadm: this target already exists');
      host.targets.set(1, {
        tid: 1,
        iqn: 'iqn.2010-10.org.openstack:other',
        luns: new Map(),
        accounts: [],
        acls: [],
      });
      await driver.createExport(vol('volume-1'));
      const created = host.ran('tgtadm', '--targetname').map((r) => r.argv[8]);
      expect(created).to.deep.equal(['2', '2']);
      expect(host.targets.get(2)?.iqn).to.equal('iqn.2010-10.org.openstack:volume-1');
    });

    it('iser: tgtadm runs with --lld iser and connections say driverVolumeType iser', async () => {
      const { driver, host } = make({ iscsiProtocol: 'iser' });
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      expect(host.ran('tgtadm').every((r) => r.argv[2] === 'iser')).to.equal(true);
      expect((await driver.initializeConnection(v, connector)).driverVolumeType).to.equal('iser');
    });

    it('initializeConnection returns Cinder-shaped iSCSI data with the stored CHAP credentials', async () => {
      const { driver } = make({ targetPortal: '192.0.2.10:3260' });
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'), connector)) };
      const [, user, secret] = (v.providerAuth ?? '').split(' ');
      expect(await driver.initializeConnection(v, connector)).to.deep.equal({
        driverVolumeType: 'iscsi',
        data: {
          targetPortal: '192.0.2.10:3260',
          targetIqn: 'iqn.2010-10.org.openstack:volume-1',
          targetLun: 1,
          volumeId: 'id-volume-1',
          authMethod: 'CHAP',
          authUsername: user,
          authPassword: secret,
        },
      });
    });

    it('ensureExport after a reboot (targets and accounts gone) re-creates the same export; again is a no-op', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      host.targets.clear();
      host.accounts.clear();
      await driver.ensureExport(v);
      const target = [...host.targets.values()][0];
      const [, user, secret] = (v.providerAuth ?? '').split(' ') as [string, string, string];
      expect(target?.iqn).to.equal('iqn.2010-10.org.openstack:volume-1');
      expect(target?.luns.get(1)).to.equal('/dev/volumes/volume-1');
      expect(target?.accounts).to.deep.equal([user]);
      expect(host.accounts.get(user)).to.equal(secret);
      const before = host.runs.length;
      await driver.ensureExport(v);
      expect(
        host.runs
          .slice(before)
          .filter((r) => r.argv[0] === 'tgtadm')
          .map((r) => r.argv[6]),
      ).to.deep.equal(['show']);
    });

    it('ensureExport repairs a half-made export (target without LUN and account)', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      const target = [...host.targets.values()][0];
      target?.luns.clear();
      if (target) target.accounts = [];
      await driver.ensureExport(v);
      expect(target?.luns.get(1)).to.equal('/dev/volumes/volume-1');
      expect(target?.accounts).to.have.length(1);
    });

    it('initializeConnection re-creates a target lost in a reboot', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      host.targets.clear();
      host.accounts.clear();
      await driver.initializeConnection(v, connector);
      expect(host.targets.size).to.equal(1);
    });

    it('initializeConnection of a volume never exported is InvalidState not_exported', async () => {
      const { driver } = make();
      await driver.createVolume(vol('volume-1'));
      const error = await rejects(driver.initializeConnection(vol('volume-1'), connector), 'INVALID_STATE');
      expect(error.details.reason).to.equal('not_exported');
    });

    it('removeExport deletes the target and its account; again is fine', async () => {
      const { driver, host } = make();
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      await driver.removeExport(v);
      expect(host.targets.size).to.equal(0);
      expect(host.accounts.size).to.equal(0);
      await driver.removeExport(v);
    });

    it('the CHAP secret never reaches a log line', async () => {
      const lines: string[] = [];
      const destination = new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      });
      const logger = createLogger({ level: 'trace', destination });
      const { driver } = make({}, new FakeLvmHost(), logger);
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      await driver.ensureExport(v);
      const info = await driver.initializeConnection(v, connector);
      await driver.removeExport(v);
      const secret = String(info.data.authPassword);
      expect(lines.length).to.be.greaterThan(0);
      expect(lines.join('')).to.not.include(secret);
    });

    it('lioadm: backstore, target, LUN, auth on; a CHAP ACL per initiator; commands saved', async () => {
      const { driver, host } = make({ targetHelper: 'lioadm' });
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      const info = await driver.initializeConnection(v, connector);
      await driver.terminateConnection(v, connector);
      await driver.removeExport(v);
      const iqn = 'iqn.2010-10.org.openstack:volume-1';
      const user = String(info.data.authUsername);
      const secret = String(info.data.authPassword);
      expect(info.data.targetLun).to.equal(0);
      const cli = host.ran('targetcli');
      expect(cli.map((r) => r.argv.slice(1))).to.deep.equal([
        ['/backstores/block', 'create', 'name=volume-1', 'dev=/dev/volumes/volume-1'],
        ['/iscsi', 'create', iqn],
        [`/iscsi/${iqn}/tpg1/luns`, 'create', '/backstores/block/volume-1'],
        [`/iscsi/${iqn}/tpg1`, 'set', 'attribute', 'authentication=1', 'generate_node_acls=0'],
        ['saveconfig'],
        [`/iscsi/${iqn}`, 'ls'],
        [`/iscsi/${iqn}/tpg1/acls`, 'create', connector.initiator],
        [
          `/iscsi/${iqn}/tpg1/acls/${connector.initiator}`,
          'set',
          'auth',
          `userid=${user}`,
          `password=${secret}`,
        ],
        ['saveconfig'],
        [`/iscsi/${iqn}/tpg1/acls`, 'delete', connector.initiator],
        ['saveconfig'],
        ['/iscsi', 'delete', iqn],
        ['/backstores/block', 'delete', 'volume-1'],
        ['saveconfig'],
      ]);
      expect(cli[7]?.options.redact).to.deep.equal([5]);
    });

    it('lioadm: an "already exists" answer makes createExport idempotent', async () => {
      const { driver, host } = make({ targetHelper: 'lioadm' });
      await driver.createVolume(vol('volume-1'));
      host.failNext(['targetcli', 'create', '/iscsi'], 1, 'This Target already exists in configFS');
      await driver.createExport(vol('volume-1'));
    });

    it('fake target: exports without any target command', async () => {
      const { driver, host } = make({ targetHelper: 'fake' });
      await driver.createVolume(vol('volume-1'));
      const v = { ...vol('volume-1'), ...(await driver.createExport(vol('volume-1'))) };
      await driver.initializeConnection(v, connector);
      expect(host.ran('tgtadm').concat(host.ran('targetcli'))).to.deep.equal([]);
    });
  });
});

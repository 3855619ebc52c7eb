import { silentLogger, withDefaults } from '@stratus/core';
import { expect } from 'chai';
import { LvmDriverConfig, LvmVolumeDriver } from '../../src/index.js';
import { guest, requireVm, VG, vmExecutor } from './vm.js';

/** What vgs/lvs say, read independently of the driver's parser (GiB units, 2 decimals). */
async function vgsSays(): Promise<{ total: number; free: number; provisioned: number }> {
  const vg = (
    await guest(['vgs', '--noheadings', '--units', 'g', '--nosuffix', '-o', 'vg_size,vg_free', VG])
  ).stdout
    .trim()
    .split(/\s+/)
    .map(Number);
  const lvs = (await guest(['lvs', '--noheadings', '--units', 'g', '--nosuffix', '-o', 'lv_size', VG])).stdout
    .trim()
    .split(/\s+/)
    .filter((s) => s !== '')
    .map(Number);
  return { total: vg[0] as number, free: vg[1] as number, provisioned: lvs.reduce((a, b) => a + b, 0) };
}

function thick(raw: Record<string, unknown> = {}): LvmVolumeDriver {
  const { value, issues } = withDefaults(LvmDriverConfig, {
    volumeGroup: VG,
    lvmType: 'default',
    targetHelper: 'fake',
    volumeClearSizeMiB: 4,
    ...raw,
  });
  expect(issues).to.deep.equal([]);
  return new LvmVolumeDriver(value, {
    host: 'lvm-vm',
    logger: silentLogger(),
    executor: vmExecutor(),
    dataDir: '/nonexistent',
  });
}

describe('real lvm2: stats and wiping match what LVM says', function () {
  this.timeout(600_000);
  const a = { id: 'stats-a', name: `volume-stats-a-${process.pid}`, sizeGiB: 1 };
  const b = { id: 'stats-b', name: `volume-stats-b-${process.pid}`, sizeGiB: 1 };
  let driver: LvmVolumeDriver;

  before(async function () {
    await requireVm(this);
    driver = thick();
    await driver.setup();
    await driver.checkForSetupError();
  });

  after(async () => {
    if (!driver) return;
    for (const v of [a, b]) await driver.deleteVolume(v).catch(() => undefined);
  });

  it('after create, extend, create, delete the stats equal vgs/lvs each time', async () => {
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['start', async () => undefined],
      ['create a', () => driver.createVolume(a)],
      ['extend a to 2 GiB', () => driver.extendVolume(a, 2)],
      ['create b', () => driver.createVolume(b)],
      ['delete a', () => driver.deleteVolume({ ...a, sizeGiB: 2 })],
    ];
    const start = await driver.getVolumeStats(true);
    for (const [what, step] of steps) {
      await step();
      const stats = await driver.getVolumeStats(true);
      const lvm = await vgsSays();
      expect(stats.totalCapacityGiB, `${what}: total`).to.be.closeTo(lvm.total, 0.011);
      expect(stats.freeCapacityGiB, `${what}: free`).to.be.closeTo(lvm.free, 0.011);
      expect(stats.provisionedCapacityGiB, `${what}: provisioned`).to.be.closeTo(lvm.provisioned, 0.011);
    }
    const end = await driver.getVolumeStats(true);
    expect(end.freeCapacityGiB).to.be.closeTo(start.freeCapacityGiB - 1, 0.011);
    const listed = (await driver.listVolumes()).find((v) => v.name === b.name);
    expect(listed?.sizeGiB).to.equal(1);
    expect((await driver.listVolumes()).map((v) => v.name)).to.not.include(a.name);
  });

  it('volumeClear zero leaves no data behind: an LV re-created on the same extents reads zeros', async () => {
    const c = { id: 'stats-c', name: `volume-wipe-${process.pid}`, sizeGiB: 1 };
    const extents = async () =>
      (await guest(['lvs', '--noheadings', '-o', 'seg_pe_ranges', `${VG}/${c.name}`])).stdout.trim();
    // Non-zero bytes in MiB 1..2 (lvcreate itself zeroes only the first 4 KiB).
    const dirty = async () =>
      Number(
        (
          await guest([
            'sh',
            '-c',
            `dd if=/dev/${VG}/${c.name} bs=1M skip=1 count=1 iflag=direct 2>/dev/null | tr -d '\\000' | wc -c`,
          ])
        ).stdout.trim(),
      );
    await driver.createVolume(c);
    const where = await extents();
    await guest([
      'dd',
      'if=/dev/urandom',
      `of=/dev/${VG}/${c.name}`,
      'bs=1M',
      'seek=1',
      'count=1',
      'oflag=direct',
    ]);
    expect(await dirty()).to.be.greaterThan(1000);
    await driver.deleteVolume(c);
    // Without the wipe the same bytes would still be on those extents.
    await guest(['env', 'LC_ALL=C', 'lvcreate', '--yes', '-Zn', '-Wn', '--name', c.name, '--size', '1g', VG]);
    try {
      expect(await extents(), 'the re-created LV got the same extents').to.equal(where);
      expect(await dirty()).to.equal(0);
    } finally {
      await guest(['lvremove', '--force', `${VG}/${c.name}`]);
    }
  });
});

import { describeVolumeDriver } from '@stratus/testkit/volume-driver';
import { volume } from '../../src/index.js';
import { guest, requireVm, VG, vmExecutor } from './vm.js';

// Both provisioning modes share the VM's one volume group: thick first, then thin with a pool of
// 40% of what is free, removed afterwards. Wipes are limited to 8 MiB to keep TCG time down; the
// full-size wipe is covered by the stats/clearing test.
// Under CI the thin pass leaves out what does not depend on the provisioning mode (already run in
// the thick pass) to stay within the CI time budget; STRATUS_LVM_VM=full runs everything.
const reduced = Boolean(process.env.CI) && process.env.STRATUS_LVM_VM !== 'full';
const sameInBothModes = 'mode-independent, run in the thick pass; reduced CI form';
const thinSkips = reduced
  ? { manifest: sameInBothModes, badInput: sameInBothModes, exports: sameInBothModes }
  : undefined;

const common = {
  volumeGroup: VG,
  targetHelper: 'tgtadm',
  volumeClear: 'zero',
  volumeClearSizeMiB: 8,
  retryDelayMs: 200,
} as const;

describe('real lvm2 in the lvm-vm guest', () => {
  before(async function () {
    await requireVm(this);
  });

  describe('lvmType: default (thick), tgtadm', () => {
    describeVolumeDriver({
      manifest: volume,
      name: '@stratus/driver-lvm (thick, real lvm2)',
      config: { ...common, lvmType: 'default' },
      env: { executor: vmExecutor() },
      sizeGiB: 1,
    });
  });

  describe('lvmType: thin, tgtadm', () => {
    after(async () => {
      await guest(['env', 'LC_ALL=C', 'lvremove', '--force', `${VG}/${VG}-pool`]).catch(() => undefined);
    });
    describeVolumeDriver({
      manifest: volume,
      name: '@stratus/driver-lvm (thin, real lvm2)',
      config: { ...common, lvmType: 'thin', thinPoolShare: 0.4 },
      env: { executor: vmExecutor() },
      sizeGiB: 1,
      ...(thinSkips ? { skip: thinSkips } : {}),
    });
  });
});

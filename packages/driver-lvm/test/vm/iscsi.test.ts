import { silentLogger, withDefaults } from '@stratus/core';
import { expect } from 'chai';
import { LvmDriverConfig, LvmVolumeDriver } from '../../src/index.js';
import { guest, requireVm, VG, vmExecutor } from './vm.js';

// An initiator logging in over 127.0.0.1 inside the guest, as a compute host would (os-brick's
// steps: discovery, CHAP on the node record, login, find the disk, read, logout).
describe('real tgt export: an iSCSI initiator in the guest logs in with the CHAP credentials', function () {
  this.timeout(600_000);
  let driver: LvmVolumeDriver;
  const name = `volume-iscsi-${process.pid}`;
  const spec = { id: 'iscsi-test', name, sizeGiB: 1 };
  let stored: typeof spec & { providerLocation?: string | null; providerAuth?: string | null } = spec;

  before(async function () {
    await requireVm(this);
    const { value } = withDefaults(LvmDriverConfig, {
      volumeGroup: VG,
      targetHelper: 'tgtadm',
      volumeClearSizeMiB: 4,
    });
    driver = new LvmVolumeDriver(value, {
      host: 'lvm-vm',
      logger: silentLogger(),
      executor: vmExecutor(),
      dataDir: '/nonexistent',
    });
    await driver.setup();
    await driver.checkForSetupError();
    await driver.createVolume(spec);
    // Recognisable data in the LV's first MiB, to compare with what the initiator reads.
    await guest(['dd', 'if=/dev/urandom', `of=/dev/${VG}/${name}`, 'bs=1M', 'count=1', 'oflag=direct']);
    stored = { ...spec, ...(await driver.createExport(spec)) };
  });

  after(async () => {
    if (!driver) return;
    await driver.removeExport(stored).catch(() => undefined);
    await driver.deleteVolume(spec).catch(() => undefined);
  });

  async function login(password: string): Promise<string> {
    const info = await driver.initializeConnection(stored, { host: 'lvm-vm', ip: '127.0.0.1' });
    const { targetPortal, targetIqn, targetLun, authUsername } = info.data as Record<string, string | number>;
    const script = `
set -e
modprobe iscsi_tcp; modprobe sd_mod; pidof iscsid >/dev/null || iscsid
N="iscsiadm -m node -T ${targetIqn} -p ${targetPortal}"
iscsiadm -m discovery -t sendtargets -p ${targetPortal} >/dev/null
$N --op update -n node.session.auth.authmethod -v CHAP
$N --op update -n node.session.auth.username -v ${authUsername}
$N --op update -n node.session.auth.password -v ${password}
if ! $N --login >/dev/null 2>&1; then $N --op delete; echo LOGIN_FAILED; exit 0; fi
dev=
for i in $(seq 1 40); do
  for s in /sys/class/iscsi_session/*/device/target*/*:*:*:${targetLun}/block/*; do [ -e "$s" ] && dev=$(basename "$s"); done
  [ -n "$dev" ] && break; sleep 0.5
done
[ -n "$dev" ] || { $N --logout >/dev/null; $N --op delete; echo NO_DEVICE; exit 0; }
echo "device=/dev/$dev size=$(blockdev --getsize64 /dev/$dev)"
echo "lun=$(dd if=/dev/$dev bs=1M count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
echo "lv=$(dd if=/dev/${VG}/${name} bs=1M count=1 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)"
$N --logout >/dev/null; $N --op delete
`;
    const { stdout } = await guest(['sh', '-c', script]);
    return stdout;
  }

  it('reads the same first MiB through the LUN as from the LV, and sees the whole volume', async () => {
    const info = await driver.initializeConnection(stored, { host: 'lvm-vm', ip: '127.0.0.1' });
    const out = await login(String(info.data.authPassword));
    expect(out).to.match(/size=1073741824/);
    const lun = /lun=([0-9a-f]{32})/.exec(out)?.[1];
    const lv = /lv=([0-9a-f]{32})/.exec(out)?.[1];
    expect(lun, out).to.be.a('string');
    expect(lun).to.equal(lv);
  });

  it('refuses a login with the wrong CHAP secret', async () => {
    const out = await login('WrongSecret0000');
    expect(out).to.include('LOGIN_FAILED');
  });

  it('after the target is lost (tgtd restarted), ensureExport brings it back and login works again', async () => {
    await guest(['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'show']);
    // Simulate the reboot: delete the target and the account behind the driver's back.
    const [, user] = (stored.providerAuth ?? '').split(' ');
    const show = (await guest(['tgtadm', '--lld', 'iscsi', '--mode', 'target', '--op', 'show'])).stdout;
    const tid = new RegExp(`^Target ([0-9]+): \\S+:${name}$`, 'm').exec(show)?.[1];
    expect(tid, show).to.be.a('string');
    await guest([
      'tgtadm',
      '--lld',
      'iscsi',
      '--mode',
      'target',
      '--op',
      'delete',
      '--force',
      '--tid',
      String(tid),
    ]);
    await guest(['tgtadm', '--lld', 'iscsi', '--mode', 'account', '--op', 'delete', '--user', String(user)]);
    await driver.ensureExport(stored);
    const info = await driver.initializeConnection(stored, { host: 'lvm-vm', ip: '127.0.0.1' });
    const out = await login(String(info.data.authPassword));
    expect(out).to.match(/size=1073741824/);
  });
});

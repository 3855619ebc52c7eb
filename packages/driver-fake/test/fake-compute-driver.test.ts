import type { PowerState } from '@stratus/core';
import { withDefaults } from '@stratus/core';
import { expect } from 'chai';
import sinon from 'sinon';
import { FakeComputeConfig, type FakeComputeDriver } from '../src/index.js';
import { computeDriver, flavor, inst, rejection } from './helpers.js';

const iscsi = (volumeId: string) => ({
  driverVolumeType: 'iscsi',
  data: { targetPortal: '127.0.0.1:3260', targetIqn: `iqn.test:${volumeId}`, targetLun: 1, volumeId },
});

/** Bring a freshly spawned instance `vm` into `state` through the contract. */
async function into(d: FakeComputeDriver, state: PowerState): Promise<ReturnType<typeof inst>> {
  const vm = inst(`vm-${state}`);
  await d.spawn(vm);
  if (state === 'paused') await d.pause(vm);
  if (state === 'suspended') await d.suspend(vm);
  if (state === 'shutdown') await d.powerOff(vm);
  if (state === 'crashed' || state === 'nostate') d.setPowerState(vm.name, state);
  return vm;
}

type Action =
  | 'pause'
  | 'unpause'
  | 'suspend'
  | 'resume'
  | 'powerOn'
  | 'powerOff'
  | 'softReboot'
  | 'hardReboot'
  | 'rescue';

const act = (d: FakeComputeDriver, action: Action, vm: ReturnType<typeof inst>) => {
  switch (action) {
    case 'softReboot':
      return d.reboot(vm, 'SOFT');
    case 'hardReboot':
      return d.reboot(vm, 'HARD');
    case 'rescue':
      return d.rescue(vm, 'pw');
    default:
      return d[action](vm);
  }
};

/** action → [from-state, resulting state or 'refused'] following libvirt's rules. */
const TRANSITIONS: Array<[Action, PowerState, PowerState | 'refused']> = [
  ['pause', 'running', 'paused'],
  ['pause', 'paused', 'paused'],
  ['pause', 'shutdown', 'refused'],
  ['pause', 'suspended', 'refused'],
  ['unpause', 'paused', 'running'],
  ['unpause', 'running', 'running'],
  ['unpause', 'shutdown', 'refused'],
  ['suspend', 'running', 'suspended'],
  ['suspend', 'paused', 'suspended'],
  ['suspend', 'shutdown', 'refused'],
  ['resume', 'suspended', 'running'],
  ['resume', 'shutdown', 'refused'],
  ['resume', 'paused', 'refused'],
  ['powerOff', 'running', 'shutdown'],
  ['powerOff', 'paused', 'shutdown'],
  ['powerOff', 'suspended', 'shutdown'],
  ['powerOn', 'shutdown', 'running'],
  ['powerOn', 'crashed', 'running'],
  ['powerOn', 'running', 'running'],
  ['powerOn', 'paused', 'refused'],
  ['powerOn', 'suspended', 'refused'],
  ['softReboot', 'running', 'running'],
  ['softReboot', 'shutdown', 'refused'],
  ['softReboot', 'paused', 'refused'],
  ['hardReboot', 'shutdown', 'running'],
  ['hardReboot', 'paused', 'running'],
  ['hardReboot', 'crashed', 'running'],
  ['hardReboot', 'suspended', 'refused'],
  ['rescue', 'running', 'running'],
  ['rescue', 'shutdown', 'running'],
  ['rescue', 'paused', 'refused'],
];

describe('FakeComputeDriver', () => {
  afterEach(() => sinon.restore());

  it('fills every compute config default from {}, leaving the hostname to the env', () => {
    expect(withDefaults(FakeComputeConfig, {}).value).to.deep.equal({
      vcpus: 16,
      memoryMiB: 32768,
      localDiskGiB: 500,
    });
  });

  it('reports the env host as hypervisorHostname unless configured', async () => {
    expect((await computeDriver({}, 'cn-7').getAvailableResources()).hypervisorHostname).to.equal('cn-7');
    const named = computeDriver({ hypervisorHostname: 'kvm-7.lab' }, 'cn-7');
    expect((await named.getAvailableResources()).hypervisorHostname).to.equal('kvm-7.lab');
  });

  describe('power states', () => {
    for (const [action, from, to] of TRANSITIONS) {
      it(`${action} from ${from} ${to === 'refused' ? 'is InvalidState and changes nothing' : `leads to ${to}`}`, async () => {
        const d = computeDriver();
        const vm = await into(d, from);
        if (to === 'refused') {
          const error = await rejection(act(d, action, vm), 'INVALID_STATE');
          expect(error.details).to.deep.include({ reason: 'power_state', state: from });
          expect((await d.getInfo(vm)).state).to.equal(from);
        } else {
          await act(d, action, vm);
          expect((await d.getInfo(vm)).state).to.equal(to);
        }
      });
    }

    it('spawning a name the hypervisor already holds is InvalidState', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      await rejection(d.spawn(inst('a')), 'INVALID_STATE');
      expect(await d.listInstances()).to.deep.equal(['a']);
    });
  });

  describe('rescue', () => {
    it('keeps the rescue password while rescued and forgets it on unrescue', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      await d.rescue(inst('a'), 's3cret');
      expect(d.inspectInstance('a')).to.deep.include({
        rescued: true,
        rescuePassword: 's3cret',
        state: 'running',
      });
      await d.unrescue(inst('a'));
      expect(d.inspectInstance('a')).to.deep.include({
        rescued: false,
        rescuePassword: null,
        state: 'running',
      });
    });

    it('rescuing a rescued instance is InvalidState', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      await d.rescue(inst('a'), 'pw');
      const error = await rejection(d.rescue(inst('a'), 'pw'), 'INVALID_STATE');
      expect(error.details.reason).to.equal('rescued');
    });

    it('an empty rescue password is InvalidInput', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      await rejection(d.rescue(inst('a'), ''), 'INVALID_INPUT');
    });
  });

  describe('resources', () => {
    it('refuses a spawn past free vCPUs, naming what is short, and frees resources on destroy', async () => {
      const d = computeDriver({ vcpus: 4 });
      await d.spawn(inst('a', flavor(2)));
      await d.spawn(inst('b', flavor(2)));
      const error = await rejection(d.spawn(inst('c', flavor(1))), 'DRIVER_FAILURE');
      expect(error.details).to.deep.equal({
        reason: 'insufficient_resources',
        short: { vcpus: { need: 1, free: 0 } },
      });
      await d.destroy(inst('a'));
      await d.spawn(inst('c', flavor(1)));
      expect(await d.listInstances()).to.have.members(['b', 'c']);
    });

    it('refuses a spawn past free memory or local disk', async () => {
      const d = computeDriver({ memoryMiB: 1024, localDiskGiB: 10 });
      const error = await rejection(d.spawn(inst('a', flavor(1, 2048, 20))), 'DRIVER_FAILURE');
      expect(Object.keys(error.details.short as object)).to.deep.equal(['memoryMiB', 'localDiskGiB']);
      expect(await d.listInstances()).to.deep.equal([]);
    });

    it('counts every instance whatever its power state, and reports totals', async () => {
      const d = computeDriver({ vcpus: 8, memoryMiB: 4096, localDiskGiB: 100 });
      await d.spawn(inst('a', flavor(2, 1024, 10)));
      await d.powerOff(inst('a'));
      expect(await d.getAvailableResources()).to.deep.equal({
        vcpus: 8,
        vcpusUsed: 2,
        memoryMiB: 4096,
        memoryMiBUsed: 1024,
        localDiskGiB: 100,
        localDiskGiBUsed: 10,
        hypervisorType: 'fake',
        hypervisorVersion: '1.0.0',
        hypervisorHostname: 'fake-host',
      });
    });
  });

  describe('getInfo', () => {
    it('reports flavor memory while resident, none when shut down, and CPU time only while running', async () => {
      const clock = sinon.useFakeTimers({ now: new Date('2025-01-01T00:00:00Z'), toFake: ['Date'] });
      const d = computeDriver();
      await d.spawn(inst('a', flavor(2, 1024)));
      clock.tick(1500);
      expect(await d.getInfo(inst('a'))).to.deep.equal({
        state: 'running',
        maxMemoryMiB: 1024,
        memoryMiB: 1024,
        vcpus: 2,
        cpuTimeNs: 1_500_000_000,
      });
      await d.powerOff(inst('a'));
      clock.tick(10_000);
      expect(await d.getInfo(inst('a'))).to.deep.include({
        state: 'shutdown',
        memoryMiB: 0,
        cpuTimeNs: 1_500_000_000,
      });
      await d.powerOn(inst('a'));
      clock.tick(500);
      expect((await d.getInfo(inst('a'))).cpuTimeNs).to.equal(2_000_000_000);
    });
  });

  describe('console', () => {
    it('is deterministic boot text naming the instance, one boot log per boot', async () => {
      const d = computeDriver();
      await d.spawn(inst('web-1'));
      const first = await d.getConsoleOutput(inst('web-1'));
      expect(first).to.include('web-1 login:');
      expect(await d.getConsoleOutput(inst('web-1'))).to.equal(first);
      await d.reboot(inst('web-1'), 'SOFT');
      const second = await d.getConsoleOutput(inst('web-1'));
      expect(second.startsWith(first)).to.equal(true);
      expect(second.match(/login:/g)).to.have.length(2);
    });
  });

  describe('volumes', () => {
    it('records attachments by mountpoint and forgets them on detach', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      await d.attachVolume(inst('a'), iscsi('v1'), '/dev/vdb');
      expect(d.inspectInstance('a')?.mounts).to.deep.equal({ '/dev/vdb': iscsi('v1') });
      await d.detachVolume(inst('a'), iscsi('v1'), '/dev/vdb');
      expect(d.inspectInstance('a')?.mounts).to.deep.equal({});
    });

    it('the same volume at a second mountpoint is InvalidState', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      await d.attachVolume(inst('a'), iscsi('v1'), '/dev/vdb');
      const error = await rejection(d.attachVolume(inst('a'), iscsi('v1'), '/dev/vdc'), 'INVALID_STATE');
      expect(error.details).to.deep.include({ reason: 'already_attached', mountpoint: '/dev/vdb' });
    });

    it('a mountpoint that is not a device name, or connection info without a type, is InvalidInput', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      await rejection(d.attachVolume(inst('a'), iscsi('v1'), 'vdb; rm -rf /'), 'INVALID_INPUT');
      await rejection(d.attachVolume(inst('a'), { data: {} } as never, '/dev/vdb'), 'INVALID_INPUT');
      expect(d.inspectInstance('a')?.mounts).to.deep.equal({});
    });
  });

  describe('test hooks', () => {
    it('setPowerState changes what getInfo reports, without being recorded as a call', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      d.clearCalls();
      d.setPowerState('a', 'shutdown');
      expect((await d.getInfo(inst('a'))).state).to.equal('shutdown');
      d.setPowerState('a', 'running');
      expect((await d.getInfo(inst('a'))).state).to.equal('running');
      expect(d.calls.map((c) => c.method)).to.deep.equal(['getInfo', 'getInfo']);
    });

    it('setPowerState of an unknown instance is NotFound, of an unknown state InvalidInput', () => {
      const d = computeDriver();
      expect(() => d.setPowerState('ghost', 'running')).to.throw(/instance ghost could not be found/);
      expect(() => d.setPowerState('ghost', 'exploded' as PowerState)).to.throw(/Invalid power state/);
    });

    it('removeInstance makes the VM vanish as if it crashed away', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      d.removeInstance('a');
      expect(await d.listInstances()).to.deep.equal([]);
      await rejection(d.getInfo(inst('a')), 'NOT_FOUND');
    });
  });
});

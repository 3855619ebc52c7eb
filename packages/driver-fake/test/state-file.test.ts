import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { withDefaults } from '@stratus/core';
import { expect } from 'chai';
import { FakeComputeConfig, FakeComputeDriver } from '../src/index.js';
import { StateFile } from '../src/state-file.js';
import { computeDriver, env, flavor, inst, rejection, stillPending, vol, volumeDriver } from './helpers.js';

const iscsi = (volumeId: string) => ({
  driverVolumeType: 'iscsi',
  data: { targetPortal: '127.0.0.1:3260', targetIqn: `iqn.test:${volumeId}`, targetLun: 1, volumeId },
});

describe('stateFile', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fake-state-'));
    file = path.join(dir, 'hypervisor.json');
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('FakeComputeDriver', () => {
    it('keeps instances, their power states, rescue and mounts in the file, so a new process finds them running', async () => {
      const first = computeDriver({ stateFile: file, vcpus: 5 });
      await first.spawn(inst('a', flavor(2)));
      await first.spawn(inst('b'));
      await first.spawn(inst('c'));
      await first.pause(inst('b'));
      await first.rescue(inst('c'), 'rescue-pw');
      await first.attachVolume(inst('a'), iscsi('v1'), '/dev/vdb');
      await first.reboot(inst('a'), 'HARD');
      await first.spawn(inst('d'));
      await first.destroy(inst('d'));

      // Nothing of `first` is shared: `second` reads the file only, as a restarted process would.
      const second = computeDriver({ stateFile: file, vcpus: 4 });
      expect((await second.listInstances()).sort()).to.deep.equal(['a', 'b', 'c']);
      expect(second.inspectInstance('a')).to.deep.include({
        state: 'running',
        boots: 2,
        mounts: { '/dev/vdb': iscsi('v1') },
      });
      expect(second.inspectInstance('b')?.state).to.equal('paused');
      expect(second.inspectInstance('c')).to.deep.include({ rescued: true, rescuePassword: 'rescue-pw' });
      // The instances still hold their resources: the 4 vCPUs are taken.
      expect((await second.getAvailableResources()).vcpusUsed).to.equal(4);
      await rejection(second.spawn(inst('e')), 'DRIVER_FAILURE');
      // And the restored instances obey the power rules from where they were.
      await rejection(second.reboot(inst('b'), 'SOFT'), 'INVALID_STATE');
      await second.unrescue(inst('c'));
      await second.destroy(inst('a'));

      const third = computeDriver({ stateFile: file, vcpus: 4 });
      expect((await third.listInstances()).sort()).to.deep.equal(['b', 'c']);
      expect(third.inspectInstance('c')?.rescued).to.equal(false);
    });

    it('a failed, refused or hung spawn writes nothing; a released one is written when it completes', async () => {
      const first = computeDriver({ stateFile: file, vcpus: 2 });
      await first.spawn(inst('a'));
      const saved = readFileSync(file, 'utf8');

      first.faults.failNext('spawn');
      await rejection(first.spawn(inst('injected')), 'DRIVER_FAILURE');
      // Refused by the hypervisor (does not fit) after the fault check: still nothing written.
      await rejection(first.spawn(inst('too-big', flavor(8))), 'DRIVER_FAILURE');
      first.faults.hangNext('spawn');
      const hung = first.spawn(inst('hung'));
      expect(await stillPending(hung)).to.equal(true);
      expect(readFileSync(file, 'utf8')).to.equal(saved);
      expect(await computeDriver({ stateFile: file }).listInstances()).to.deep.equal(['a']);

      expect(first.faults.releaseHangs()).to.equal(1);
      await hung;
      expect((await computeDriver({ stateFile: file }).listInstances()).sort()).to.deep.equal(['a', 'hung']);
    });

    it('a hung call rejected by close() writes nothing', async () => {
      const first = computeDriver({ stateFile: file });
      await first.spawn(inst('a'));
      first.faults.hangNext('destroy');
      const hung = first.destroy(inst('a'));
      expect(await stillPending(hung)).to.equal(true);
      await first.close();
      const error = await rejection(hung, 'DRIVER_FAILURE');
      expect(error.details).to.deep.equal({ reason: 'closed' });
      expect(await computeDriver({ stateFile: file }).listInstances()).to.deep.equal(['a']);
    });

    it('a driver that only reads never writes the file', async () => {
      const d = computeDriver({ stateFile: file });
      await d.setup();
      await d.listInstances();
      await d.getAvailableResources();
      await rejection(d.getInfo(inst('ghost')), 'NOT_FOUND');
      expect(existsSync(file)).to.equal(false);
    });

    it('the test hooks are saved too: a guest that shut itself down or a vanished VM stays so after a restart', async () => {
      const first = computeDriver({ stateFile: file });
      await first.spawn(inst('a'));
      await first.spawn(inst('b'));
      first.setPowerState('a', 'shutdown');
      first.removeInstance('b');
      const second = computeDriver({ stateFile: file });
      expect(await second.listInstances()).to.deep.equal(['a']);
      expect((await second.getInfo(inst('a'))).state).to.equal('shutdown');
    });

    it('a relative stateFile is resolved against the data directory', async () => {
      const config = withDefaults(FakeComputeConfig, { stateFile: 'sub/hv.json' }).value;
      const first = new FakeComputeDriver(config, { ...env(), dataDir: dir });
      await first.spawn(inst('a'));
      expect(existsSync(path.join(dir, 'sub', 'hv.json'))).to.equal(true);
      const second = new FakeComputeDriver(config, { ...env(), dataDir: dir });
      expect(await second.listInstances()).to.deep.equal(['a']);
    });
  });

  describe('FakeVolumeDriver', () => {
    it('a hung create writes nothing until it is released', async () => {
      const first = volumeDriver({ stateFile: file });
      first.faults.hangNext('createVolume');
      const hung = first.createVolume(vol('v1'));
      expect(await stillPending(hung)).to.equal(true);
      expect(existsSync(file)).to.equal(false);
      first.faults.releaseHangs();
      await hung;
      expect(await volumeDriver({ stateFile: file }).listVolumes()).to.deep.equal([
        { name: 'v1', sizeGiB: 1 },
      ]);
    });
  });

  describe('StateFile', () => {
    it('a write cut short (a .tmp left behind) does not replace the saved state', () => {
      const state = new StateFile<{ n: number }>(file, dir);
      state.save({ n: 1 });
      writeFileSync(`${file}.tmp`, '{"n": 2, "tor');
      expect(new StateFile<{ n: number }>(file, dir).load()).to.deep.equal({ n: 1 });
      state.save({ n: 3 });
      expect(state.load()).to.deep.equal({ n: 3 });
    });

    it('an unreadable file is InvalidState naming the file and what to do, for both drivers', () => {
      writeFileSync(file, '{ not json');
      for (const make of [
        () => computeDriver({ stateFile: file }),
        () => volumeDriver({ stateFile: file }),
      ]) {
        expect(make)
          .to.throw(/is not valid JSON/)
          .with.property('message')
          .that.includes(file)
          .and.matches(/delete it to start with an empty backend/);
      }
    });

    it('no file yet is an empty backend', () => {
      expect(new StateFile(path.join(dir, 'none.json'), dir).load()).to.equal(undefined);
    });
  });
});

import { InvalidStateError } from '@stratus/core';
import { expect } from 'chai';
import sinon from 'sinon';
import { CALL_LOG_LIMIT } from '../src/faults.js';
import type { VolumeMethod } from '../src/index.js';
import { computeDriver, inst, rejection, stillPending, vol, volumeDriver } from './helpers.js';

describe('failure injection', () => {
  afterEach(() => sinon.restore());

  describe('failNext', () => {
    it('makes the next call throw an injected DriverFailure and leaves the backend unchanged', async () => {
      const d = volumeDriver({ capacityGiB: 10 });
      d.faults.failNext('createVolume');
      const error = await rejection(d.createVolume(vol('a', 4)), 'DRIVER_FAILURE');
      expect(error.details).to.deep.equal({ reason: 'injected', method: 'createVolume' });
      expect(error.message).to.match(/faults\.clear\(\)/);
      expect(await d.listVolumes()).to.deep.equal([]);
      expect((await d.getVolumeStats(true)).freeCapacityGiB).to.equal(10);
      await d.createVolume(vol('a', 4));
      expect(await d.listVolumes()).to.deep.equal([{ name: 'a', sizeGiB: 4 }]);
    });

    it('throws the given error for exactly `count` calls, then calls work again', async () => {
      const d = volumeDriver();
      await d.createVolume(vol('a'));
      const busy = new InvalidStateError('busy');
      d.faults.failNext('deleteVolume', 2, busy);
      expect(d.faults.pending('deleteVolume')).to.equal(2);
      for (let i = 0; i < 2; i++) {
        try {
          await d.deleteVolume(vol('a'));
          expect.fail('deleteVolume should have thrown');
        } catch (e) {
          expect(e).to.equal(busy);
        }
      }
      expect(d.faults.pending()).to.equal(0);
      await d.deleteVolume(vol('a'));
      expect(await d.listVolumes()).to.deep.equal([]);
    });

    it('affects only the named method', async () => {
      const d = volumeDriver();
      d.faults.failNext('deleteVolume');
      await d.createVolume(vol('a'));
      expect(await d.listVolumes()).to.have.length(1);
      await rejection(d.deleteVolume(vol('a')), 'DRIVER_FAILURE');
    });

    it('refuses an unknown method name or a count below 1 with InvalidInput', () => {
      const d = volumeDriver();
      expect(() => d.faults.failNext('createVolumes' as VolumeMethod)).to.throw(
        /"createVolumes" is not one of setup/,
      );
      expect(() => d.faults.failNext('createVolume', 0)).to.throw(/positive integer/);
      expect(() => d.faults.hangNext('createVolume', 1.5)).to.throw(/positive integer/);
    });

    it('works on the compute driver too: a failed spawn leaves no instance and no used resources', async () => {
      const d = computeDriver();
      d.faults.failNext('spawn');
      await rejection(d.spawn(inst('a')), 'DRIVER_FAILURE');
      expect(await d.listInstances()).to.deep.equal([]);
      expect((await d.getAvailableResources()).vcpusUsed).to.equal(0);
    });

    it('can make setup() fail, as a missing backend would', async () => {
      const d = volumeDriver();
      d.faults.failNext('checkForSetupError');
      await d.setup();
      await rejection(d.checkForSetupError(), 'DRIVER_FAILURE');
    });
  });

  describe('hangNext', () => {
    it('keeps the call pending and the state unchanged until releaseHangs(), which lets it proceed', async () => {
      const d = volumeDriver();
      d.faults.hangNext('createVolume');
      const pending = d.createVolume(vol('a'));
      expect(await stillPending(pending)).to.equal(true);
      expect(d.faults.hangingCount).to.equal(1);
      expect(await d.listVolumes()).to.deep.equal([]);
      expect(d.faults.releaseHangs()).to.equal(1);
      await pending;
      expect(await d.listVolumes()).to.deep.equal([{ name: 'a', sizeGiB: 1 }]);
    });

    it('hangs only the next `count` calls', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      d.faults.hangNext('getInfo', 2);
      const first = d.getInfo(inst('a'));
      const second = d.getInfo(inst('a'));
      expect((await d.getInfo(inst('a'))).state).to.equal('running');
      expect(await stillPending(first)).to.equal(true);
      expect(await stillPending(second)).to.equal(true);
      d.faults.releaseHangs();
      expect((await first).state).to.equal('running');
      expect((await second).state).to.equal('running');
    });

    it('releaseHangs(error) rejects the hung calls with it and changes nothing', async () => {
      const d = volumeDriver();
      d.faults.hangNext('createVolume');
      const pending = d.createVolume(vol('a'));
      const boom = new Error('connection reset');
      d.faults.releaseHangs(boom);
      try {
        await pending;
        expect.fail('should have rejected');
      } catch (e) {
        expect(e).to.equal(boom);
      }
      expect(await d.listVolumes()).to.deep.equal([]);
    });

    it('close() rejects hung calls with a DriverFailure and refuses new ones', async () => {
      const d = computeDriver();
      d.faults.hangNext('spawn');
      const pending = d.spawn(inst('a'));
      await d.close();
      const error = await rejection(pending, 'DRIVER_FAILURE');
      expect(error.details.reason).to.equal('closed');
      await rejection(d.listInstances(), 'INVALID_STATE');
    });

    it('clear() forgets queued injections and lets hung calls proceed', async () => {
      const d = volumeDriver();
      d.faults.hangNext('createVolume');
      const pending = d.createVolume(vol('a'));
      d.faults.failNext('listVolumes', 3);
      d.faults.clear();
      await pending;
      expect(await d.listVolumes()).to.deep.equal([{ name: 'a', sizeGiB: 1 }]);
      expect(d.faults.pending()).to.equal(0);
    });
  });

  describe('call recording', () => {
    it('records every call with copies of its arguments and the time, failed calls included', async () => {
      sinon.useFakeTimers({ now: new Date('2025-03-01T12:00:00Z'), toFake: ['Date'] });
      const d = volumeDriver();
      const spec = vol('a', 2);
      await d.createVolume(spec);
      spec.sizeGiB = 99;
      d.faults.failNext('extendVolume');
      await rejection(d.extendVolume(vol('a', 2), 3), 'DRIVER_FAILURE');
      expect(d.calls).to.deep.equal([
        { method: 'createVolume', args: [vol('a', 2)], at: new Date('2025-03-01T12:00:00Z') },
        { method: 'extendVolume', args: [vol('a', 2), 3], at: new Date('2025-03-01T12:00:00Z') },
      ]);
    });

    it('hands out copies: changing what calls returned does not change the record', async () => {
      const d = computeDriver();
      await d.spawn(inst('a'));
      const calls = d.calls;
      (calls[0]?.args[0] as { name: string }).name = 'changed';
      calls.pop();
      expect(d.calls).to.have.length(1);
      expect(d.calls[0]?.args[0]).to.deep.include({ name: 'a' });
    });

    it(`keeps only the last ${CALL_LOG_LIMIT} calls, so a long-running fake does not grow`, async () => {
      const d = volumeDriver();
      for (let i = 0; i < CALL_LOG_LIMIT + 5; i++) await d.getVolumeStats(i % 2 === 0);
      const calls = d.calls;
      expect(calls).to.have.length(CALL_LOG_LIMIT);
      // The five oldest (refresh = true, false, true, false, true) were dropped.
      expect(calls[0]?.args).to.deep.equal([false]);
      expect(calls.at(-1)?.args).to.deep.equal([true]);
    });

    it('clearCalls() empties the record', async () => {
      const d = volumeDriver();
      await d.listVolumes();
      d.clearCalls();
      expect(d.calls).to.deep.equal([]);
    });
  });
});

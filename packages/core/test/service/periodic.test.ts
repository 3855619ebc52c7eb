import { expect } from 'chai';
import sinon from 'sinon';
import { PeriodicTaskRunner, periodicTask, silentLogger } from '../../src/index.js';

describe('PeriodicTaskRunner', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  function deferred() {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    return { promise, resolve };
  }

  it('honours spacing and runImmediately', async () => {
    const immediate = sinon.spy();
    const later = sinon.spy();
    const runner = new PeriodicTaskRunner(
      {
        immediate: periodicTask(immediate, { spacing: 10, runImmediately: true }),
        later: periodicTask(later, { spacing: 10 }),
      },
      { logger: silentLogger(), defaultSpacing: 60 },
    );
    runner.start();
    await clock.tickAsync(0);
    expect(immediate.callCount).to.equal(1);
    expect(later.callCount).to.equal(0);
    await clock.tickAsync(10_000);
    expect(immediate.callCount).to.equal(2);
    expect(later.callCount).to.equal(1);
    await runner.stop();
  });

  it('uses the default spacing for tasks that set none', async () => {
    const task = sinon.spy();
    const runner = new PeriodicTaskRunner(
      { task: periodicTask(task) },
      { logger: silentLogger(), defaultSpacing: 60 },
    );
    runner.start();
    await clock.tickAsync(59_999);
    expect(task.callCount).to.equal(0);
    await clock.tickAsync(1);
    expect(task.callCount).to.equal(1);
    await runner.stop();
  });

  it('never overlaps a task with itself and does not catch up missed runs', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const gate = deferred();
    const runner = new PeriodicTaskRunner(
      {
        slow: periodicTask(
          async () => {
            active += 1;
            runs += 1;
            maxActive = Math.max(maxActive, active);
            if (runs === 1) await gate.promise;
            active -= 1;
          },
          { spacing: 1, runImmediately: true },
        ),
      },
      { logger: silentLogger(), defaultSpacing: 60 },
    );
    runner.start();
    await clock.tickAsync(10_000); // ten spacings pass while the first run hangs
    expect(runs).to.equal(1);
    gate.resolve();
    await clock.tickAsync(0);
    expect(runs).to.equal(1); // no burst of catch-up runs once it finishes
    await clock.tickAsync(1_000);
    expect(runs).to.equal(2);
    expect(maxActive).to.equal(1);
    await runner.stop();
  });

  it('isolates a throwing task: it is logged, rescheduled, and the others go on', async () => {
    const logger = silentLogger();
    const error = sinon.spy(logger, 'error');
    const good = sinon.spy();
    const bad = sinon.stub().rejects(new Error('boom'));
    const runner = new PeriodicTaskRunner(
      { bad: periodicTask(bad, { spacing: 5 }), good: periodicTask(good, { spacing: 5 }) },
      { logger, defaultSpacing: 60 },
    );
    runner.start();
    await clock.tickAsync(10_000);
    expect(bad.callCount).to.equal(2);
    expect(good.callCount).to.equal(2);
    expect(error.callCount).to.equal(2);
    expect(String(error.firstCall.args[1])).to.contain('periodic task bad failed');
    await runner.stop();
  });

  it('stops scheduling after stop() and waits for a run in progress', async () => {
    const gate = deferred();
    let finished = false;
    const task = sinon.spy(async () => {
      await gate.promise;
      finished = true;
    });
    const runner = new PeriodicTaskRunner(
      { task: periodicTask(task, { spacing: 1, runImmediately: true }) },
      {
        logger: silentLogger(),
        defaultSpacing: 60,
      },
    );
    runner.start();
    await clock.tickAsync(0);
    const stopped = runner.stop();
    gate.resolve();
    await stopped;
    expect(finished).to.equal(true);
    await clock.tickAsync(10_000);
    expect(task.callCount).to.equal(1);
  });

  it('applies a new spacing live (SIGHUP)', async () => {
    const task = sinon.spy();
    const runner = new PeriodicTaskRunner(
      { task: periodicTask(task) },
      { logger: silentLogger(), defaultSpacing: 60 },
    );
    runner.start();
    await clock.tickAsync(1_000);
    runner.setSpacing(5);
    await clock.tickAsync(5_000);
    expect(task.callCount).to.equal(1);
    runner.setSpacing(60, { task: 2 });
    await clock.tickAsync(2_000);
    expect(task.callCount).to.equal(2);
    await runner.stop();
  });
});

import { expect } from 'chai';
import sinon from 'sinon';
import { Heartbeat, StoreUnavailableError, silentLogger } from '../../src/index.js';

describe('Heartbeat', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  it('reports at start and then every interval', async () => {
    const report = sinon.stub().resolves();
    const heartbeat = new Heartbeat(report, { intervalSeconds: 10, logger: silentLogger() });
    await heartbeat.start();
    expect(report.callCount).to.equal(1);
    await clock.tickAsync(30_000);
    expect(report.callCount).to.equal(4);
    await heartbeat.stop();
    await clock.tickAsync(30_000);
    expect(report.callCount).to.equal(4);
  });

  it('survives a store outage: logs once, keeps beating, logs the recovery', async () => {
    const logger = silentLogger();
    const errors = sinon.spy(logger, 'error');
    const infos = sinon.spy(logger, 'info');
    let down = false;
    const report = sinon.stub().callsFake(async () => {
      if (down) throw new StoreUnavailableError('connection refused');
    });
    const heartbeat = new Heartbeat(report, { intervalSeconds: 10, logger });
    await heartbeat.start();
    down = true;
    await clock.tickAsync(50_000);
    expect(heartbeat.failing).to.equal(true);
    expect(report.callCount).to.equal(6);
    expect(errors.callCount).to.equal(1);
    expect((errors.firstCall.args[0] as { retryable: boolean }).retryable).to.equal(true);
    down = false;
    await clock.tickAsync(10_000);
    expect(heartbeat.failing).to.equal(false);
    expect(infos.calledWithMatch(sinon.match.object, sinon.match(/heartbeat recovered/))).to.equal(true);
    await heartbeat.stop();
  });

  it('never runs two reports at once when the store is slow', async () => {
    let active = 0;
    let maxActive = 0;
    const report = async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 25_000));
      active -= 1;
    };
    const heartbeat = new Heartbeat(report, { intervalSeconds: 10, logger: silentLogger() });
    const started = heartbeat.start();
    await clock.tickAsync(100_000);
    await started;
    expect(maxActive).to.equal(1);
    const stopping = heartbeat.stop();
    await clock.tickAsync(25_000);
    await stopping;
  });
});

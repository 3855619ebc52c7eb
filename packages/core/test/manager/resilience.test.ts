import { expect } from 'chai';
import sinon from 'sinon';
import {
  InvalidStateError,
  retryWhileStoreUnavailable,
  StoreUnavailableError,
  StratusError,
  withDriverTimeout,
} from '../../src/index.js';

function recordingLogger() {
  const lines: Array<{ level: string; msg: string }> = [];
  const log =
    (level: string) =>
    (...args: unknown[]) => {
      lines.push({ level, msg: String(args.find((a) => typeof a === 'string')) });
    };
  return { lines, logger: { info: log('info'), warn: log('warn') } as never };
}

describe('retryWhileStoreUnavailable', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  it('runs fn again, with growing pauses, until the database answers; logs the first failure and the recovery once', async () => {
    const { lines, logger } = recordingLogger();
    const attemptsAt: number[] = [];
    const fn = async () => {
      attemptsAt.push(Date.now());
      if (attemptsAt.length <= 5) throw new StoreUnavailableError('down');
      return 'stored';
    };
    const result = retryWhileStoreUnavailable(fn, { logger, what: 'create_volume' });
    await clock.runAllAsync();
    expect(await result).to.equal('stored');
    const pauses = attemptsAt.slice(1).map((t, i) => t - (attemptsAt[i] as number));
    expect(pauses).to.deep.equal([250, 500, 1000, 2000, 2000]);
    expect(lines.map((l) => l.level)).to.deep.equal(['warn', 'info']);
    expect(lines[0]?.msg).to.match(/^create_volume: the database is unreachable/);
  });

  it('throws any other error at once, without retrying', async () => {
    const fn = sinon.stub().rejects(new InvalidStateError('busy'));
    const error = await retryWhileStoreUnavailable(fn, { logger: recordingLogger().logger, what: 'x' }).catch(
      (e: unknown) => e,
    );
    expect(StratusError.is(error, 'INVALID_STATE')).to.equal(true);
    expect(fn.callCount).to.equal(1);
  });

  it('stops retrying when aborted and never settles, so the message is not acknowledged', async () => {
    const controller = new AbortController();
    const fn = sinon.stub().rejects(new StoreUnavailableError('down'));
    let settled = false;
    retryWhileStoreUnavailable(fn, {
      logger: recordingLogger().logger,
      what: 'x',
      signal: controller.signal,
    }).then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    await clock.tickAsync(1000);
    const before = fn.callCount;
    expect(before).to.be.at.least(2);
    controller.abort();
    await clock.tickAsync(60_000);
    expect(fn.callCount).to.equal(before);
    expect(settled).to.equal(false);
  });
});

describe('withDriverTimeout', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  it('rejects with a retryable TIMEOUT naming the work once the limit passes, and logs the late outcome', async () => {
    const { lines, logger } = recordingLogger();
    let finish!: () => void;
    const work = () =>
      new Promise<void>((resolve) => {
        finish = resolve;
      });
    const outcome = withDriverTimeout(work, {
      seconds: 2,
      what: 'instance i-1 (spawning)',
      backend: 'hypervisor',
      logger,
    }).catch((e: unknown) => e);
    await clock.tickAsync(1999);
    expect(lines).to.have.length(0);
    await clock.tickAsync(1);
    const error = (await outcome) as StratusError;
    expect(error.code).to.equal('TIMEOUT');
    expect(error.retryable).to.equal(true);
    expect(error.message).to.equal(
      'the hypervisor did not finish instance i-1 (spawning) within 2 s (driverTimeout); check the hypervisor, then delete or retry',
    );
    finish();
    await clock.tickAsync(0);
    expect(lines.map((l) => l.msg)).to.deep.equal([
      'hypervisor work on instance i-1 (spawning) finished after its timeout; its row stays in error',
    ]);
  });

  it('returns the result (or error) of work that finishes in time, and waits forever with 0', async () => {
    const options = { what: 'w', backend: 'b', logger: recordingLogger().logger };
    expect(await withDriverTimeout(async () => 7, { ...options, seconds: 1 })).to.equal(7);
    const failed = await withDriverTimeout(() => Promise.reject(new Error('boom')), {
      ...options,
      seconds: 1,
    }).catch((e: unknown) => e);
    expect((failed as Error).message).to.equal('boom');

    let done = false;
    const slow = withDriverTimeout(
      () => new Promise<string>((resolve) => setTimeout(() => resolve('late'), 3_600_000)),
      { ...options, seconds: 0 },
    ).then((v) => {
      done = true;
      return v;
    });
    await clock.tickAsync(3_599_999);
    expect(done).to.equal(false);
    await clock.tickAsync(1);
    expect(await slow).to.equal('late');
  });
});

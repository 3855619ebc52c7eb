import { expect } from 'chai';
import sinon from 'sinon';
import type { CliError } from '../../src/exit.js';
import { canAnimate, waitFor } from '../../src/wait.js';

function stream(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, write: (c: string) => chunks.push(c), isTTY };
}

describe('waitFor', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers();
  });
  afterEach(() => clock.restore());

  const statuses = (list: string[]) => {
    let i = 0;
    return async () => ({ status: list[Math.min(i++, list.length - 1)] as string });
  };
  const phase = (r: { status: string } | undefined) =>
    r?.status === 'creating' ? 'pending' : r?.status === 'available' ? 'done' : 'error';

  it('polls until the resource settles and reports the final state', async () => {
    const out = stream(false);
    const poll = sinon.spy(statuses(['creating', 'creating', 'available']));
    const result = await waitFor({
      stream: out,
      label: 'volume v',
      poll,
      phase,
      describe: (r) => r?.status ?? 'gone',
      sleep: async () => {},
    });
    expect(result).to.deep.equal({ phase: 'done', resource: { status: 'available' } });
    expect(poll.callCount).to.equal(3);
  });

  it('prints nothing when the stream is not a terminal', async () => {
    const out = stream(false);
    await waitFor({
      stream: out,
      label: 'v',
      poll: statuses(['creating', 'error']),
      phase,
      describe: (r) => r?.status ?? '',
      sleep: async () => {},
    });
    expect(out.chunks).to.deep.equal([]);
  });

  it('draws the status in place on a terminal and ends with a mark line', async () => {
    const out = stream(true);
    const result = await waitFor({
      stream: out,
      label: 'volume v',
      poll: statuses(['creating', 'error']),
      phase,
      describe: (r) => r?.status ?? '',
      sleep: async () => {},
    });
    expect(result.phase).to.equal('error');
    expect(out.chunks.some((c) => c.startsWith('\r\x1b[2K') && c.includes('volume v: creating'))).to.equal(
      true,
    );
    expect(out.chunks.at(-1)).to.match(/✗ volume v: error \(0\.0s\)\n$/);
  });

  it('does not animate on TERM=dumb', () => {
    expect(canAnimate({ write: () => true, isTTY: true }, { TERM: 'dumb' })).to.equal(false);
    expect(canAnimate({ write: () => true, isTTY: true }, {})).to.equal(true);
    expect(canAnimate({ write: () => true }, {})).to.equal(false);
  });

  it('gives up after the timeout with a hint', async () => {
    const promise = waitFor({
      stream: stream(false),
      label: 'volume v',
      poll: statuses(['creating']),
      phase,
      describe: (r) => r?.status ?? '',
      timeoutSec: 2,
      intervalMs: 500,
    });
    const settled = promise.then(
      () => undefined,
      (e: CliError) => e,
    );
    await clock.tickAsync(2500);
    const error = await settled;
    expect(error?.message).to.equal('volume v is still creating after 2 s');
    expect(error?.exitCode).to.equal(1);
  });
});

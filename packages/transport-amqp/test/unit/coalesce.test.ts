import type { ChannelModel } from 'amqplib';
import { expect } from 'chai';
import { coalesceWrites } from '../../src/amqp-transport.js';

/** A ChannelModel-shaped stand-in exposing the two amqplib internals coalesceWrites relies on. */
function fakeModel(pass: () => void) {
  const events: string[] = [];
  const muxer = {
    _readIncoming() {
      events.push('pass');
      pass();
    },
  };
  const stream = { cork: () => events.push('cork'), uncork: () => events.push('uncork') };
  return { model: { connection: { stream, muxer } } as unknown as ChannelModel, muxer, events };
}

describe('coalesceWrites', () => {
  it("corks the socket around each pass of amqplib's muxer, so the pass leaves in one write", () => {
    const { model, muxer, events } = fakeModel(() => {});
    expect(coalesceWrites(model)).to.equal(true);
    muxer._readIncoming();
    muxer._readIncoming();
    expect(events).to.deep.equal(['cork', 'pass', 'uncork', 'cork', 'pass', 'uncork']);
  });

  it('uncorks even when the pass throws, so nothing stays buffered', () => {
    const { model, muxer, events } = fakeModel(() => {
      throw new Error('boom');
    });
    coalesceWrites(model);
    expect(() => muxer._readIncoming()).to.throw('boom');
    expect(events).to.deep.equal(['cork', 'pass', 'uncork']);
  });

  it('leaves a connection without those internals alone (another amqplib)', () => {
    expect(coalesceWrites({ connection: {} } as unknown as ChannelModel)).to.equal(false);
    expect(coalesceWrites({} as unknown as ChannelModel)).to.equal(false);
  });
});

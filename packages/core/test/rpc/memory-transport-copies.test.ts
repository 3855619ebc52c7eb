import { expect } from 'chai';
import type { Delivery, TransportMessage } from '../../src/contracts/transport.js';
import { StratusError } from '../../src/errors.js';
import { MemoryBroker, MemoryTransport } from '../../src/rpc/memory-transport.js';

async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

/** The transport's one request timer, and whether it holds the process open. */
const requestTimer = (t: MemoryTransport) => {
  const timer = (t as unknown as { timer?: NodeJS.Timeout }).timer;
  return timer === undefined ? 'none' : timer.hasRef() ? 'holding' : 'idle';
};

describe('rpc: MemoryTransport copies and timeouts', () => {
  const opened: MemoryTransport[] = [];
  async function pair(): Promise<[MemoryTransport, MemoryTransport, MemoryBroker]> {
    const broker = new MemoryBroker();
    const a = new MemoryTransport({ broker });
    const b = new MemoryTransport({ broker });
    await a.connect();
    await b.connect();
    opened.push(a, b);
    return [a, b, broker];
  }
  afterEach(async () => {
    for (const t of opened.splice(0)) await t.close();
  });

  describe('nothing is shared between sender and receiver', () => {
    it('request: the sender mutating after sending, and the receiver mutating what it got, change nothing for the other', async () => {
      const [server, client] = await pair();
      let received: Record<string, unknown> | undefined;
      let replied: { result: { items: number[] } } | undefined;
      await server.consume(
        { kind: 'topic', topic: 't' },
        async (d) => {
          received = d.message;
          // The receiver scribbles on its copy before and after replying.
          (d.message.args as { list: number[] }).list.push(99);
          replied = { result: { items: [1, 2] } };
          await d.reply?.(replied);
          replied.result.items.push(3);
        },
        { prefetch: 1 },
      );
      const sent = { args: { list: [1, 2] }, text: 'x'.repeat(10 * 1024) };
      const pending = client.request({ kind: 'topic', topic: 't' }, sent, { timeoutMs: 1000 });
      sent.args.list.push(3);
      const reply = await pending;
      expect(reply).to.deep.equal({ result: { items: [1, 2] } });
      expect(reply).not.to.equal(replied);
      expect(sent.args.list).to.deep.equal([1, 2, 3]);
      expect(received).to.deep.equal({ args: { list: [1, 2, 99] }, text: sent.text });
      expect(received?.args).not.to.equal(sent.args);
      await turns();
      (reply.result as { items: number[] }).items.length = 0;
      expect(replied?.result.items).to.deep.equal([1, 2, 3]);
    });

    it('a redelivered message is the one published, not what the first consumer made of it', async () => {
      const [first, sender, broker] = await pair();
      const seen: TransportMessage[] = [];
      await first.consume(
        { kind: 'topic', topic: 't' },
        (d) => {
          seen.push(d.message);
          (d.message.nested as { v: number }).v = -1;
          d.message.added = true;
          return new Promise<void>(() => {});
        },
        { prefetch: 1 },
      );
      await sender.publish({ kind: 'topic', topic: 't' }, { nested: { v: 1 } });
      await turns();
      expect(seen).to.have.length(1);
      await first.close();
      expect(broker.depth({ kind: 'topic', topic: 't' })).to.equal(1);
      const second = new MemoryTransport({ broker });
      await second.connect();
      opened.push(second);
      const redelivered: Delivery[] = [];
      await second.consume({ kind: 'topic', topic: 't' }, (d) => void redelivered.push(d), { prefetch: 1 });
      await turns();
      expect(redelivered.map((d) => [d.message, d.redelivered])).to.deep.equal([
        [{ nested: { v: 1 } }, true],
      ]);
    });

    it('publish(), request() and reply() refuse what JSON cannot carry with INVALID_INPUT naming the path', async () => {
      const [server, client] = await pair();
      let replyError: unknown;
      await server.consume(
        { kind: 'topic', topic: 't' },
        async (d) => {
          replyError = await rejection(d.reply?.({ result: { when: Number.NaN } }) ?? Promise.resolve());
          await d.reply?.({ ok: true });
        },
        { prefetch: 1 },
      );
      const publishError = (await rejection(
        client.publish({ kind: 'topic', topic: 't' }, { args: { f: () => 1 } }),
      )) as StratusError & { fields: { path: string }[] };
      expect(StratusError.is(publishError, 'INVALID_INPUT')).to.equal(true);
      expect(publishError.fields.map((f) => f.path)).to.deep.equal(['/args/f']);
      const requestError = (await rejection(
        client.request({ kind: 'topic', topic: 't' }, { m: new Map() }, { timeoutMs: 1000 }),
      )) as StratusError & { fields: { path: string }[] };
      expect(StratusError.is(requestError, 'INVALID_INPUT')).to.equal(true);
      expect(requestError.fields.map((f) => f.path)).to.deep.equal(['/m']);
      // A refused reply is not counted as sent: a second, valid one goes through.
      expect(await client.request({ kind: 'topic', topic: 't' }, {}, { timeoutMs: 1000 })).to.deep.equal({
        ok: true,
      });
      expect(StratusError.is(replyError, 'INVALID_INPUT')).to.equal(true);
      expect((replyError as { fields: { path: string }[] }).fields.map((f) => f.path)).to.deep.equal([
        '/result/when',
      ]);
    });
  });

  describe('request timeouts (one shared timer)', () => {
    it('each request times out close to its own deadline, whatever the order they were sent in', async () => {
      const [server, client] = await pair();
      await server.consume({ kind: 'topic', topic: 'silent' }, () => new Promise<void>(() => {}), {
        prefetch: 10,
      });
      const start = Date.now();
      const settled: Record<string, number> = {};
      const timed = (name: string, timeoutMs: number) =>
        rejection(client.request({ kind: 'topic', topic: 'silent' }, { name }, { timeoutMs })).then(
          (error) => {
            settled[name] = Date.now() - start;
            return error;
          },
        );
      // Sent longest first: the shared timer must be re-armed for the earlier deadlines.
      const errors = await Promise.all([timed('slow', 150), timed('medium', 90), timed('fast', 30)]);
      for (const error of errors) expect(StratusError.is(error, 'TIMEOUT')).to.equal(true);
      expect((errors[2] as Error).message).to.equal('No reply on silent within 30 ms');
      expect(settled.fast).to.be.at.least(30);
      expect(settled.medium).to.be.at.least(90);
      expect(settled.slow).to.be.at.least(150);
      expect(settled.fast).to.be.below(settled.medium as number);
      expect(settled.medium).to.be.below(settled.slow as number);
      // "Within a few ms": generous bounds, the CI machine is shared.
      expect(settled.slow).to.be.below(150 + 250);
    });

    it('answered requests leave no live timer behind, and a later request still times out', async () => {
      const [server, client] = await pair();
      await server.consume({ kind: 'topic', topic: 'echo' }, (d) => d.reply?.({ ok: true }), {
        prefetch: 10,
      });
      await server.consume({ kind: 'topic', topic: 'silent' }, () => new Promise<void>(() => {}), {
        prefetch: 10,
      });
      expect(requestTimer(client)).to.equal('none');
      const answered = client.request({ kind: 'topic', topic: 'echo' }, {}, { timeoutMs: 60_000 });
      expect(requestTimer(client)).to.equal('holding');
      await answered;
      // Kept for the next request, but no longer keeping the process alive.
      expect(requestTimer(client)).to.equal('idle');
      const again = client.request({ kind: 'topic', topic: 'echo' }, {}, { timeoutMs: 60_000 });
      expect(requestTimer(client)).to.equal('holding');
      await again;
      const started = Date.now();
      const error = await rejection(
        client.request({ kind: 'topic', topic: 'silent' }, {}, { timeoutMs: 40 }),
      );
      expect(StratusError.is(error, 'TIMEOUT')).to.equal(true);
      expect(Date.now() - started).to.be.at.least(40);
      await client.close();
      expect(requestTimer(client)).to.equal('none');
    });

    it('a reply arriving after the timeout is dropped and resolves nothing else', async () => {
      const [server, client] = await pair();
      const held: Delivery[] = [];
      await server.consume({ kind: 'topic', topic: 't' }, (d) => void held.push(d), { prefetch: 10 });
      const late = await rejection(
        client.request({ kind: 'topic', topic: 't' }, { n: 1 }, { timeoutMs: 20 }),
      );
      expect(StratusError.is(late, 'TIMEOUT')).to.equal(true);
      const next = client.request({ kind: 'topic', topic: 't' }, { n: 2 }, { timeoutMs: 1000 });
      await turns();
      await held[0]?.reply?.({ answer: 1 });
      await held[1]?.reply?.({ answer: 2 });
      expect(await next).to.deep.equal({ answer: 2 });
    });

    it('close() rejects pending requests at once with TRANSPORT_UNAVAILABLE', async () => {
      const [server, client] = await pair();
      await server.consume({ kind: 'topic', topic: 't' }, () => new Promise<void>(() => {}), { prefetch: 1 });
      const pending = rejection(client.request({ kind: 'topic', topic: 't' }, {}, { timeoutMs: 60_000 }));
      await turns();
      await client.close();
      const error = (await pending) as Error;
      expect(StratusError.is(error, 'TRANSPORT_UNAVAILABLE')).to.equal(true);
      expect(error.message).to.include('request to t');
    });
  });
});

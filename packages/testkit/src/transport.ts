/**
 * The transport conformance suite: the executable form of core's `Transport` contract (broker
 * semantics the RPC layer relies on). Every transport runs it, the in-memory one and AMQP alike:
 *
 * ```ts
 * import { describeTransport } from '@stratus/testkit/transport';
 * describeTransport({ name: 'amqp', create: () => new AmqpTransport({ url }) });
 * ```
 *
 * `create()` is called once per connection a test needs (two "hosts" → two calls); all
 * connections it returns must reach the same bus. Each test uses fresh random topic names, so one
 * long-lived broker serves the whole suite.
 */
import { randomBytes } from 'node:crypto';
import {
  type Delivery,
  type Route,
  StratusError,
  type Transport,
  type TransportMessage,
} from '@stratus/core';
import { expect } from 'chai';
import { defaultRunner, type SuiteRunner } from './runner.js';

export { defaultRunner, type SuiteFn, type SuiteRunner } from './runner.js';

export interface TransportSuiteOptions {
  /** Shown in the suite title. */
  readonly name: string;
  /** A new, not yet connected transport: one connection to the shared bus under test. */
  readonly create: () => Promise<Transport> | Transport;
  /** Called for each transport after the suite closed it (drop test queues, stop a container). */
  readonly teardown?: (transport: Transport) => Promise<void> | void;
  /** Test functions; mocha's globals by default. */
  readonly runner?: SuiteRunner;
  /**
   * How long to wait before asserting that something did NOT happen (no extra delivery), in ms.
   * Default 50; raise it for a remote broker.
   */
  readonly settleMs?: number;
  /** How long to wait for something that must happen, in ms. Default 2000. */
  readonly waitMs?: number;
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Register the transport conformance suite with `options.runner` (mocha by default). */
export function describeTransport(options: TransportSuiteOptions): void {
  const { describe, it, afterEach } = options.runner ?? defaultRunner();
  const settleMs = options.settleMs ?? 50;
  const waitMs = options.waitMs ?? 2000;
  const opened: Transport[] = [];

  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, settleMs));

  async function waitFor(what: string, predicate: () => boolean): Promise<void> {
    const until = Date.now() + waitMs;
    while (!predicate()) {
      if (Date.now() > until) throw new Error(`Timed out after ${waitMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async function open(): Promise<Transport> {
    const transport = await options.create();
    opened.push(transport);
    await transport.connect();
    return transport;
  }

  function topicName(): string {
    return `conformance_${randomBytes(6).toString('hex')}`;
  }

  /** Collects deliveries; `hold` keeps each handler pending until released (its message unacked). */
  function recorder(hold = false) {
    const received: Delivery[] = [];
    const gates: Deferred[] = [];
    let active = 0;
    let maxActive = 0;
    const handler = async (delivery: Delivery) => {
      received.push(delivery);
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        if (hold) {
          const gate = deferred();
          gates.push(gate);
          await gate.promise;
        }
      } finally {
        active--;
      }
    };
    return {
      handler,
      received,
      messages: () => received.map((d) => d.message),
      get active() {
        return active;
      },
      get maxActive() {
        return maxActive;
      },
      releaseOne: () => gates.shift()?.resolve(),
      releaseAll: () => {
        for (const gate of gates.splice(0)) gate.resolve();
      },
    };
  }

  async function expectCode(promise: Promise<unknown>, code: string): Promise<StratusError> {
    try {
      await promise;
    } catch (error) {
      expect(StratusError.is(error), `expected a StratusError, got ${String(error)}`).to.equal(true);
      expect((error as StratusError).code).to.equal(code);
      return error as StratusError;
    }
    throw new Error(`expected a rejection with ${code}, but it resolved`);
  }

  describe(`${options.name} conforms to the transport contract`, () => {
    afterEach(async () => {
      for (const transport of opened.splice(0)) {
        await transport.close();
        await options.teardown?.(transport);
      }
    });

    describe('routing', () => {
      it('a topic message reaches exactly one consumer, shared round-robin across connections', async () => {
        const topic = topicName();
        const [a, b, sender] = [await open(), await open(), await open()];
        const ra = recorder();
        const rb = recorder();
        await a.consume({ kind: 'topic', topic }, ra.handler, { prefetch: 10 });
        await b.consume({ kind: 'topic', topic }, rb.handler, { prefetch: 10 });
        for (let n = 0; n < 10; n++) await sender.publish({ kind: 'topic', topic }, { n });
        await waitFor('10 deliveries', () => ra.received.length + rb.received.length >= 10);
        await settle();
        const all = [...ra.messages(), ...rb.messages()].map((m) => m.n as number).sort((x, y) => x - y);
        expect(all).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect(ra.received.length, 'first consumer share').to.be.greaterThan(0);
        expect(rb.received.length, 'second consumer share').to.be.greaterThan(0);
      });

      it('a direct message reaches only the queue of its host', async () => {
        const topic = topicName();
        const [a, b, sender] = [await open(), await open(), await open()];
        const hostA = recorder();
        const hostB = recorder();
        const shared = recorder();
        await a.consume({ kind: 'direct', topic, host: 'host-a' }, hostA.handler, { prefetch: 10 });
        await b.consume({ kind: 'direct', topic, host: 'host-b' }, hostB.handler, { prefetch: 10 });
        await b.consume({ kind: 'topic', topic }, shared.handler, { prefetch: 10 });
        for (let n = 0; n < 3; n++) await sender.publish({ kind: 'direct', topic, host: 'host-a' }, { n });
        await waitFor('3 deliveries to host-a', () => hostA.received.length >= 3);
        await settle();
        expect(hostA.messages()).to.deep.equal([{ n: 0 }, { n: 1 }, { n: 2 }]);
        expect(hostB.received).to.have.length(0);
        expect(shared.received).to.have.length(0);
      });

      it('a fanout message reaches every fanout consumer once, and no topic consumer', async () => {
        const topic = topicName();
        const [a, b, sender] = [await open(), await open(), await open()];
        const fa = recorder();
        const fb = recorder();
        const shared = recorder();
        await a.consume({ kind: 'fanout', topic }, fa.handler, { prefetch: 10 });
        await b.consume({ kind: 'fanout', topic }, fb.handler, { prefetch: 10 });
        await b.consume({ kind: 'topic', topic }, shared.handler, { prefetch: 10 });
        await sender.publish({ kind: 'fanout', topic }, { n: 1 });
        await sender.publish({ kind: 'fanout', topic }, { n: 2 });
        await waitFor(
          '2 deliveries on each fanout consumer',
          () => fa.received.length >= 2 && fb.received.length >= 2,
        );
        await settle();
        expect(fa.messages()).to.deep.equal([{ n: 1 }, { n: 2 }]);
        expect(fb.messages()).to.deep.equal([{ n: 1 }, { n: 2 }]);
        expect(shared.received).to.have.length(0);
      });

      it('topic and direct messages published before any consumer are kept and delivered in order', async () => {
        const topic = topicName();
        const sender = await open();
        for (let n = 0; n < 3; n++) await sender.publish({ kind: 'topic', topic }, { n });
        await sender.publish({ kind: 'direct', topic, host: 'late' }, { direct: true });
        const late = await open();
        const shared = recorder();
        const direct = recorder();
        await late.consume({ kind: 'topic', topic }, shared.handler, { prefetch: 10 });
        await late.consume({ kind: 'direct', topic, host: 'late' }, direct.handler, { prefetch: 10 });
        await waitFor('the kept messages', () => shared.received.length >= 3 && direct.received.length >= 1);
        expect(shared.messages()).to.deep.equal([{ n: 0 }, { n: 1 }, { n: 2 }]);
        expect(direct.messages()).to.deep.equal([{ direct: true }]);
      });

      it('a fanout message published while nobody listens is not kept', async () => {
        const topic = topicName();
        const sender = await open();
        await sender.publish({ kind: 'fanout', topic }, { lost: true });
        const late = await open();
        const fan = recorder();
        await late.consume({ kind: 'fanout', topic }, fan.handler, { prefetch: 10 });
        await sender.publish({ kind: 'fanout', topic }, { kept: true });
        await waitFor('the second fanout message', () => fan.received.length >= 1);
        await settle();
        expect(fan.messages()).to.deep.equal([{ kept: true }]);
      });

      it('consume() rejects a malformed route with INVALID_INPUT', async () => {
        const transport = await open();
        const bad = { kind: 'topic', topic: 'has.dot' } as Route;
        await expectCode(
          transport.consume(bad, () => {}, { prefetch: 1 }),
          'INVALID_INPUT',
        );
        await expectCode(
          transport.publish({ kind: 'queue', topic: 'x' } as unknown as Route, {}),
          'INVALID_INPUT',
        );
      });
    });

    describe('messages', () => {
      it('the receiver gets its own copy: neither side sees the other mutate it', async () => {
        const topic = topicName();
        const [a, b, sender] = [await open(), await open(), await open()];
        const fa = recorder();
        const fb = recorder();
        await a.consume({ kind: 'fanout', topic }, fa.handler, { prefetch: 1 });
        await b.consume({ kind: 'fanout', topic }, fb.handler, { prefetch: 1 });
        const sent = { list: [1, 2], nested: { deep: 'value' } };
        await sender.publish({ kind: 'fanout', topic }, sent);
        sent.list.push(3);
        sent.nested.deep = 'changed by sender';
        await waitFor('both copies', () => fa.received.length >= 1 && fb.received.length >= 1);
        const copyA = fa.messages()[0] as { list: number[]; nested: { deep: string } };
        expect(copyA).to.deep.equal({ list: [1, 2], nested: { deep: 'value' } });
        expect(copyA).not.to.equal(sent);
        copyA.nested.deep = 'changed by one receiver';
        expect(fb.messages()[0]).to.deep.equal({ list: [1, 2], nested: { deep: 'value' } });
      });

      it('only JSON crosses: a Date arrives as its ISO string, undefined members vanish', async () => {
        const topic = topicName();
        const [server, sender] = [await open(), await open()];
        const rec = recorder();
        await server.consume({ kind: 'topic', topic }, rec.handler, { prefetch: 1 });
        const when = new Date('2011-09-22T00:00:00.000Z');
        await sender.publish({ kind: 'topic', topic }, { when, gone: undefined });
        await waitFor('the message', () => rec.received.length >= 1);
        expect(rec.messages()[0]).to.deep.equal({ when: '2011-09-22T00:00:00.000Z' });
      });

      it('publish() rejects a message that is not a JSON object with INVALID_INPUT', async () => {
        const transport = await open();
        const topic = topicName();
        await expectCode(
          transport.publish({ kind: 'topic', topic }, [1, 2] as unknown as TransportMessage),
          'INVALID_INPUT',
        );
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        await expectCode(transport.publish({ kind: 'topic', topic }, cyclic), 'INVALID_INPUT');
      });

      it('a delivery of a cast has no reply(); a delivery of a request has one', async () => {
        const topic = topicName();
        const [server, client] = [await open(), await open()];
        const seen: Delivery[] = [];
        await server.consume(
          { kind: 'topic', topic },
          async (d) => {
            seen.push(d);
            await d.reply?.({ ok: true });
          },
          { prefetch: 1 },
        );
        await client.publish({ kind: 'topic', topic }, { cast: true });
        expect(
          await client.request({ kind: 'topic', topic }, { call: true }, { timeoutMs: waitMs }),
        ).to.deep.equal({
          ok: true,
        });
        expect(seen.map((d) => [d.message, typeof d.reply])).to.deep.equal([
          [{ cast: true }, 'undefined'],
          [{ call: true }, 'function'],
        ]);
      });
    });

    describe('request/reply', () => {
      it('request() resolves with the reply of the consumer, on topic and direct routes', async () => {
        const topic = topicName();
        const [server, client] = [await open(), await open()];
        const answer = async (d: Delivery) => {
          await d.reply?.({ doubled: (d.message.n as number) * 2, route: d.route.kind });
        };
        await server.consume({ kind: 'topic', topic }, answer, { prefetch: 4 });
        await server.consume({ kind: 'direct', topic, host: 'h1' }, answer, { prefetch: 4 });
        const viaTopic = await client.request({ kind: 'topic', topic }, { n: 21 }, { timeoutMs: waitMs });
        const viaDirect = await client.request(
          { kind: 'direct', topic, host: 'h1' },
          { n: 2 },
          { timeoutMs: waitMs },
        );
        expect(viaTopic).to.deep.equal({ doubled: 42, route: 'topic' });
        expect(viaDirect).to.deep.equal({ doubled: 4, route: 'direct' });
      });

      it('concurrent requests each get their own reply', async () => {
        const topic = topicName();
        const [server, client] = [await open(), await open()];
        await server.consume(
          { kind: 'topic', topic },
          async (d) => {
            // Answer in reverse arrival order to catch replies matched by position.
            await new Promise((resolve) => setTimeout(resolve, 20 - (d.message.n as number) * 4));
            await d.reply?.({ n: d.message.n });
          },
          { prefetch: 5 },
        );
        const replies = await Promise.all(
          [0, 1, 2, 3, 4].map((n) => client.request({ kind: 'topic', topic }, { n }, { timeoutMs: waitMs })),
        );
        expect(replies).to.deep.equal([{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
      });

      it('a request nobody answers rejects with TIMEOUT', async () => {
        const client = await open();
        await expectCode(
          client.request({ kind: 'topic', topic: topicName() }, { n: 1 }, { timeoutMs: 30 }),
          'TIMEOUT',
        );
      });

      it('a late reply is dropped and never resolves another request', async () => {
        const topic = topicName();
        const [server, client] = [await open(), await open()];
        const held: Delivery[] = [];
        await server.consume(
          { kind: 'topic', topic },
          (d) => {
            held.push(d);
          },
          { prefetch: 10 },
        );
        await expectCode(client.request({ kind: 'topic', topic }, { n: 1 }, { timeoutMs: 30 }), 'TIMEOUT');
        const second = client.request({ kind: 'topic', topic }, { n: 2 }, { timeoutMs: waitMs });
        let outcome: unknown;
        second.then(
          (value) => {
            outcome = value;
          },
          (error: unknown) => {
            outcome = error;
          },
        );
        await waitFor('both requests to arrive', () => held.length >= 2);
        await held[0]?.reply?.({ n: 1, late: true });
        await settle();
        expect(outcome, 'the late reply resolved the second request').to.equal(undefined);
        await held[1]?.reply?.({ n: 2 });
        expect(await second).to.deep.equal({ n: 2 });
      });

      it('request() refuses a fanout route with INVALID_INPUT', async () => {
        const client = await open();
        await expectCode(
          client.request(
            { kind: 'fanout', topic: topicName() } as unknown as Route & { kind: 'topic' },
            {},
            { timeoutMs: 50 },
          ),
          'INVALID_INPUT',
        );
      });
    });

    describe('acknowledgement', () => {
      it('a consumer holds at most `prefetch` unsettled deliveries; the rest wait in the queue', async () => {
        const topic = topicName();
        const [server, sender] = [await open(), await open()];
        const rec = recorder(true);
        await server.consume({ kind: 'topic', topic }, rec.handler, { prefetch: 2 });
        for (let n = 0; n < 5; n++) await sender.publish({ kind: 'topic', topic }, { n });
        await waitFor('2 deliveries', () => rec.received.length >= 2);
        await settle();
        expect(rec.received.length, 'deliveries while 2 are unsettled').to.equal(2);
        rec.releaseOne();
        await waitFor('a third delivery once one settled', () => rec.received.length >= 3);
        await settle();
        expect(rec.received.length).to.equal(3);
        while (rec.received.length < 5 || rec.active > 0) {
          rec.releaseAll();
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        expect(rec.messages().map((m) => m.n)).to.deep.equal([0, 1, 2, 3, 4]);
        expect(rec.maxActive).to.equal(2);
      });

      it('one consumer of several routes shares a single prefetch window across them', async () => {
        const topic = topicName();
        const [server, sender] = [await open(), await open()];
        const rec = recorder(true);
        await server.consume(
          [
            { kind: 'topic', topic },
            { kind: 'direct', topic, host: 'h1' },
            { kind: 'fanout', topic },
          ],
          rec.handler,
          { prefetch: 1 },
        );
        await sender.publish({ kind: 'topic', topic }, { via: 'topic' });
        await sender.publish({ kind: 'direct', topic, host: 'h1' }, { via: 'direct' });
        await sender.publish({ kind: 'fanout', topic }, { via: 'fanout' });
        await waitFor('a first delivery', () => rec.received.length >= 1);
        await settle();
        expect(rec.received.length).to.equal(1);
        while (rec.received.length < 3 || rec.active > 0) {
          rec.releaseAll();
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        expect(
          rec
            .messages()
            .map((m) => m.via)
            .sort(),
        ).to.deep.equal(['direct', 'fanout', 'topic']);
        expect(rec.maxActive).to.equal(1);
      });

      it('a handler that rejects still settles its message: it is not redelivered and the next one comes', async () => {
        const topic = topicName();
        const [server, sender] = [await open(), await open()];
        const seen: unknown[] = [];
        await server.consume(
          { kind: 'topic', topic },
          async (d) => {
            seen.push(d.message.n);
            if (d.message.n === 0) throw new Error('handler failure (expected by the test)');
          },
          { prefetch: 1 },
        );
        await sender.publish({ kind: 'topic', topic }, { n: 0 });
        await sender.publish({ kind: 'topic', topic }, { n: 1 });
        await waitFor('the second message', () => seen.length >= 2);
        await settle();
        expect(seen).to.deep.equal([0, 1]);
      });
    });

    describe('lifecycle', () => {
      it('cancel() stops deliveries to that consumer; later messages wait for the next one', async () => {
        const topic = topicName();
        const [a, b, sender] = [await open(), await open(), await open()];
        const first = recorder();
        const consumer = await a.consume({ kind: 'topic', topic }, first.handler, { prefetch: 5 });
        await sender.publish({ kind: 'topic', topic }, { n: 1 });
        await waitFor('the first message', () => first.received.length >= 1);
        await consumer.cancel();
        await consumer.cancel();
        await sender.publish({ kind: 'topic', topic }, { n: 2 });
        await settle();
        expect(first.messages()).to.deep.equal([{ n: 1 }]);
        const next = recorder();
        await b.consume({ kind: 'topic', topic }, next.handler, { prefetch: 5 });
        await waitFor('the kept message', () => next.received.length >= 1);
        expect(next.messages()).to.deep.equal([{ n: 2 }]);
      });

      it('a handler running when its consumer is cancelled still replies', async () => {
        const topic = topicName();
        const [server, client] = [await open(), await open()];
        const gate = deferred();
        const arrived = deferred();
        const consumer = await server.consume(
          { kind: 'topic', topic },
          async (d) => {
            arrived.resolve();
            await gate.promise;
            await d.reply?.({ done: true });
          },
          { prefetch: 1 },
        );
        const pending = client.request({ kind: 'topic', topic }, {}, { timeoutMs: waitMs });
        await arrived.promise;
        await consumer.cancel();
        gate.resolve();
        expect(await pending).to.deep.equal({ done: true });
      });

      it('close() puts unsettled messages back, marked redelivered, for another consumer', async () => {
        const topic = topicName();
        const [a, b, sender] = [await open(), await open(), await open()];
        const stuck = recorder(true);
        await a.consume({ kind: 'topic', topic }, stuck.handler, { prefetch: 1 });
        await sender.publish({ kind: 'topic', topic }, { n: 1 });
        await waitFor('the message on the first consumer', () => stuck.received.length >= 1);
        expect(stuck.received[0]?.redelivered).to.equal(false);
        const rescuer = recorder();
        await b.consume({ kind: 'topic', topic }, rescuer.handler, { prefetch: 1 });
        await a.close();
        await waitFor('the redelivery', () => rescuer.received.length >= 1);
        expect(rescuer.messages()).to.deep.equal([{ n: 1 }]);
        expect(rescuer.received[0]?.redelivered).to.equal(true);
        stuck.releaseAll();
      });

      it('close() rejects pending requests with TRANSPORT_UNAVAILABLE, then refuses further use', async () => {
        const client = await open();
        const topic = topicName();
        const pending = client.request({ kind: 'topic', topic }, { n: 1 }, { timeoutMs: waitMs * 5 });
        await settle();
        await client.close();
        await expectCode(pending, 'TRANSPORT_UNAVAILABLE');
        await client.close();
        await expectCode(client.publish({ kind: 'topic', topic }, {}), 'TRANSPORT_UNAVAILABLE');
        await expectCode(
          client.consume({ kind: 'topic', topic }, () => {}, { prefetch: 1 }),
          'TRANSPORT_UNAVAILABLE',
        );
        await expectCode(
          client.request({ kind: 'topic', topic }, {}, { timeoutMs: 50 }),
          'TRANSPORT_UNAVAILABLE',
        );
      });

      it('connect() is idempotent', async () => {
        const topic = topicName();
        const transport = await open();
        await transport.connect();
        const rec = recorder();
        await transport.consume({ kind: 'topic', topic }, rec.handler, { prefetch: 1 });
        await transport.publish({ kind: 'topic', topic }, { n: 1 });
        await waitFor('the message', () => rec.received.length >= 1);
        expect(rec.messages()).to.deep.equal([{ n: 1 }]);
      });
    });
  });
}

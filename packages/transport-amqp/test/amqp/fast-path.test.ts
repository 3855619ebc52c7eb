import { type Delivery, defineEndpoints, endpoint, RequestContext, RpcServer } from '@stratus/core';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { expect } from 'chai';
import Type from 'typebox';
import { coalesceWrites } from '../../src/amqp-transport.js';
import { AmqpTransport, type AmqpTransportConfigInput } from '../../src/index.js';
import { encodeRequest, unwrapEnvelope, wrapEnvelope } from '../../src/wire.js';
import {
  AMQP_URL,
  adminConnection,
  brokerProblem,
  cleanup,
  skipUnless,
  uniqueName,
  waitFor,
} from '../helpers.js';

const topicName = () => `fast_${uniqueName('t').replaceAll('-', '_')}`;
const json = (msg: ConsumeMessage) => JSON.parse(msg.content.toString('utf8')) as Record<string, unknown>;

/** The cheap paths between Stratus peers, and that oslo.messaging peers still get what they expect. */
describe('AmqpTransport fast paths against RabbitMQ', function () {
  this.timeout(30_000);
  const controlExchange = uniqueName();
  const transports: AmqpTransport[] = [];
  const extraQueues: string[] = [];
  let admin: ChannelModel | undefined;
  let ch: Channel;

  before(async function () {
    skipUnless(this, await brokerProblem());
    admin = await adminConnection();
  });

  beforeEach(async () => {
    ch = await (admin as ChannelModel).createChannel();
    await ch.assertExchange(controlExchange, 'topic', { durable: false, autoDelete: false });
  });

  afterEach(async () => {
    await ch.close().catch(() => {});
    for (const t of transports) await t.close();
  });

  after(async () => {
    if (admin) {
      await cleanup(admin, transports, [controlExchange], extraQueues);
      await admin.close();
    }
  });

  async function open(config: AmqpTransportConfigInput = {}): Promise<AmqpTransport> {
    const transport = new AmqpTransport({ urls: [AMQP_URL], controlExchange, ...config });
    transports.push(transport);
    await transport.connect();
    return transport;
  }

  /** A queue shaped like oslo's topic queue, consumed by hand. */
  async function ownTopicQueue(topic: string, onMessage: (msg: ConsumeMessage) => void): Promise<void> {
    extraQueues.push(topic);
    await ch.assertQueue(topic, { durable: false, autoDelete: false });
    await ch.bindQueue(topic, controlExchange, topic);
    await ch.consume(topic, (msg) => {
      if (!msg) return;
      ch.ack(msg);
      onMessage(msg);
    });
  }

  it('the pinned amqplib has the internals write coalescing relies on', async () => {
    // Otherwise every frame group goes out in its own syscall again, silently.
    const model = await adminConnection();
    try {
      expect(coalesceWrites(model)).to.equal(true);
      const channel = await model.createChannel();
      await channel.checkExchange(controlExchange);
      await channel.close();
    } finally {
      await model.close();
    }
  });

  describe('direct reply-to', () => {
    it('a call asks for a direct reply, still names its oslo reply queue, and resolves with the direct answer', async () => {
      const topic = topicName();
      let request: ConsumeMessage | undefined;
      await ownTopicQueue(topic, (msg) => {
        request = msg;
      });
      const client = await open();
      const answer = client.request(
        { kind: 'topic', topic },
        { question: 'six times seven' },
        { timeoutMs: 5000 },
      );
      await waitFor('the request', () => request !== undefined);
      const msg = request as ConsumeMessage;
      const inner = unwrapEnvelope(msg.content);
      // The broker substitutes a per-channel name for amq.rabbitmq.reply-to.
      expect(msg.properties.replyTo).to.match(/^amq\.rabbitmq\.reply-to\..+/);
      expect(msg.properties.correlationId).to.equal(inner._msg_id);
      expect(inner._reply_q, 'oslo servers answer there').to.match(/^reply_[0-9a-f]{32}$/);
      // A reply for another request is ignored; the one with the request's correlationId settles it.
      ch.publish('', msg.properties.replyTo, Buffer.from('{"stray":true}'), {
        correlationId: 'f'.repeat(32),
      });
      ch.publish('', msg.properties.replyTo, Buffer.from('{"answer":42}'), {
        correlationId: msg.properties.correlationId,
      });
      expect(await answer).to.deep.equal({ answer: 42 });
    });

    it('a direct reply that is not a JSON object fails the call at once instead of timing out', async () => {
      const topic = topicName();
      await ownTopicQueue(topic, (msg) => {
        ch.publish('', msg.properties.replyTo, Buffer.from('not json'), {
          correlationId: msg.properties.correlationId,
        });
      });
      const client = await open();
      const started = Date.now();
      const error = await client
        .request({ kind: 'topic', topic }, { n: 1 }, { timeoutMs: 20_000 })
        .catch((e: unknown) => e);
      expect(error).to.have.property('code', 'INTERNAL');
      expect((error as Error).message).to.match(/Malformed reply/);
      expect(Date.now() - started).to.be.below(10_000);
    });

    it('a Stratus server answers over direct reply-to when asked, and through _reply_q in oslo format otherwise', async () => {
      const topic = topicName();
      const server = new RpcServer(await open(), {
        topic,
        host: 'h1',
        version: '1.0',
        endpoints: defineEndpoints({
          add: endpoint(Type.Object({ a: Type.Integer(), b: Type.Integer() }), (_ctx, { a, b }) => a + b),
        }),
      });
      await server.start();
      const ctx = RequestContext.admin().toJSON();
      const envelope = (id: string) => ({
        id,
        method: 'add',
        args: { a: 40, b: 2 },
        context: ctx,
        version: '1.0',
      });
      const replyQ = `reply_${uniqueName('q').replaceAll('-', '')}`;
      extraQueues.push(replyQ);
      await ch.assertQueue(replyQ, { exclusive: true, autoDelete: true });
      const replies: ConsumeMessage[] = [];
      const collect = (msg: ConsumeMessage | null) => {
        if (msg) replies.push(msg);
      };
      await ch.consume(replyQ, collect, { noAck: true });
      await ch.consume('amq.rabbitmq.reply-to', collect, { noAck: true });

      // As a Stratus client sends it: reply_to set, _reply_q named too.
      const viaDirect = 'a'.repeat(32);
      ch.publish(
        '',
        topic,
        Buffer.from(
          JSON.stringify(wrapEnvelope(encodeRequest(envelope(viaDirect), { msgId: viaDirect, replyQ }))),
        ),
        { replyTo: 'amq.rabbitmq.reply-to', correlationId: viaDirect },
      );
      await waitFor('the direct reply', () => replies.length >= 1);
      expect(replies[0]?.fields.routingKey).to.match(/^amq\.rabbitmq\.reply-to\./);
      expect(replies[0]?.properties.correlationId).to.equal(viaDirect);
      expect(json(replies[0] as ConsumeMessage)).to.deep.equal({ id: viaDirect, result: 42 });

      // As oslo.messaging sends it: no reply_to, the answer goes to _reply_q as an oslo reply.
      const viaOslo = 'b'.repeat(32);
      ch.publish(
        '',
        topic,
        Buffer.from(
          JSON.stringify(wrapEnvelope(encodeRequest(envelope(viaOslo), { msgId: viaOslo, replyQ }))),
        ),
      );
      await waitFor('the oslo reply', () => replies.length >= 2);
      expect(replies[1]?.fields.routingKey).to.equal(replyQ);
      expect(unwrapEnvelope((replies[1] as ConsumeMessage).content)).to.deep.include({
        _msg_id: viaOslo,
        result: 42,
        failure: null,
        ending: true,
      });
      expect(replies).to.have.length(2);
      await server.stop();
    });
  });

  describe('routing', () => {
    async function tap(): Promise<{ count(): Promise<number> }> {
      const name = `tap_${uniqueName('q').replaceAll('-', '_')}`;
      extraQueues.push(name);
      await ch.assertQueue(name, { durable: false, autoDelete: false });
      await ch.bindQueue(name, controlExchange, '#');
      return { count: async () => (await ch.checkQueue(name)).messageCount };
    }

    it('calls and casts go straight to the topic queue; with publishViaControlExchange they pass through the control exchange', async () => {
      const topic = topicName();
      const seen: string[] = [];
      await ownTopicQueue(topic, (msg) => {
        seen.push(JSON.stringify(unwrapEnvelope(msg.content)._stratus_raw));
      });
      const taps = await tap();
      const direct = await open();
      await direct.publish({ kind: 'topic', topic }, { via: 'default exchange' });
      await waitFor('the cast through the default exchange', () => seen.length === 1);
      expect(await taps.count(), 'nothing passed through the control exchange').to.equal(0);

      const oslo = await open({ publishViaControlExchange: true });
      await oslo.publish({ kind: 'topic', topic }, { via: 'control exchange' });
      await waitFor('the cast through the control exchange', () => seen.length === 2);
      // The tap got its copy when the exchange routed the cast, before it reached the consumer.
      expect(await taps.count(), 'the control exchange routed it').to.equal(1);
      expect(seen[0]).to.contain('default exchange');
      expect(seen[1]).to.contain('control exchange');
    });
  });

  describe('one window over several queues', () => {
    it('runs at most prefetch handlers at once over topic, host and fanout queues, and runs the rest after', async () => {
      const topic = topicName();
      const consumer = await open();
      const sender = await open();
      let running = 0;
      let most = 0;
      const done: unknown[] = [];
      const gates: (() => void)[] = [];
      await consumer.consume(
        [
          { kind: 'topic', topic },
          { kind: 'direct', topic, host: 'h1' },
          { kind: 'fanout', topic },
        ],
        async (d: Delivery) => {
          running++;
          most = Math.max(most, running);
          await new Promise<void>((resolve) => gates.push(resolve));
          running--;
          done.push(d.message.n);
        },
        { prefetch: 2 },
      );
      for (let n = 0; n < 3; n++) await sender.publish({ kind: 'topic', topic }, { n });
      for (let n = 3; n < 6; n++) await sender.publish({ kind: 'direct', topic, host: 'h1' }, { n });
      for (let n = 6; n < 8; n++) await sender.publish({ kind: 'fanout', topic }, { n });
      while (done.length < 8) {
        await waitFor(`a handler to start (${done.length} done)`, () => gates.length > 0);
        // Give the broker time to hand over more than the window allows, if it would.
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(running).to.be.at.most(2);
        gates.shift()?.();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(most).to.equal(2);
      expect([...done].sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    });

    it('cancel() puts deliveries that were waiting for the window back in their queue, for another consumer', async () => {
      const topic = topicName();
      const first = await open();
      const second = await open();
      const sender = await open();
      const handled: { by: string; n: unknown }[] = [];
      let release: (() => void) | undefined;
      const consumer = await first.consume(
        [
          { kind: 'topic', topic },
          { kind: 'direct', topic, host: 'h1' },
        ],
        async (d: Delivery) => {
          handled.push({ by: 'first', n: d.message.n });
          await new Promise<void>((resolve) => {
            release = resolve;
          });
        },
        { prefetch: 1 },
      );
      await sender.publish({ kind: 'topic', topic }, { n: 'topic' });
      await sender.publish({ kind: 'direct', topic, host: 'h1' }, { n: 'host' });
      await waitFor('the first handler', () => handled.length === 1);
      // The second message reached `first` (a window per queue) but waits: only one handler may run.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(handled).to.have.length(1);
      await consumer.cancel();
      await second.consume(
        [
          { kind: 'topic', topic },
          { kind: 'direct', topic, host: 'h1' },
        ],
        (d: Delivery) => {
          handled.push({ by: 'second', n: d.message.n });
        },
        { prefetch: 5 },
      );
      await waitFor('the waiting message at the other consumer', () => handled.length === 2);
      release?.();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(handled).to.have.length(2);
      expect(handled[0]?.by).to.equal('first');
      expect(handled[1]?.by).to.equal('second');
      expect(new Set(handled.map((h) => h.n))).to.deep.equal(new Set(['topic', 'host']));
    });
  });
});

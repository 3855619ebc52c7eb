import {
  type Delivery,
  defineEndpoints,
  endpoint,
  isRemoteError,
  NotFoundError,
  type RemoteError,
  RequestContext,
  RpcClient,
  RpcServer,
  StratusError,
} from '@stratus/core';
import type { ChannelModel } from 'amqplib';
import { expect } from 'chai';
import Type from 'typebox';
import {
  AmqpTransport,
  type AmqpTransportConfigInput,
  DEAD_QUEUE_HEADER,
  DEAD_REASON_HEADER,
} from '../../src/index.js';
import { unwrapEnvelope, wrapEnvelope } from '../../src/wire.js';
import {
  AMQP_URL,
  adminConnection,
  brokerProblem,
  cleanup,
  createVhost,
  deleteVhost,
  rabbitmqctl,
  rabbitmqctlProblem,
  skipUnless,
  uniqueName,
  waitFor,
} from '../helpers.js';

const topicName = () => `rel_${uniqueName('t').replaceAll('-', '_')}`;

async function rejection(promise: Promise<unknown>): Promise<StratusError> {
  try {
    await promise;
  } catch (error) {
    expect(StratusError.is(error), String(error)).to.equal(true);
    return error as StratusError;
  }
  throw new Error('expected a rejection, but it resolved');
}

describe('AmqpTransport reliability and RPC over RabbitMQ', function () {
  this.timeout(30_000);
  const controlExchange = uniqueName();
  const transports: AmqpTransport[] = [];
  let admin: ChannelModel | undefined;

  before(async function () {
    skipUnless(this, await brokerProblem());
    admin = await adminConnection();
  });

  afterEach(async () => {
    for (const t of transports) await t.close();
  });

  after(async () => {
    if (admin) {
      await cleanup(admin, transports, [controlExchange], [`${controlExchange}:dead-letter`]);
      await admin.close();
    }
  });

  async function open(config: AmqpTransportConfigInput = {}): Promise<AmqpTransport> {
    const transport = new AmqpTransport({ urls: [AMQP_URL], controlExchange, ...config });
    transports.push(transport);
    await transport.connect();
    return transport;
  }

  describe('RPC through RpcClient and RpcServer', () => {
    it('a Stratus call keeps context, result and the typed error (code, details, retryable) across the wire', async () => {
      const topic = topicName();
      let seen: RequestContext | undefined;
      const server = new RpcServer(await open(), {
        topic,
        host: 'h1',
        version: '1.0',
        endpoints: defineEndpoints({
          get: endpoint(Type.Object({ id: Type.String() }), (ctx, { id }) => {
            seen = ctx;
            if (id === 'missing') throw new NotFoundError('Volume', id);
            return { id, size: 1, tags: [null, 'a'] };
          }),
          nothing: endpoint(Type.Object({}), () => undefined),
        }),
      });
      await server.start();
      const client = new RpcClient(await open(), { topic, defaultTimeoutMs: 5000 });
      const ctx = new RequestContext({ userId: 'u', projectId: 'p', roles: ['member'], readDeleted: true });
      expect(await client.call(ctx, {}, 'get', { id: 'v1' })).to.deep.equal({
        id: 'v1',
        size: 1,
        tags: [null, 'a'],
      });
      expect(seen?.toJSON()).to.deep.equal(ctx.toJSON());
      expect(await client.call(ctx, { host: 'h1' }, 'nothing', {})).to.equal(null);
      const error = await rejection(client.call(ctx, {}, 'get', { id: 'missing' }));
      expect(isRemoteError(error)).to.equal(true);
      expect((error as RemoteError).type).to.equal('NotFound');
      expect(error.code).to.equal('NOT_FOUND');
      expect(error.details).to.deep.include({ kind: 'Volume', id: 'missing' });
      await server.stop();
    });

    it('accepts an oslo reply in two messages (result, then ending) and ignores call-monitor heartbeats', async () => {
      const topic = topicName();
      const client = await open();
      const ch = await (admin as ChannelModel).createChannel();
      await ch.assertExchange(controlExchange, 'topic', { durable: false });
      await ch.assertQueue(topic, { durable: false });
      await ch.bindQueue(topic, controlExchange, topic);
      await ch.consume(topic, (msg) => {
        if (!msg) return;
        ch.ack(msg);
        const inner = unwrapEnvelope(msg.content);
        const send = (body: Record<string, unknown>) =>
          ch.sendToQueue(
            inner._reply_q as string,
            Buffer.from(JSON.stringify(wrapEnvelope({ _msg_id: inner._msg_id, ...body }))),
            {
              contentType: 'application/json',
            },
          );
        send({ result: null, failure: null, ending: false }); // heartbeat
        send({ result: { answer: 42 }, failure: null, ending: false });
        send({ result: null, failure: null, ending: true });
      });
      const rpc = new RpcClient(client, { topic, defaultTimeoutMs: 5000 });
      expect(await rpc.call(RequestContext.admin(), {}, 'anything', {})).to.deep.equal({ answer: 42 });
      await ch.close();
    });
  });

  describe('delivery guarantees', () => {
    it('publish() resolves once the broker confirmed: the cast is already in its queue', async () => {
      const topic = topicName();
      const sender = await open({ confirm: true });
      for (let n = 0; n < 20; n++) await sender.publish({ kind: 'topic', topic }, { n });
      const ch = await (admin as ChannelModel).createChannel();
      expect((await ch.checkQueue(topic)).messageCount).to.equal(20);
      await ch.close();
    });

    it('closing right after a drained RpcServer.stop() acknowledges every handled message first (none requeued)', async () => {
      const topic = topicName();
      let open_ = 0;
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const handled: number[] = [];
      const transport = await open();
      const server = new RpcServer(transport, {
        topic,
        host: 'h1',
        version: '1.0',
        endpoints: defineEndpoints({
          work: endpoint(Type.Object({ n: Type.Number() }), async (_ctx, { n }) => {
            open_++;
            await gate;
            handled.push(n);
          }),
        }),
      });
      await server.start();
      const client = new RpcClient(await open({ confirm: true }), { topic, defaultTimeoutMs: 5000 });
      for (let n = 0; n < 50; n++) await client.cast(RequestContext.admin(), {}, 'work', { n });
      await waitFor('50 handlers running', () => open_ === 50);
      // The graceful shutdown of a service: stop consuming, drain, then close the transport at once.
      const stopped = server.stop({ timeoutMs: 5000 });
      release();
      expect(await stopped).to.deep.equal({ drained: true, pending: 0 });
      await transport.close();
      expect(handled).to.have.length(50);
      const ch = await (admin as ChannelModel).createChannel();
      expect((await ch.checkQueue(topic)).messageCount, 'messages requeued by the close').to.equal(0);
      await ch.close();
    });

    it('a message whose handling keeps killing its consumer ends in the dead-letter queue after maxRedeliveries', async () => {
      const topic = topicName();
      const sender = await open();
      await sender.publish({ kind: 'topic', topic }, { poison: true });
      const handed: Delivery[] = [];
      // Each "crash": a consumer takes the message and its connection dies before settling it.
      for (let crash = 0; crash < 3; crash++) {
        const victim = await open({ maxRedeliveries: 2 });
        await victim.consume(
          { kind: 'topic', topic },
          (d) => {
            handed.push(d);
            return new Promise(() => {});
          },
          { prefetch: 1 },
        );
        await waitFor(`delivery ${crash + 1}`, () => handed.length > crash);
        await victim.close();
      }
      expect(handed.map((d) => d.redelivered)).to.deep.equal([false, true, true]);
      // The next consumer never sees it: it goes to the dead-letter queue instead.
      const survivor = await open({ maxRedeliveries: 2 });
      const after: Delivery[] = [];
      await survivor.consume(
        { kind: 'topic', topic },
        (d) => {
          after.push(d);
        },
        { prefetch: 1 },
      );
      const ch = await (admin as ChannelModel).createChannel();
      ch.on('error', () => {});
      const dlq = survivor.deadLetterQueueName;
      // Declared here with the transport's own flags, so polling never hits a missing queue (404).
      await ch.assertQueue(dlq, { durable: true, autoDelete: false });
      let dead: Awaited<ReturnType<typeof ch.get>> = false;
      const until = Date.now() + 5000;
      while (dead === false && Date.now() < until) {
        dead = await ch.get(dlq, { noAck: true });
        if (dead === false) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(dead, 'a message in the dead-letter queue').not.to.equal(false);
      if (dead === false) return;
      expect(unwrapEnvelope(dead.content)).to.deep.include({ _stratus_raw: { poison: true } });
      expect(dead.properties.headers?.[DEAD_QUEUE_HEADER]).to.equal(topic);
      expect(String(dead.properties.headers?.[DEAD_REASON_HEADER])).to.match(/redelivered 3 times/);
      expect(after).to.have.length(0);
      await ch.close();
    });
  });

  describe('topology', () => {
    it('uses a queue another service declared with other flags (406) instead of failing', async () => {
      const topic = topicName();
      const ch = await (admin as ChannelModel).createChannel();
      await ch.assertQueue(topic, { durable: true });
      await ch.close();
      const server = await open({ durableQueues: false });
      const got: unknown[] = [];
      await server.consume(
        { kind: 'topic', topic },
        (d) => {
          got.push(d.message);
        },
        { prefetch: 1 },
      );
      await (await open()).publish({ kind: 'topic', topic }, { n: 1 });
      await waitFor('the message on the pre-existing queue', () => got.length >= 1);
      expect(got).to.deep.equal([{ n: 1 }]);
    });
  });

  describe('connecting', () => {
    it('fails over to the next URL when the first broker is unreachable', async () => {
      const transport = await open({ urls: ['amqp://guest:guest@127.0.0.1:1/', AMQP_URL] });
      expect(transport.state).to.equal('open');
    });

    it('rejects with TRANSPORT_UNAVAILABLE naming each URL, without leaking the password', async () => {
      const transport = new AmqpTransport({
        urls: ['amqp://guest:s3cret@127.0.0.1:1/', 'amqp://nobody:s3cret@127.0.0.1:5672/'],
        connectTimeoutMs: 2000,
      });
      const error = await rejection(transport.connect());
      expect(error.code).to.equal('TRANSPORT_UNAVAILABLE');
      expect(error.message).to.contain('127.0.0.1:1').and.to.contain('127.0.0.1:5672');
      expect(error.message).not.to.contain('s3cret');
      expect(transport.state).to.equal('idle');
    });
  });

  describe('a connection closed by the broker (rabbitmqctl close_all_connections)', () => {
    const vhost = uniqueName('stratus-test-vhost');
    let url = '';

    before(async function () {
      skipUnless(this, await rabbitmqctlProblem());
      url = await createVhost(vhost);
    });

    after(async () => {
      if (url) await deleteVhost(vhost);
    });

    it('uses the vhost of the URL and negotiates the configured heartbeat', async () => {
      await open({ urls: [url], heartbeatSec: 7 });
      const listed = await rabbitmqctl('-q', 'list_connections', '-p', vhost, 'vhost', 'timeout');
      expect(listed).to.match(new RegExp(`${vhost}\\s+7`));
    });

    it('fails a pending call at once with a retryable error, reconnects, re-declares and resumes consuming', async () => {
      const topic = topicName();
      const server = await open({ urls: [url], reconnect: { minDelayMs: 50, maxDelayMs: 500 } });
      const client = await open({ urls: [url], reconnect: { minDelayMs: 50, maxDelayMs: 500 } });
      const fanouts: unknown[] = [];
      let hold = true;
      await server.consume(
        [
          { kind: 'topic', topic },
          { kind: 'fanout', topic },
        ],
        async (d) => {
          if (d.route.kind === 'fanout') fanouts.push(d.message);
          else if (hold) await new Promise(() => {});
          else await d.reply?.({ pong: d.message.n });
        },
        { prefetch: 4 },
      );
      // The handler never answers: only the lost connection can end this call before its 60 s timeout.
      const stuck = client.request({ kind: 'topic', topic }, { n: 0 }, { timeoutMs: 60_000 });
      stuck.catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 200));
      await rabbitmqctl('-q', 'close_all_connections', '-p', vhost, 'test: simulated broker restart');
      const error = await rejection(stuck);
      expect(error.code).to.equal('TRANSPORT_UNAVAILABLE');
      expect(error.retryable).to.equal(true);

      await waitFor(
        'both transports to reconnect',
        () => server.state === 'open' && client.state === 'open',
        15_000,
      );
      hold = false;
      expect(await client.request({ kind: 'topic', topic }, { n: 1 }, { timeoutMs: 5000 })).to.deep.equal({
        pong: 1,
      });
      await client.publish({ kind: 'fanout', topic }, { after: 'reconnect' });
      await waitFor('the fanout after reconnect', () => fanouts.length >= 1);
      expect(fanouts).to.deep.equal([{ after: 'reconnect' }]);
    });
  });
});

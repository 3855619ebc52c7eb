import { expect } from 'chai';
import type { PluginEnv } from '../../src/contracts/driver.js';
import type { Delivery } from '../../src/contracts/transport.js';
import { routeName, Transport } from '../../src/contracts/transport.js';
import { silentLogger } from '../../src/log/logger.js';
import { isBrandedManifest } from '../../src/plugin/manifest.js';
import {
  MemoryBroker,
  MemoryTransport,
  memoryTransportPlugin,
  memoryTransportPluginFor,
} from '../../src/rpc/memory-transport.js';

async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

const env: PluginEnv = {
  host: 'h1',
  logger: silentLogger(),
  executor: undefined as never,
  dataDir: '/nonexistent',
};

describe('rpc: MemoryTransport specifics', () => {
  const opened: Transport[] = [];
  async function open(transport: MemoryTransport): Promise<MemoryTransport> {
    await transport.connect();
    opened.push(transport);
    return transport;
  }
  afterEach(async () => {
    for (const t of opened.splice(0)) await t.close();
  });

  it('names routes as the AMQP queues of nova (topic, topic.host, topic_fanout)', () => {
    expect(routeName({ kind: 'topic', topic: 'volume' })).to.equal('volume');
    expect(routeName({ kind: 'direct', topic: 'volume', host: 'st-3' })).to.equal('volume.st-3');
    expect(routeName({ kind: 'fanout', topic: 'volume' })).to.equal('volume_fanout');
  });

  it('transports without a shared broker do not hear each other', async () => {
    const a = await open(new MemoryTransport());
    const b = await open(new MemoryTransport());
    const heard: unknown[] = [];
    await a.consume({ kind: 'topic', topic: 'volume' }, (d) => void heard.push(d.message), { prefetch: 1 });
    await b.publish({ kind: 'topic', topic: 'volume' }, { from: 'b' });
    await turns();
    expect(heard).to.deep.equal([]);
    expect(b.broker.depth({ kind: 'topic', topic: 'volume' })).to.equal(1);
  });

  it('alternates strictly between consumers with free slots', async () => {
    const broker = new MemoryBroker();
    const [a, b] = [await open(new MemoryTransport({ broker })), await open(new MemoryTransport({ broker }))];
    const order: string[] = [];
    await a.consume({ kind: 'topic', topic: 't' }, () => void order.push('a'), { prefetch: 5 });
    await b.consume({ kind: 'topic', topic: 't' }, () => void order.push('b'), { prefetch: 5 });
    for (let n = 0; n < 6; n++) await a.publish({ kind: 'topic', topic: 't' }, { n });
    await turns();
    expect(order).to.deep.equal(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('never runs a handler inside publish()', async () => {
    const t = await open(new MemoryTransport());
    let ran = false;
    await t.consume(
      { kind: 'topic', topic: 't' },
      () => {
        ran = true;
      },
      { prefetch: 1 },
    );
    const publishing = t.publish({ kind: 'topic', topic: 't' }, {});
    expect(ran).to.equal(false);
    await publishing;
    await turns();
    expect(ran).to.equal(true);
  });

  it('reply() may be used once per delivery', async () => {
    const t = await open(new MemoryTransport());
    let second: unknown;
    await t.consume(
      { kind: 'topic', topic: 't' },
      async (d: Delivery) => {
        await d.reply?.({ first: true });
        second = await d.reply?.({ second: true }).catch((e: unknown) => e);
      },
      { prefetch: 1 },
    );
    expect(await t.request({ kind: 'topic', topic: 't' }, {}, { timeoutMs: 1000 })).to.deep.equal({
      first: true,
    });
    await turns();
    expect((second as { code?: string }).code).to.equal('INVALID_STATE');
  });

  it("close() after cancel() puts the cancelled consumer's unsettled messages back, marked redelivered", async () => {
    const broker = new MemoryBroker();
    const stuck = await open(new MemoryTransport({ broker }));
    const rescuer = await open(new MemoryTransport({ broker }));
    const route = { kind: 'topic', topic: 't' } as const;
    const first: Delivery[] = [];
    const consumer = await stuck.consume(
      route,
      (d) => {
        first.push(d);
        return new Promise<void>(() => {}); // a handler that never finishes
      },
      { prefetch: 2 },
    );
    await stuck.publish(route, { n: 1 });
    await stuck.publish(route, { n: 2 });
    await turns();
    expect(first.map((d) => d.message)).to.deep.equal([{ n: 1 }, { n: 2 }]);
    await consumer.cancel();
    const again: Delivery[] = [];
    await rescuer.consume(route, (d) => void again.push(d), { prefetch: 5 });
    await turns();
    expect(again, 'still held by the cancelled consumer').to.deep.equal([]);
    await stuck.close();
    await turns();
    expect(again.map((d) => [d.message, d.redelivered])).to.deep.equal([
      [{ n: 1 }, true],
      [{ n: 2 }, true],
    ]);
  });

  it('cancel() lets handlers in flight settle their messages: nothing comes back on close()', async () => {
    const broker = new MemoryBroker();
    const t = await open(new MemoryTransport({ broker }));
    const other = await open(new MemoryTransport({ broker }));
    const route = { kind: 'topic', topic: 't' } as const;
    let finish: () => void = () => {};
    const consumer = await t.consume(
      route,
      () =>
        new Promise<void>((resolve) => {
          finish = resolve;
        }),
      {
        prefetch: 1,
      },
    );
    await t.publish(route, { n: 1 });
    await turns();
    await consumer.cancel();
    finish();
    await turns();
    const heard: unknown[] = [];
    await other.consume(route, (d) => void heard.push(d.message), { prefetch: 5 });
    await t.close();
    await turns();
    expect(heard).to.deep.equal([]);
  });

  it('consume() refuses a prefetch below 1 and an empty route list', async () => {
    const t = await open(new MemoryTransport());
    for (const attempt of [
      t.consume({ kind: 'topic', topic: 't' }, () => {}, { prefetch: 0 }),
      t.consume({ kind: 'topic', topic: 't' }, () => {}, { prefetch: 1.5 }),
      t.consume([], () => {}, { prefetch: 1 }),
    ]) {
      const error = await attempt.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((error as { code?: string }).code).to.equal('INVALID_INPUT');
    }
  });

  describe('plugin manifests', () => {
    it('memoryTransportPlugin is a transport plugin whose transports each get a private broker', async () => {
      expect(isBrandedManifest(memoryTransportPlugin)).to.equal(true);
      expect(memoryTransportPlugin).to.include({
        name: '@stratus/core#memory',
        kind: 'transport',
        contract: '^1.0.0',
      });
      const a = await memoryTransportPlugin.create({}, env);
      const b = await memoryTransportPlugin.create({}, env);
      expect(a).to.be.instanceOf(Transport);
      expect(a.broker).not.to.equal(b.broker);
    });

    it('memoryTransportPluginFor(broker) connects every transport it creates to that broker', async () => {
      const broker = new MemoryBroker();
      const manifest = memoryTransportPluginFor(broker);
      expect(manifest.kind).to.equal('transport');
      const server = await open(await manifest.create({}, env));
      const client = await open(await manifest.create({}, env));
      await server.consume({ kind: 'topic', topic: 't' }, (d) => d.reply?.({ pong: true }), { prefetch: 1 });
      expect(await client.request({ kind: 'topic', topic: 't' }, {}, { timeoutMs: 1000 })).to.deep.equal({
        pong: true,
      });
    });
  });
});

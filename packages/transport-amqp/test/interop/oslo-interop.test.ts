import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  defineEndpoints,
  endpoint,
  isRemoteError,
  NotFoundError,
  type RemoteError,
  RequestContext,
  RpcClient,
  RpcServer,
} from '@stratus/core';
import type { ChannelModel } from 'amqplib';
import { expect } from 'chai';
import Type from 'typebox';
import { AmqpTransport } from '../../src/index.js';
import {
  AMQP_URL,
  adminConnection,
  brokerProblem,
  cleanup,
  rabbitmqctl,
  skipUnless,
  uniqueName,
  waitFor,
} from '../helpers.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
/** Debian's oslo.messaging belongs to the system interpreter, not whichever python3 is first on PATH. */
const PYTHON = process.env.STRATUS_TEST_PYTHON ?? '/usr/bin/python3';
/** oslo.messaging's URL for the same broker: scheme `rabbit://`. */
const OSLO_URL = AMQP_URL.replace(/^amqp:/, 'rabbit:');

async function osloProblem(): Promise<string | undefined> {
  try {
    await run(PYTHON, ['-c', 'import oslo_messaging, oslo_context'], { timeout: 30_000 });
    return undefined;
  } catch {
    return `python3-oslo.messaging is not installed for ${PYTHON} (apt-get install -y python3-oslo.messaging)`;
  }
}

describe('interop with Python oslo.messaging over RabbitMQ', function () {
  this.timeout(60_000);
  const controlExchange = uniqueName('stratus-interop');
  const transports: AmqpTransport[] = [];
  let admin: ChannelModel | undefined;
  let python: ChildProcessWithoutNullStreams | undefined;
  const extraQueues: string[] = [];

  before(async function () {
    skipUnless(this, (await brokerProblem()) ?? (await osloProblem()));
    admin = await adminConnection();
  });

  afterEach(async () => {
    if (python) {
      python.stdin.end();
      await new Promise((resolve) => {
        const timer = setTimeout(() => {
          python?.kill('SIGKILL');
          resolve(undefined);
        }, 10_000);
        python?.once('exit', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
      python = undefined;
    }
    for (const t of transports) await t.close();
  });

  after(async () => {
    if (admin) {
      await cleanup(admin, transports, [controlExchange], extraQueues);
      await admin.close();
    }
  });

  async function open(): Promise<AmqpTransport> {
    const transport = new AmqpTransport({ urls: [AMQP_URL], controlExchange });
    transports.push(transport);
    await transport.connect();
    return transport;
  }

  it('a Python oslo.messaging client calls, casts and fanout-casts to a Stratus RpcServer', async () => {
    const topic = `stratus_${uniqueName('svc').replaceAll('-', '_')}`;
    const remembered: unknown[] = [];
    const seenContexts: RequestContext[] = [];
    const server = new RpcServer(await open(), {
      topic,
      host: 'stratus-host',
      version: '1.2',
      endpoints: defineEndpoints({
        add: endpoint(Type.Object({ a: Type.Integer(), b: Type.Integer() }), (_ctx, { a, b }) => a + b),
        whoami: endpoint(Type.Object({}), (ctx) => {
          seenContexts.push(ctx);
          return { userId: ctx.userId, projectId: ctx.projectId, roles: ctx.roles, requestId: ctx.requestId };
        }),
        nothing: endpoint(Type.Object({}), () => undefined),
        lookup: endpoint(Type.Object({ name: Type.String() }), (_ctx, { name }) => {
          throw new NotFoundError('Volume', name);
        }),
        remember: endpoint(Type.Object({ value: Type.String() }), (_ctx, { value }) => {
          remembered.push(value);
        }),
      }),
    });
    await server.start();
    extraQueues.push(topic, `${topic}.stratus-host`);

    const { stdout } = await run(
      PYTHON,
      [join(here, 'oslo_client.py'), OSLO_URL, controlExchange, topic, 'stratus-host'],
      { timeout: 45_000 },
    );
    const out = JSON.parse(stdout.trim().split('\n').pop() as string) as Record<string, unknown>;
    if (typeof out.reply_q === 'string') extraQueues.push(out.reply_q);
    expect(out.add).to.equal(42);
    expect(out.whoami).to.deep.equal({
      userId: 'py-user',
      projectId: 'py-project',
      roles: ['member'],
      requestId: 'req-00000000-1111-2222-3333-444444444444',
    });
    expect(seenContexts[0]?.isAdmin).to.equal(false);
    expect(out.nothing).to.equal(null);
    expect(out.lookup).to.deep.include({ exc_type: 'NotFound' });
    expect((out.lookup as { value: string }).value).to.contain('Volume missing could not be found');
    expect(out.invalid).to.deep.include({ exc_type: 'InvalidInput' });
    expect(out.version).to.deep.include({ exc_type: 'UnsupportedVersion' });
    await waitFor('the cast and the fanout cast', () => remembered.length >= 2);
    expect([...remembered].sort()).to.deep.equal(['from-python-cast', 'from-python-fanout']);
    await server.stop();
  });

  it('a Stratus RpcClient calls, casts and fanout-casts to a Python oslo.messaging server', async () => {
    const topic = `oslo_${uniqueName('svc').replaceAll('-', '_')}`;
    extraQueues.push(topic, `${topic}.pyhost`);
    python = spawn(PYTHON, [join(here, 'oslo_server.py'), OSLO_URL, controlExchange, topic, 'pyhost']);
    let stderr = '';
    python.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let ready = false;
    python.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('READY')) ready = true;
    });
    await waitFor(`the Python server to start (stderr: ${stderr})`, () => ready, 30_000);

    const client = new RpcClient(await open(), { topic, defaultTimeoutMs: 10_000 });
    const ctx = new RequestContext({ userId: 'ts-user', projectId: 'ts-project', roles: ['admin'] });

    const echoed = (await client.call(ctx, {}, 'echo', { x: 1, nested: { list: [1, 'two'] } })) as Record<
      string,
      unknown
    >;
    expect(echoed).to.deep.equal({
      args: { x: 1, nested: { list: [1, 'two'] } },
      user: 'ts-user',
      project: 'ts-project',
      request_id: ctx.requestId,
      roles: ['admin'],
      is_admin: true,
    });
    const direct = (await client.call(ctx, { host: 'pyhost' }, 'echo', { via: 'direct' })) as {
      args: unknown;
    };
    expect(direct.args).to.deep.equal({ via: 'direct' });
    expect(await client.call(ctx, {}, 'nothing', {})).to.equal(null);

    const failure = await client.call(ctx, {}, 'fail', { reason: 'because' }).catch((e: unknown) => e);
    expect(isRemoteError(failure), String(failure)).to.equal(true);
    expect((failure as RemoteError).type).to.equal('ValueError');
    expect((failure as RemoteError).message).to.contain('oslo refuses: because');
    expect((failure as RemoteError).details.module).to.equal('builtins');

    const missing = await client.call(ctx, {}, 'no_such_method', {}).catch((e: unknown) => e);
    expect((missing as RemoteError).type).to.equal('NoSuchMethod');
    expect((missing as RemoteError).code).to.equal('NOT_SUPPORTED');

    const tooNew = await client.call(ctx, {}, 'echo', {}, { version: '1.9' }).catch((e: unknown) => e);
    expect((tooNew as RemoteError).type).to.equal('UnsupportedVersion');
    expect((tooNew as RemoteError).code).to.equal('UNSUPPORTED_VERSION');

    await client.cast(ctx, {}, 'record', { value: 'from-stratus-cast' });
    await client.fanoutCast(ctx, topic, 'record_fanout', { value: 'from-stratus-fanout' });
    let seen: { casts: string[]; fanouts: string[] } = { casts: [], fanouts: [] };
    const until = Date.now() + 10_000;
    while (seen.casts.length === 0 || seen.fanouts.length === 0) {
      if (Date.now() > until) throw new Error(`casts never arrived: ${JSON.stringify(seen)}`);
      seen = (await client.call(ctx, {}, 'seen', {})) as typeof seen;
    }
    expect(seen).to.deep.equal({ casts: ['from-stratus-cast'], fanouts: ['from-stratus-fanout'] });
    // oslo's fanout queue outlives its server for rabbit_transient_queues_ttl: find it to delete it.
    const listed = await rabbitmqctl('-q', 'list_queues', 'name').catch(() => '');
    extraQueues.push(...listed.split('\n').filter((name) => name.startsWith(`${topic}_fanout_`)));
  });
});

import { expect } from 'chai';
import sinon from 'sinon';
import Type from 'typebox';
import { RequestContext } from '../../src/context.js';
import type { Transport } from '../../src/contracts/transport.js';
import { NotFoundError, StratusError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import {
  defineEndpoints,
  endpoint,
  isRemoteError,
  MemoryBroker,
  MemoryTransport,
  RemoteError,
  RpcClient,
  RpcServer,
} from '../../src/rpc/index.js';

interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}
function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Let the in-memory bus run: deliveries and replies hop through microtasks and macrotasks. */
async function until(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}
async function turns(n = 50): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but it resolved');
}

function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

/** Per-host state the endpoints record into. */
class HostState {
  readonly casts: unknown[] = [];
  readonly gates = new Map<number, Gate>();
  active = 0;
  maxActive = 0;
  runs = 0;
  gateFor(n: number): Gate {
    let g = this.gates.get(n);
    if (!g) {
      g = gate();
      this.gates.set(n, g);
    }
    return g;
  }
}

function volumeEndpoints(host: string, state: HostState) {
  return defineEndpoints({
    echo: endpoint(Type.Object({ value: Type.Unknown() }), (ctx, args, call) => {
      state.runs++;
      call.logger.info('echo handler ran');
      return { value: args.value, host, context: ctx.toJSON(), isContext: ctx instanceof RequestContext };
    }),
    record: endpoint(Type.Object({ n: Type.Number() }), (_ctx, args) => {
      state.runs++;
      state.casts.push(args.n);
    }),
    create_volume: endpoint(
      Type.Object(
        { name: Type.String(), size: Type.Integer({ minimum: 1 }) },
        { additionalProperties: false },
      ),
      (_ctx, args) => {
        state.runs++;
        return { id: `vol-${args.name}`, size: args.size };
      },
      { version: '1.0' },
    ),
    extend_volume: endpoint(Type.Object({}), () => 'extended', { version: '1.3' }),
    fail_not_found: endpoint(Type.Object({ id: Type.String() }), (_ctx, args) => {
      throw new NotFoundError('Volume', args.id);
    }),
    fail_type: endpoint(Type.Object({}), () => {
      throw new TypeError('cannot read properties of undefined');
    }),
    unsendable: endpoint(Type.Object({}), () => ({ big: 10n })),
    loose: endpoint(Type.Object({}, { additionalProperties: true }), (_ctx, args) => {
      const own = Object.getOwnPropertyNames(args).sort();
      return { own, protoIsObject: Object.getPrototypeOf(args) === Object.prototype };
    }),
    hold: endpoint(Type.Object({ n: Type.Number() }), async (_ctx, args) => {
      state.runs++;
      state.active++;
      state.maxActive = Math.max(state.maxActive, state.active);
      try {
        await state.gateFor(args.n).promise;
        return { n: args.n, host };
      } finally {
        state.active--;
      }
    }),
  });
}

describe('rpc: RpcClient and RpcServer over MemoryTransport', () => {
  const ctx = new RequestContext({ requestId: 'req-1', userId: 'u1', projectId: 'p1', roles: ['member'] });
  let broker: MemoryBroker;
  let transports: Transport[];
  let servers: RpcServer[];
  let clock: sinon.SinonFakeTimers | undefined;

  async function connect(): Promise<MemoryTransport> {
    const transport = new MemoryTransport({ broker });
    await transport.connect();
    transports.push(transport);
    return transport;
  }

  async function host(
    name: string,
    options: { version?: string; maxConcurrency?: number; logger?: Logger; topic?: string } = {},
  ): Promise<{ server: RpcServer; state: HostState; transport: MemoryTransport }> {
    const state = new HostState();
    const transport = await connect();
    const server = new RpcServer(transport, {
      topic: options.topic ?? 'volume',
      host: name,
      endpoints: volumeEndpoints(name, state),
      version: options.version ?? '1.3',
      ...(options.maxConcurrency === undefined ? {} : { maxConcurrency: options.maxConcurrency }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    await server.start();
    servers.push(server);
    return { server, state, transport };
  }

  async function client(options: ConstructorParameters<typeof RpcClient>[1] = {}): Promise<RpcClient> {
    return new RpcClient(await connect(), { topic: 'volume', ...options });
  }

  beforeEach(() => {
    broker = new MemoryBroker();
    transports = [];
    servers = [];
    clock = undefined;
  });

  afterEach(async () => {
    clock?.restore();
    for (const server of servers) await server.stop({ timeoutMs: 1 });
    for (const transport of transports) await transport.close();
  });

  describe('routing', () => {
    it('call returns the handler result, with the caller context rebuilt on the server', async () => {
      await host('st-1');
      const rpc = await client();
      const result = (await rpc.call(ctx, {}, 'echo', { value: 42 })) as Record<string, unknown>;
      expect(result.value).to.equal(42);
      expect(result.isContext).to.equal(true);
      expect(result.context).to.deep.equal(ctx.toJSON());
    });

    it('two hosts of one topic share its casts round-robin', async () => {
      const a = await host('st-1');
      const b = await host('st-2');
      const rpc = await client();
      for (let n = 0; n < 10; n++) await rpc.cast(ctx, {}, 'record', { n });
      await until('10 casts served', () => a.state.casts.length + b.state.casts.length === 10);
      expect(a.state.casts.length).to.be.greaterThan(0);
      expect(b.state.casts.length).to.be.greaterThan(0);
      expect([...a.state.casts, ...b.state.casts].sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    it('topic.host reaches only that host', async () => {
      const a = await host('st-1');
      const b = await host('st-2');
      const rpc = await client();
      const answers = [];
      for (let n = 0; n < 6; n++) {
        answers.push(
          ((await rpc.call(ctx, { host: 'st-2' }, 'echo', { value: n })) as { host: string }).host,
        );
      }
      await rpc.cast(ctx, { topic: 'volume', host: 'st-2' }, 'record', { n: 7 });
      await until('the direct cast', () => b.state.casts.length === 1);
      expect(answers).to.deep.equal(['st-2', 'st-2', 'st-2', 'st-2', 'st-2', 'st-2']);
      expect(a.state.runs).to.equal(0);
    });

    it('fanoutCast reaches every host of the topic', async () => {
      const a = await host('st-1');
      const b = await host('st-2');
      const other = await host('c-1', { topic: 'compute' });
      const rpc = await client();
      await rpc.fanoutCast(ctx, undefined, 'record', { n: 1 });
      await until('both hosts', () => a.state.casts.length === 1 && b.state.casts.length === 1);
      await turns();
      expect(other.state.casts).to.deep.equal([]);
    });

    it('a handler may call another service (nested call)', async () => {
      await host('st-1');
      const computeTransport = await connect();
      const nested = new RpcClient(computeTransport, { topic: 'volume' });
      const server = new RpcServer(computeTransport, {
        topic: 'compute',
        host: 'c-1',
        version: '1.0',
        endpoints: defineEndpoints({
          attach: endpoint(Type.Object({}), async (c) =>
            nested.call(c, { host: 'st-1' }, 'echo', { value: 'nested' }),
          ),
        }),
      });
      await server.start();
      servers.push(server);
      const rpc = await client();
      const result = (await rpc.call(ctx, { topic: 'compute' }, 'attach', {})) as { value: string };
      expect(result.value).to.equal('nested');
    });
  });

  describe('timeouts', () => {
    it('a call without a reply fails with a TimeoutError naming target and method; the late reply goes nowhere', async () => {
      const a = await host('st-1');
      const rpc = await client();
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      const first = rpc.call(ctx, { host: 'st-1' }, 'hold', { n: 1 }, { timeout: 50 });
      const firstError = rejection(first);
      await until('the first call to run', () => a.state.active === 1);
      await clock.tickAsync(50);
      const error = (await firstError) as StratusError;
      expect(StratusError.is(error, 'TIMEOUT')).to.equal(true);
      expect(error.message).to.equal('No reply from volume.st-1 to hold within 50 ms');

      let second: unknown;
      void rpc.call(ctx, { host: 'st-1' }, 'hold', { n: 2 }, { timeout: 1000 }).then((value) => {
        second = value;
      });
      await until('the second call to run', () => a.state.active === 2);
      a.state.gateFor(1).open();
      await until('the first handler to finish', () => a.state.active === 1);
      await turns();
      expect(second, 'the late reply of call 1 resolved call 2').to.equal(undefined);
      a.state.gateFor(2).open();
      await until('the second reply', () => second !== undefined);
      expect(second).to.deep.equal({ n: 2, host: 'st-1' });
    });

    it('a message whose deadline passed is dropped unanswered, with a log line', async () => {
      const { logger, lines } = captureLogger();
      const a = await host('st-1', { logger });
      const raw = await connect();
      await raw.publish(
        { kind: 'topic', topic: 'volume' },
        {
          id: 'm1',
          method: 'record',
          args: { n: 1 },
          context: ctx.toJSON(),
          version: '1.0',
          deadline: Date.now() - 1000,
        },
      );
      await until('the drop log line', () => lines.some((l) => String(l.msg).includes('deadline passed')));
      expect(a.state.runs).to.equal(0);
      const line = lines.find((l) => String(l.msg).includes('deadline passed'));
      expect(line).to.include({ requestId: 'req-1', method: 'record', messageId: 'm1' });
    });
  });

  describe('errors', () => {
    it('a remote StratusError comes back as RemoteError with its type, code, status and details', async () => {
      await host('st-1');
      const rpc = await client();
      const error = (await rejection(rpc.call(ctx, {}, 'fail_not_found', { id: 'v-9' }))) as RemoteError;
      expect(isRemoteError(error)).to.equal(true);
      expect(error).to.be.instanceOf(RemoteError);
      expect(error.type).to.equal('NotFound');
      expect(error.remoteCode).to.equal('NOT_FOUND');
      expect(StratusError.is(error, 'NOT_FOUND')).to.equal(true);
      expect(error.expected).to.equal(true);
      expect(error.httpStatus).to.equal(404);
      expect(error.retryable).to.equal(false);
      expect(error.message).to.equal('Volume v-9 could not be found');
      expect(error.details).to.include({ kind: 'Volume', id: 'v-9', method: 'fail_not_found' });
    });

    it('a plain Error travels as its name with code INTERNAL', async () => {
      await host('st-1');
      const rpc = await client();
      const error = (await rejection(rpc.call(ctx, {}, 'fail_type', {}))) as RemoteError;
      expect(error.type).to.equal('TypeError');
      expect(error.code).to.equal('INTERNAL');
      expect(error.message).to.equal('cannot read properties of undefined');
    });

    it('an unknown remote code becomes REMOTE_ERROR and keeps remoteCode', () => {
      const error = new RemoteError({
        type: 'Weird',
        code: 'WEIRD',
        message: 'odd',
        data: {},
        retryable: true,
      });
      expect(error.code).to.equal('REMOTE_ERROR');
      expect(error.remoteCode).to.equal('WEIRD');
      expect(error.retryable).to.equal(true);
    });

    it('a RemoteError re-thrown by a handler forwards the original type and code', async () => {
      await host('st-1');
      const inner = await client();
      const server = new RpcServer(await connect(), {
        topic: 'compute',
        host: 'c-1',
        version: '1.0',
        endpoints: defineEndpoints({
          relay: endpoint(Type.Object({}), (c) => inner.call(c, {}, 'fail_not_found', { id: 'v-1' })),
        }),
      });
      await server.start();
      servers.push(server);
      const rpc = await client();
      const error = (await rejection(rpc.call(ctx, { topic: 'compute' }, 'relay', {}))) as RemoteError;
      expect([error.type, error.code]).to.deep.equal(['NotFound', 'NOT_FOUND']);
    });

    it('expected errors are logged at info without a stack; unexpected ones at error with it', async () => {
      const { logger, lines } = captureLogger();
      await host('st-1', { logger });
      const rpc = await client();
      await rejection(rpc.call(ctx, {}, 'fail_not_found', { id: 'v-1' }));
      await rejection(rpc.call(ctx, {}, 'fail_type', {}));
      const quiet = lines.find((l) => l.method === 'fail_not_found' && l.error !== undefined);
      const loud = lines.find((l) => l.method === 'fail_type' && l.err !== undefined);
      expect(quiet?.level).to.equal(30);
      expect(quiet?.requestId).to.equal('req-1');
      expect(quiet?.error).to.deep.equal({ type: 'NotFound', code: 'NOT_FOUND' });
      expect(JSON.stringify(quiet)).not.to.include('stack');
      expect(loud?.level).to.equal(50);
      expect((loud?.err as { stack?: string } | undefined)?.stack).to.include('TypeError');
    });

    it('handlers log through a child logger carrying requestId and method', async () => {
      const { logger, lines } = captureLogger();
      await host('st-1', { logger });
      const rpc = await client();
      await rpc.call(ctx, {}, 'echo', { value: 1 });
      const line = lines.find((l) => l.msg === 'echo handler ran');
      expect(line).to.include({ requestId: 'req-1', method: 'echo', host: 'st-1', topic: 'volume' });
    });

    it('a result that cannot be serialised is answered with an INTERNAL error', async () => {
      await host('st-1');
      const rpc = await client();
      const error = (await rejection(rpc.call(ctx, {}, 'unsendable', {}))) as RemoteError;
      expect(error.code).to.equal('INTERNAL');
      expect(error.message).to.include('could not be sent back');
    });
  });

  describe('versions', () => {
    it('the server (1.3) accepts the same major with a lower or equal minor', async () => {
      await host('st-1', { version: '1.3' });
      const rpc = await client();
      expect(await rpc.call(ctx, {}, 'extend_volume', {}, { version: '1.3' })).to.equal('extended');
      expect(await rpc.call(ctx, {}, 'extend_volume', {}, { version: '1.0' })).to.equal('extended');
    });

    it('a higher minor or another major is refused with UnsupportedVersion naming both versions', async () => {
      const a = await host('st-1', { version: '1.3' });
      const rpc = await client();
      const newer = (await rejection(
        rpc.call(ctx, {}, 'echo', { value: 1 }, { version: '1.4' }),
      )) as RemoteError;
      expect(newer.type).to.equal('UnsupportedVersion');
      expect(newer.code).to.equal('UNSUPPORTED_VERSION');
      expect(newer.message).to.include('1.4').and.include('1.3');
      const otherMajor = (await rejection(
        rpc.call(ctx, {}, 'echo', { value: 1 }, { version: '2.0' }),
      )) as RemoteError;
      expect(otherMajor.code).to.equal('UNSUPPORTED_VERSION');
      expect(otherMajor.message).to.include('2.0').and.include('1.3');
      expect(a.state.runs).to.equal(0);
    });

    it('a capped client refuses higher versions locally, before sending', async () => {
      const a = await host('st-1', { version: '1.3' });
      const rpc = await client({ versionCap: '1.2' });
      expect(rpc.canSendVersion('1.2')).to.equal(true);
      expect(rpc.canSendVersion('1.0')).to.equal(true);
      expect(rpc.canSendVersion('1.3')).to.equal(false);
      expect(rpc.canSendVersion('2.0')).to.equal(false);
      const error = await rejection(rpc.call(ctx, {}, 'echo', { value: 1 }, { version: '1.3' }));
      expect(StratusError.is(error, 'UNSUPPORTED_VERSION')).to.equal(true);
      expect(isRemoteError(error)).to.equal(false);
      expect((error as Error).message).to.include('capped at 1.2');
      await rejection(rpc.cast(ctx, {}, 'record', { n: 1 }, { version: '1.3' }));
      await turns();
      expect(a.state.runs).to.equal(0);
      expect(new RpcClient(a.transport).canSendVersion('9.9')).to.equal(true);
    });

    it('a server refuses endpoints introduced after its own version', () => {
      expect(
        () =>
          new RpcServer(new MemoryTransport(), {
            topic: 'volume',
            host: 'h',
            version: '1.2',
            endpoints: volumeEndpoints('h', new HostState()),
          }),
      ).to.throw(/extend_volume\/version/);
    });
  });

  describe('bad input', () => {
    it('garbage envelopes are answered with INVALID_INPUT (when a reply is possible) and the server keeps serving', async () => {
      const { logger, lines } = captureLogger();
      await host('st-1', { logger });
      const raw = await connect();
      const reply = await raw.request(
        { kind: 'topic', topic: 'volume' },
        { id: 'g1', hello: 'world' },
        { timeoutMs: 1000 },
      );
      expect(reply.id).to.equal('g1');
      const error = reply.error as { code: string; type: string; data: { fields: { path: string }[] } };
      expect(error.code).to.equal('INVALID_INPUT');
      expect(error.type).to.equal('InvalidInput');
      expect(error.data.fields.map((f) => f.path)).to.include.members([
        '/method',
        '/args',
        '/context',
        '/version',
      ]);
      await raw.publish({ kind: 'topic', topic: 'volume' }, { nonsense: [1, 2, 3] });
      await raw.publish({ kind: 'fanout', topic: 'volume' }, { method: 42 });
      const badName = await raw.request(
        { kind: 'topic', topic: 'volume' },
        { id: 'g2', method: 'drop table', args: {}, context: ctx.toJSON(), version: '1.0' },
        { timeoutMs: 1000 },
      );
      expect((badName.error as { code: string }).code).to.equal('INVALID_INPUT');
      await until(
        'four rejections logged',
        () => lines.filter((l) => l.msg === 'rejected malformed rpc envelope').length === 4,
      );
      const rpc = await client();
      expect(
        ((await rpc.call(ctx, {}, 'echo', { value: 'still here' })) as { value: string }).value,
      ).to.equal('still here');
    });

    it('an unknown method is answered with UnknownMethod, also for names found on Object.prototype', async () => {
      await host('st-1');
      const rpc = await client();
      for (const method of ['no_such_method', 'toString', '__proto__', 'constructor', 'hasOwnProperty']) {
        const error = (await rejection(rpc.call(ctx, {}, method, {}))) as RemoteError;
        expect([method, error.type, error.code]).to.deep.equal([method, 'UnknownMethod', 'NOT_SUPPORTED']);
        expect(error.message).to.include(`"${method}"`);
      }
      expect(((await rpc.call(ctx, {}, 'echo', { value: 1 })) as { value: number }).value).to.equal(1);
    });

    it('a namespace the server does not serve is an unknown method', async () => {
      await host('st-1');
      const rpc = await client({ namespace: 'baseapi' });
      const error = (await rejection(rpc.call(ctx, {}, 'echo', { value: 1 }))) as RemoteError;
      expect(error.type).to.equal('UnknownMethod');
      expect(error.message).to.include('baseapi');
    });

    it('invalid args are refused with INVALID_INPUT naming each field, before the handler runs', async () => {
      const a = await host('st-1');
      const rpc = await client();
      const error = (await rejection(
        rpc.call(ctx, {}, 'create_volume', { size: 'big', colour: 'red' }),
      )) as RemoteError;
      expect(error.code).to.equal('INVALID_INPUT');
      const paths = (error.details.fields as { path: string }[]).map((f) => f.path).sort();
      expect(paths).to.deep.equal(['/colour', '/name', '/size']);
      expect(error.message).to.include('/size').and.include('/name');
      expect(a.state.runs).to.equal(0);
      expect(await rpc.call(ctx, {}, 'create_volume', { name: 'v', size: 1 })).to.deep.equal({
        id: 'vol-v',
        size: 1,
      });
    });

    it('args with __proto__ or constructor keys pollute nothing', async () => {
      await host('st-1');
      const raw = await connect();
      const envelope = (args: string) =>
        JSON.parse(
          `{"id":"p1","method":"loose","args":${args},"context":${JSON.stringify(ctx.toJSON())},"version":"1.0"}`,
        ) as Record<string, unknown>;
      const proto = await raw.request(
        { kind: 'topic', topic: 'volume' },
        envelope('{"__proto__":{"polluted":true},"nested":{"__proto__":{"polluted":true}}}'),
        { timeoutMs: 1000 },
      );
      const error = proto.error as { code: string; data: { fields: { path: string }[] } };
      expect(error.code).to.equal('INVALID_INPUT');
      expect(error.data.fields.map((f) => f.path)).to.deep.equal(['/__proto__', '/nested/__proto__']);
      const ctor = await raw.request(
        { kind: 'topic', topic: 'volume' },
        envelope('{"constructor":{"prototype":{"polluted":true}}}'),
        { timeoutMs: 1000 },
      );
      expect(ctor.result).to.deep.equal({ own: ['constructor'], protoIsObject: true });
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      expect((Object.prototype as Record<string, unknown>).polluted).to.equal(undefined);
    });
  });

  describe('concurrency and shutdown', () => {
    it('maxConcurrency bounds the handlers running at once; the rest wait in the queue', async () => {
      const a = await host('st-1', { maxConcurrency: 2 });
      const rpc = await client();
      for (let n = 0; n < 6; n++) await rpc.cast(ctx, n % 2 ? { host: 'st-1' } : {}, 'hold', { n });
      await until('two running', () => a.state.active === 2);
      await turns();
      expect(a.server.inFlight).to.equal(2);
      expect(a.state.runs).to.equal(2);
      for (let n = 0; n < 6; n++) {
        a.state.gateFor(n).open();
        await turns(5);
      }
      await until('all six served', () => a.state.runs === 6 && a.state.active === 0);
      expect(a.state.maxActive).to.equal(2);
    });

    it('stop() lets a slow handler finish and deliver its reply, then reports drained', async () => {
      const a = await host('st-1');
      const rpc = await client();
      const pending = rpc.call(ctx, {}, 'hold', { n: 1 }, { timeout: 5000 });
      await until('the call to run', () => a.state.active === 1);
      let stopped: unknown;
      const stopping = a.server.stop({ timeoutMs: 5000 }).then((r) => {
        stopped = r;
      });
      await turns();
      expect(stopped).to.equal(undefined);
      await rpc.cast(ctx, {}, 'record', { n: 99 });
      a.state.gateFor(1).open();
      expect(await pending).to.deep.equal({ n: 1, host: 'st-1' });
      await stopping;
      expect(stopped).to.deep.equal({ drained: true, pending: 0 });
      await turns();
      expect(a.state.casts, 'a cast after stop was served').to.deep.equal([]);
      expect(broker.depth({ kind: 'topic', topic: 'volume' })).to.equal(1);
    });

    it('stop() gives up after its timeout and reports the handlers still running', async () => {
      const a = await host('st-1');
      const rpc = await client();
      void rpc.cast(ctx, {}, 'hold', { n: 1 });
      await until('the cast to run', () => a.state.active === 1);
      clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      let result: unknown;
      const stopping = a.server.stop({ timeoutMs: 100 }).then((r) => {
        result = r;
      });
      await clock.tickAsync(99);
      expect(result).to.equal(undefined);
      await clock.tickAsync(1);
      await stopping;
      expect(result).to.deep.equal({ drained: false, pending: 1 });
      a.state.gateFor(1).open();
    });

    it('start() twice is refused; stop() before start() is a drained no-op', async () => {
      const transport = await connect();
      const server = new RpcServer(transport, {
        topic: 'volume',
        host: 'h',
        version: '1.3',
        endpoints: volumeEndpoints('h', new HostState()),
      });
      expect(await server.stop()).to.deep.equal({ drained: true, pending: 0 });
      await server.start();
      servers.push(server);
      const error = await rejection(server.start());
      expect(StratusError.is(error, 'INVALID_STATE')).to.equal(true);
    });
  });

  describe('client input', () => {
    it('refuses targets without a topic, bad versions and non-object args', async () => {
      const rpc = new RpcClient(await connect());
      expect(StratusError.is(await rejection(rpc.call(ctx, {}, 'echo', {})), 'INVALID_INPUT')).to.equal(true);
      expect(
        StratusError.is(await rejection(rpc.fanoutCast(ctx, undefined, 'echo', {})), 'INVALID_INPUT'),
      ).to.equal(true);
      const v = await rejection(rpc.call(ctx, { topic: 'volume' }, 'echo', {}, { version: 'one' }));
      expect(StratusError.is(v, 'INVALID_INPUT')).to.equal(true);
      const a = await rejection(
        rpc.cast(ctx, { topic: 'volume' }, 'echo', [1] as unknown as Record<string, unknown>),
      );
      expect(StratusError.is(a, 'INVALID_INPUT')).to.equal(true);
      expect(() => new RpcClient(transports[0] as Transport, { versionCap: '1' })).to.throw(/versionCap/);
    });
  });
});

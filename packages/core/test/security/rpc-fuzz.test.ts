import { expect } from 'chai';
import fc from 'fast-check';
import Type from 'typebox';
import Value from 'typebox/value';
import { RequestContext } from '../../src/context.js';
import { StratusError } from '../../src/errors.js';
import { createLogger } from '../../src/log/logger.js';
import {
  defineEndpoints,
  endpoint,
  MemoryBroker,
  MemoryTransport,
  RpcClient,
  RpcReply,
  RpcServer,
} from '../../src/rpc/index.js';
import { validatorOf } from '../../src/schema.js';

/** Codes a server may answer garbage with: each one a typed, expected error. */
const TYPED_CODES = new Set(['INVALID_INPUT', 'UNSUPPORTED_VERSION', 'NOT_SUPPORTED', 'UNAUTHENTICATED']);

const CreateArgs = Type.Object(
  {
    size: Type.Integer({ minimum: 1, maximum: 1000 }),
    name: Type.Optional(Type.String({ maxLength: 255 })),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: 255 }), { maxProperties: 50 }),
    ),
  },
  { additionalProperties: false },
);
const DeleteArgs = Type.Object({ volume_id: Type.String({ pattern: '^[0-9a-f-]{1,64}$' }) });

const FUZZ_RUNS = Number(process.env.STRATUS_FUZZ_RUNS ?? 300);

function validEnvelope(): Record<string, unknown> {
  return {
    id: 'f'.repeat(32),
    method: 'create_volume',
    args: { size: 1, name: 'v' },
    context: RequestContext.admin().toJSON(),
    version: '1.0',
  };
}

/** Arbitrary JSON objects, including the keys that pollute prototypes. */
const key = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
  },
);
const jsonish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 5 }),
    tie('object'),
  ),
  object: fc.dictionary(key, tie('value'), { maxKeys: 6 }),
})) as { value: fc.Arbitrary<unknown>; object: fc.Arbitrary<Record<string, unknown>> };

/** Rebuilt through JSON text, so `__proto__` is an own key as it is after a real wire trip. */
const wire = (value: unknown): Record<string, unknown> =>
  JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

const ENVELOPE_FIELDS = ['id', 'method', 'args', 'context', 'version', 'namespace'] as const;

/** A valid envelope with one field replaced (or removed), some args garbled, or proto keys added. */
const mutatedEnvelope: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc
    .record({ field: fc.constantFrom(...ENVELOPE_FIELDS), value: fc.option(jsonish.value) })
    .map(({ field, value }) => {
      const e = validEnvelope();
      if (value === null) delete e[field];
      else e[field] = value;
      return e;
    }),
  fc.record({ method: fc.constantFrom('create_volume', 'delete_volume'), args: jsonish.object }).map((m) => ({
    ...validEnvelope(),
    ...m,
  })),
  fc.string({ maxLength: 40 }).map((method) => ({ ...validEnvelope(), method })),
  fc
    .record({ where: fc.constantFrom('top', 'args', 'context', 'metadata'), polluting: jsonish.object })
    .map(({ where, polluting }) => {
      const text = JSON.stringify(polluting);
      const e = validEnvelope();
      const payload = `{"__proto__":${text},"constructor":{"prototype":${text}}}`;
      const parsed = JSON.parse(payload) as Record<string, unknown>;
      if (where === 'top') return { ...e, ...parsed };
      if (where === 'args') return { ...e, args: { ...(e.args as object), ...parsed } };
      if (where === 'metadata') return { ...e, args: { size: 2, metadata: parsed } };
      return { ...e, context: { ...(e.context as object), ...parsed } };
    }),
  jsonish.object,
);

/** Text of a valid envelope with characters inserted, deleted or replaced: what a corrupt frame carries. */
const corruptedText = fc
  .array(
    fc.record({
      at: fc.nat(),
      op: fc.constantFrom('insert', 'delete', 'replace'),
      ch: fc.string({ minLength: 1, maxLength: 3 }),
    }),
    {
      minLength: 1,
      maxLength: 4,
    },
  )
  .map((edits) => {
    let text = JSON.stringify(validEnvelope());
    for (const { at, op, ch } of edits) {
      const i = at % (text.length + 1);
      if (op === 'insert') text = text.slice(0, i) + ch + text.slice(i);
      else if (op === 'delete') text = text.slice(0, i) + text.slice(i + 1);
      else text = text.slice(0, i) + ch + text.slice(i + ch.length);
    }
    return text;
  });

describe('security: fuzzing the RPC server', function () {
  this.timeout(120_000);

  let broker: MemoryBroker;
  let transports: MemoryTransport[];
  let server: RpcServer;
  let attacker: MemoryTransport;
  let logLines: Record<string, unknown>[];
  const handled: { method: string; args: unknown }[] = [];
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();

  async function transport(): Promise<MemoryTransport> {
    const t = new MemoryTransport({ broker });
    await t.connect();
    transports.push(t);
    return t;
  }

  before(async () => {
    broker = new MemoryBroker();
    transports = [];
    logLines = [];
    const logger = createLogger({
      level: 'trace',
      destination: {
        write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>),
      },
    });
    server = new RpcServer(await transport(), {
      topic: 'volume',
      host: 'st-1',
      version: '1.4',
      logger,
      endpoints: defineEndpoints({
        create_volume: endpoint(CreateArgs, (_ctx, args) => {
          handled.push({ method: 'create_volume', args });
          return { id: 'v-1', size: args.size };
        }),
        delete_volume: endpoint(DeleteArgs, (_ctx, args) => {
          handled.push({ method: 'delete_volume', args });
        }),
      }),
    });
    await server.start();
    attacker = await transport();
  });

  after(async () => {
    await server.stop();
    for (const t of transports) await t.close();
  });

  /** Send as a call; every message gets an answer (none here carries a passed deadline). */
  async function send(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    return attacker.request({ kind: 'topic', topic: 'volume' }, message, { timeoutMs: 5000 });
  }

  function expectTypedAnswer(message: Record<string, unknown>, reply: Record<string, unknown>): void {
    expect(validatorOf(RpcReply).Check(reply), JSON.stringify(reply)).to.equal(true);
    const error = reply.error as { code: string } | undefined;
    if (error) {
      expect(
        TYPED_CODES.has(error.code),
        `${error.code} for ${JSON.stringify(message).slice(0, 300)}`,
      ).to.equal(true);
    }
    if (typeof message.id === 'string') expect(reply.id).to.equal(message.id);
  }

  function expectHandlersSawOnlyValidArgs(): void {
    for (const { method, args } of handled) {
      const schema = method === 'create_volume' ? CreateArgs : DeleteArgs;
      expect(Value.Check(schema, args), `${method} ran with ${JSON.stringify(args)}`).to.equal(true);
    }
  }

  it('answers malformed envelopes, wrong types, unknown methods and proto keys with typed errors', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedEnvelope, async (raw) => {
        const message = wire(raw);
        // A passed deadline is dropped on purpose (nobody waits); covered by the rpc tests.
        fc.pre(!(typeof message.deadline === 'number'));
        expectTypedAnswer(message, await send(message));
      }),
      { numRuns: FUZZ_RUNS },
    );
    expectHandlersSawOnlyValidArgs();
  });

  it('answers corrupted frames that still parse, and the transport refuses the rest', async () => {
    let parsed = 0;
    await fc.assert(
      fc.asyncProperty(corruptedText, async (text) => {
        let message: unknown;
        try {
          message = JSON.parse(text);
        } catch {
          return; // Not JSON: the transport drops it (AMQP: unwrapEnvelope throws InvalidInput).
        }
        if (typeof message !== 'object' || message === null || Array.isArray(message)) {
          try {
            await attacker.publish({ kind: 'topic', topic: 'volume' }, message as never);
            expect.fail('the transport accepted a non-object');
          } catch (error) {
            expect(StratusError.is(error, 'INVALID_INPUT'), String(error)).to.equal(true);
          }
          return;
        }
        const object = message as Record<string, unknown>;
        if (typeof object.deadline === 'number') return;
        parsed++;
        expectTypedAnswer(object, await send(object));
      }),
      { numRuns: FUZZ_RUNS },
    );
    expect(parsed).to.be.greaterThan(0);
    expectHandlersSawOnlyValidArgs();
  });

  it('answers huge arguments with a typed error, and serves the next message', async () => {
    const big = 'x'.repeat(4 * 1024 * 1024);
    const cases: Record<string, unknown>[] = [
      { ...validEnvelope(), args: { size: 1, name: big } },
      {
        ...validEnvelope(),
        args: {
          size: 1,
          metadata: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, 'v'])),
        },
      },
      { ...validEnvelope(), args: { size: Array.from({ length: 200_000 }, (_, i) => i) } },
      { ...validEnvelope(), method: `m${'x'.repeat(100_000)}` },
      { ...validEnvelope(), id: big },
      { ...validEnvelope(), args: JSON.parse(`${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`) },
    ];
    for (const message of cases) {
      const reply = await send(message);
      expect(validatorOf(RpcReply).Check(reply)).to.equal(true);
      expect((reply.error as { code: string }).code).to.equal('INVALID_INPUT');
    }
  });

  it('sends casts of garbage nowhere: no handler runs on invalid args', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedEnvelope, async (raw) => {
        await attacker.publish({ kind: 'fanout', topic: 'volume' }, wire(raw));
      }),
      { numRuns: 100 },
    );
    for (let i = 0; i < 200 && server.inFlight > 0; i++)
      await new Promise((resolve) => setImmediate(resolve));
    expectHandlersSawOnlyValidArgs();
  });

  it('survives it all: no prototype pollution, no error logs, and still serves real calls', async () => {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).to.deep.equal(protoBefore);
    expect(({} as Record<string, unknown>).size).to.equal(undefined);
    const client = new RpcClient(await transport(), { topic: 'volume', defaultVersion: '1.4' });
    const result = await client.call(RequestContext.admin(), {}, 'create_volume', { size: 3 });
    expect(result).to.deep.equal({ id: 'v-1', size: 3 });
    const errors = logLines.filter((l) => (l.level as number) >= 50);
    expect(errors.map((l) => l.msg)).to.deep.equal([]);
    expect(logLines.some((l) => l.msg === 'rejected malformed rpc envelope')).to.equal(true);
  });
});

import { expect } from 'chai';
import fc from 'fast-check';
import sinon from 'sinon';
import Type from 'typebox';
import { RequestContext } from '../../src/context.js';
import { StratusError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log/logger.js';
import {
  defineEndpoints,
  endpoint,
  MemoryBroker,
  MemoryTransport,
  RpcClient,
  RpcServer,
} from '../../src/rpc/index.js';
import { canonicalJson, EnvelopeSigner, ReplayCache } from '../../src/rpc/signing.js';

const K1 = { id: 'k1', secret: 'k1-0123456789abcdef0123456789abcdef' };
const K2 = { id: 'k2', secret: 'k2-0123456789abcdef0123456789abcdef' };
const K3 = { id: 'k3', secret: 'k3-0123456789abcdef0123456789abcdef' };

/** What a transport does to a message: serialise and parse. */
const trip = <T>(value: T): Record<string, unknown> =>
  JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

function envelope(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'a'.repeat(32),
    method: 'delete_volume',
    args: { volume_id: 'vol-1', nested: { b: 1, a: [1, 'x', null] } },
    context: RequestContext.admin().toJSON(),
    version: '1.0',
    ...extra,
  };
}

function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'trace',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { logger, lines };
}

describe('security: RPC message signing', () => {
  afterEach(() => sinon.restore());

  describe('canonicalJson', () => {
    it('does not depend on key order, and is stable across a JSON round trip', () => {
      expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } })).to.equal(
        '{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}',
      );
      expect(canonicalJson({ 10: 'a', 9: 'b', x: undefined, f: () => 1, d: new Date(0) })).to.equal(
        '{"10":"a","9":"b","d":"1970-01-01T00:00:00.000Z"}',
      );
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          expect(canonicalJson(trip({ value }))).to.equal(canonicalJson({ value }));
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('EnvelopeSigner', () => {
    it('accepts what it signed, after a JSON round trip', () => {
      const signer = new EnvelopeSigner({ keys: [K1] });
      const signed = trip(signer.sign(envelope()));
      expect(signed).to.include({ keyId: 'k1' });
      expect(signed.signature).to.be.a('string');
      expect(signer.verify(signed)).to.deep.equal({ ok: true, keyId: 'k1' });
    });

    it('refuses any change to any member (property)', () => {
      const signer = new EnvelopeSigner({ keys: [K1] });
      fc.assert(
        fc.property(
          fc.constantFrom(
            'id',
            'method',
            'args',
            'context',
            'version',
            'deadline',
            'keyId',
            'signedAt',
            'namespace',
          ),
          fc.jsonValue(),
          (member, value) => {
            const signed = trip(signer.sign(envelope({ deadline: 1e13 })));
            fc.pre(JSON.stringify(signed[member]) !== JSON.stringify(value) && value !== null);
            const tampered = { ...signed, [member]: value };
            const result = signer.verify(trip(tampered));
            expect(result.ok, `changing ${member}`).to.equal(false);
          },
        ),
        { numRuns: 300 },
      );
    });

    it('refuses unsigned, malformed, unknown-key and forged messages with a reason', () => {
      const signer = new EnvelopeSigner({ keys: [K1] });
      const other = new EnvelopeSigner({ keys: [K2] });
      const signed = trip(signer.sign(envelope()));
      const reasons = [
        signer.verify(envelope()),
        signer.verify({ ...signed, signedAt: 'now' }),
        signer.verify(trip(other.sign(envelope()))),
        signer.verify({ ...trip(other.sign(envelope())), keyId: 'k1' }),
        signer.verify({ ...signed, signature: `${signed.signature}x` }),
      ].map((r) => (r.ok ? 'ok' : r.reason));
      expect(reasons).to.deep.equal([
        'unsigned',
        'malformed',
        'unknown-key',
        'bad-signature',
        'bad-signature',
      ]);
      expect(() => signer.check(envelope()))
        .to.throw(/not signed/)
        .that.satisfies((e: unknown) => StratusError.is(e, 'UNAUTHENTICATED'));
    });

    it('with requireSigned: false accepts unsigned messages but still verifies signed ones', () => {
      const lenient = new EnvelopeSigner({ keys: [K1], requireSigned: false });
      expect(lenient.verify(envelope())).to.deep.equal({ ok: true, keyId: null });
      const forged = { ...trip(lenient.sign(envelope())), method: 'other' };
      expect(lenient.verify(forged)).to.include({ ok: false, reason: 'bad-signature' });
    });

    it('refuses a message signed outside the window, on either side of the clock', () => {
      const clock = sinon.useFakeTimers({ now: Date.UTC(2025, 0, 1), toFake: ['Date'] });
      const signer = new EnvelopeSigner({ keys: [K1], maxSkewSec: 300 });
      const signed = trip(signer.sign(envelope()));
      clock.tick(299_000);
      expect(signer.verify(signed).ok).to.equal(true);
      clock.tick(2_000);
      expect(signer.verify(signed)).to.include({ ok: false, reason: 'expired' });
      const future = trip(signer.sign(envelope()));
      clock.setSystemTime(Date.now() - 301_000);
      expect(signer.verify(future)).to.include({ ok: false, reason: 'expired' });
    });

    it('refuses a second copy of a request with a replay cache', () => {
      const signer = new EnvelopeSigner({ keys: [K1] });
      const cache = signer.createReplayCache();
      const signed = trip(signer.sign(envelope()));
      expect(signer.verify(signed, { replay: cache }).ok).to.equal(true);
      expect(signer.verify(signed, { replay: cache })).to.include({ ok: false, reason: 'replayed' });
      // A forged copy never enters the cache, so it cannot block the real message.
      const fresh = trip(signer.sign(envelope({ id: 'b'.repeat(32) })));
      expect(signer.verify({ ...fresh, signature: 'AAAA' }, { replay: cache }).ok).to.equal(false);
      expect(signer.verify(fresh, { replay: cache }).ok).to.equal(true);
    });

    it('rotates keys: a new key is accepted first, then signs, then the old one is dropped', () => {
      const old = new EnvelopeSigner({ keys: [K1] });
      const step1 = new EnvelopeSigner({ keys: [K1], acceptKeys: [K2] });
      const step2 = new EnvelopeSigner({ keys: [K2], acceptKeys: [K1] });
      const step3 = new EnvelopeSigner({ keys: [K2] });
      const from = (s: EnvelopeSigner) => trip(s.sign(envelope()));
      expect(step1.verify(from(old)).ok).to.equal(true);
      expect(step1.verify(from(step2)).ok).to.equal(true);
      expect(step2.verify(from(step1)).ok).to.equal(true);
      expect(step3.verify(from(step2)).ok).to.equal(true);
      expect(step3.verify(from(old))).to.include({ ok: false, reason: 'unknown-key' });
      expect(old.verify(from(step3))).to.include({ ok: false, reason: 'unknown-key' });
    });

    it('rejects bad config naming the field, never quoting a secret', () => {
      const short = 'tooshort-secret';
      const attempts: unknown[] = [
        { keys: [] },
        { keys: [{ id: 'k1', secret: short }] },
        { keys: [K1], acceptKeys: [{ ...K2, id: 'k1' }] },
        { keys: [{ id: 'bad id!', secret: K1.secret }] },
      ];
      for (const config of attempts) {
        try {
          new EnvelopeSigner(config as never);
          expect.fail(`accepted ${JSON.stringify(config)}`);
        } catch (error) {
          expect(StratusError.is(error, 'CONFIG_INVALID'), String(error)).to.equal(true);
          const text = JSON.stringify((error as StratusError).toJSON()) + (error as Error).message;
          expect(text).not.to.include(short);
          expect(text).not.to.include(K1.secret);
        }
      }
    });
  });

  describe('ReplayCache', () => {
    it('stays bounded, and an evicted id still cannot be replayed', () => {
      const cache = new ReplayCache(60_000, 1000);
      const now = 1_000_000;
      for (let i = 0; i < 5000; i++) expect(cache.admit(`m${i}`, now + i, now + i)).to.equal(true);
      expect(cache.size).to.equal(1000);
      expect(cache.admit('m0', now, now + 5000)).to.equal(false);
      expect(cache.admit('m3999', now + 3999, now + 5000)).to.equal(false);
      expect(cache.admit('m4999', now + 4999, now + 5000)).to.equal(false);
      expect(cache.admit('new', now + 5000, now + 5000)).to.equal(true);
    });

    it('forgets ids once they leave the window', () => {
      const cache = new ReplayCache(1000, 1000);
      cache.admit('a', 0, 0);
      cache.admit('b', 500, 500);
      cache.admit('c', 1400, 1400);
      expect(cache.size).to.equal(2);
      expect(cache.admit('b', 500, 1400)).to.equal(false);
    });
  });

  describe('over a transport', () => {
    let broker: MemoryBroker;
    let transports: MemoryTransport[];
    let deleted: string[];
    let server: RpcServer;
    let lines: Record<string, unknown>[];

    async function transport(): Promise<MemoryTransport> {
      const t = new MemoryTransport({ broker });
      await t.connect();
      transports.push(t);
      return t;
    }

    beforeEach(async () => {
      broker = new MemoryBroker();
      transports = [];
      deleted = [];
      const capture = captureLogger();
      lines = capture.lines;
      server = new RpcServer(await transport(), {
        topic: 'volume',
        host: 'st-1',
        version: '1.0',
        signer: new EnvelopeSigner({ keys: [K1] }),
        logger: capture.logger,
        endpoints: defineEndpoints({
          delete_volume: endpoint(Type.Object({ volume_id: Type.String() }), (_ctx, args) => {
            deleted.push(args.volume_id);
            return { deleted: args.volume_id };
          }),
        }),
      });
      await server.start();
    });

    afterEach(async () => {
      await server.stop();
      for (const t of transports) await t.close();
    });

    const ctx = RequestContext.admin();

    async function rejectionOf(promise: Promise<unknown>): Promise<StratusError> {
      try {
        await promise;
      } catch (error) {
        expect(StratusError.is(error), String(error)).to.equal(true);
        return error as StratusError;
      }
      throw new Error('expected a rejection');
    }

    it('serves a signed caller', async () => {
      const client = new RpcClient(await transport(), {
        topic: 'volume',
        signer: new EnvelopeSigner({ keys: [K1] }),
      });
      expect(await client.call(ctx, {}, 'delete_volume', { volume_id: 'v1' })).to.deep.equal({
        deleted: 'v1',
      });
      expect(deleted).to.deep.equal(['v1']);
    });

    it('refuses an unsigned or wrongly signed caller with UNAUTHENTICATED, runs nothing and logs why', async () => {
      const unsigned = new RpcClient(await transport(), { topic: 'volume', defaultTimeoutMs: 2000 });
      const error = await rejectionOf(unsigned.call(ctx, {}, 'delete_volume', { volume_id: 'v1' }));
      expect(error.code).to.equal('UNAUTHENTICATED');
      expect(error.message).to.match(/not signed/);

      const stranger = new RpcClient(await transport(), {
        topic: 'volume',
        defaultTimeoutMs: 2000,
        signer: new EnvelopeSigner({ keys: [K3], acceptKeys: [K1] }),
      });
      const error2 = await rejectionOf(stranger.call(ctx, {}, 'delete_volume', { volume_id: 'v1' }));
      expect(error2.code).to.equal('UNAUTHENTICATED');

      // A cast (nobody waits for an answer) is dropped the same way.
      await unsigned.cast(ctx, {}, 'delete_volume', { volume_id: 'v2' });
      for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(deleted).to.deep.equal([]);
      const rejected = lines.filter((l) => l.msg?.toString().startsWith('rejected rpc message'));
      expect(rejected.map((l) => l.reason)).to.deep.equal(['unsigned', 'unknown-key', 'unsigned']);
      expect(rejected.every((l) => l.level === 40)).to.equal(true);
      expect(JSON.stringify(lines)).not.to.include(K1.secret);
    });

    it('refuses a replayed or tampered copy of a captured message', async () => {
      const t = await transport();
      const request = sinon.spy(t, 'request');
      const client = new RpcClient(t, { topic: 'volume', signer: new EnvelopeSigner({ keys: [K1] }) });
      await client.call(ctx, {}, 'delete_volume', { volume_id: 'v1' });
      const captured = request.firstCall.args[1];

      const attacker = await transport();
      const replayed = await attacker.request({ kind: 'topic', topic: 'volume' }, captured, {
        timeoutMs: 2000,
      });
      expect(replayed.error).to.include({ code: 'UNAUTHENTICATED' });
      const tampered = await attacker.request(
        { kind: 'topic', topic: 'volume' },
        { ...captured, id: 'f'.repeat(32), args: { volume_id: 'v-other' } },
        { timeoutMs: 2000 },
      );
      expect(tampered.error).to.include({ code: 'UNAUTHENTICATED' });
      expect(deleted).to.deep.equal(['v1']);
      const reasons = lines.filter((l) => l.reason).map((l) => l.reason);
      expect(reasons).to.deep.equal(['replayed', 'bad-signature']);
    });

    it('refuses a message held back past the window', async () => {
      const late = new RpcClient(await transport(), {
        topic: 'volume',
        signer: new EnvelopeSigner({ keys: [K1] }, { now: () => Date.now() - 301_000 }),
      });
      const error = await rejectionOf(late.call(ctx, {}, 'delete_volume', { volume_id: 'v1' }));
      expect(error.code).to.equal('UNAUTHENTICATED');
      expect(error.message).to.match(/window/);
      expect(deleted).to.deep.equal([]);
    });

    it('a signing client refuses an unsigned reply (a forged answer)', async () => {
      const plain = new RpcServer(await transport(), {
        topic: 'plain',
        host: 'st-2',
        version: '1.0',
        endpoints: defineEndpoints({ ping: endpoint(Type.Object({}), () => 'pong') }),
      });
      await plain.start();
      try {
        const client = new RpcClient(await transport(), {
          topic: 'plain',
          signer: new EnvelopeSigner({ keys: [K1], requireSigned: true }),
        });
        const error = await rejectionOf(client.call(ctx, {}, 'ping', {}));
        expect(error.code).to.equal('UNAUTHENTICATED');
        expect(error.message).to.match(/Reply from plain to ping rejected/);
      } finally {
        await plain.stop();
      }
    });
  });
});

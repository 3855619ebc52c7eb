import { RequestContext, type RpcEnvelope } from '@stratus/core';
import { expect } from 'chai';
import { AmqpTransport } from '../../src/index.js';
import {
  decodeFailure,
  decodeReply,
  decodeRequest,
  encodeFailure,
  encodeReply,
  encodeRequest,
  isRpcEnvelope,
  unwrapEnvelope,
  wrapEnvelope,
} from '../../src/wire.js';

function envelope(overrides: Partial<RpcEnvelope> = {}): RpcEnvelope {
  return {
    id: '0123456789abcdef0123456789abcdef',
    method: 'create_volume',
    args: { volume_id: 'v-1', size: 2 },
    context: new RequestContext({
      requestId: 'req-1',
      userId: 'u-1',
      projectId: 'p-1',
      roles: ['member'],
      timestamp: '2011-09-22T00:00:00.000Z',
    }).toJSON(),
    version: '1.2',
    ...overrides,
  };
}

/** Context members beyond core's own (the schema allows them; the static type does not list them). */
function extra(members: Record<string, unknown>): Partial<RpcEnvelope['context']> {
  return members as Partial<RpcEnvelope['context']>;
}

describe('oslo wire format', () => {
  describe('requests', () => {
    it('maps a core envelope onto oslo keys: method, args, version, _msg_id, _reply_q, _unique_id, _context_*', () => {
      const inner = encodeRequest(envelope({ namespace: 'baseapi', deadline: 1_700_000_000_000 }), {
        msgId: 'm-1',
        replyQ: 'reply_abc',
      });
      expect(inner).to.deep.equal({
        method: 'create_volume',
        args: { volume_id: 'v-1', size: 2 },
        version: '1.2',
        namespace: 'baseapi',
        _msg_id: 'm-1',
        _reply_q: 'reply_abc',
        _unique_id: '0123456789abcdef0123456789abcdef',
        _context_request_id: 'req-1',
        _context_user_id: 'u-1',
        _context_user: 'u-1',
        _context_project_id: 'p-1',
        _context_project: 'p-1',
        _context_tenant: 'p-1',
        _context_roles: ['member'],
        _context_is_admin: false,
        _context_read_deleted: 'no',
        _context_timestamp: '2011-09-22T00:00:00.000Z',
        _stratus_deadline: 1_700_000_000_000,
      });
    });

    it('a cast carries no _msg_id or _reply_q (an oslo server then sends no reply)', () => {
      const inner = encodeRequest(envelope(), {});
      expect(inner).not.to.have.property('_msg_id');
      expect(inner).not.to.have.property('_reply_q');
      expect(decodeRequest(inner).msgId).to.equal(undefined);
    });

    it('round-trips a core envelope exactly, extra context members and a null namespace included', () => {
      const sent = envelope({ namespace: null, deadline: 5 });
      sent.context = {
        ...sent.context,
        readDeleted: true,
        ...extra({ globalRequestId: 'req-g', authToken: 'tok' }),
      };
      const decoded = decodeRequest(encodeRequest(sent, { msgId: sent.id, replyQ: 'reply_q1' }));
      expect(decoded).to.deep.equal({ message: sent, rpc: true, msgId: sent.id, replyQ: 'reply_q1' });
    });

    it('any other JSON object travels verbatim, even one that looks like an envelope', () => {
      for (const message of [{ n: 1 }, { ...envelope(), extra: true }, { method: 'x', args: {} }]) {
        const decoded = decodeRequest(encodeRequest(message, { msgId: 'm', replyQ: 'r' }));
        expect(decoded).to.deep.equal({ message, rpc: false, msgId: 'm', replyQ: 'r' });
      }
    });

    it('refuses to map a context member whose oslo name would collide or not round-trip', () => {
      const clash = envelope();
      clash.context = { ...clash.context, ...extra({ user: 'someone' }) };
      expect(isRpcEnvelope(clash)).to.equal(false);
      const lossy = envelope();
      lossy.context = { ...lossy.context, ...extra({ snake_key: 1 }) };
      expect(isRpcEnvelope(lossy)).to.equal(false);
      expect(isRpcEnvelope(envelope())).to.equal(true);
    });

    it('reads a message as oslo.messaging 14 sends it (oslo.context to_dict keys)', () => {
      const inner = {
        method: 'add',
        args: { a: 1 },
        version: '1.0',
        _msg_id: 'abc',
        _reply_q: 'reply_x',
        _unique_id: 'u',
        _context_user: 'py-user',
        _context_project_id: 'py-project',
        _context_project: 'py-project',
        _context_system_scope: null,
        _context_is_admin: false,
        _context_roles: ['member', 'reader'],
        _context_request_id: 'req-py',
        _context_global_request_id: null,
        _context_show_deleted: false,
        _context_user_identity: 'py-user py-project - - -',
      };
      const { message, rpc, msgId, replyQ } = decodeRequest(inner);
      expect(rpc).to.equal(true);
      expect([msgId, replyQ]).to.deep.equal(['abc', 'reply_x']);
      expect(message).to.deep.include({ id: 'abc', method: 'add', args: { a: 1 }, version: '1.0' });
      const ctx = (message as RpcEnvelope).context;
      expect(ctx).to.deep.include({
        requestId: 'req-py',
        userId: 'py-user',
        projectId: 'py-project',
        roles: ['member', 'reader'],
        isAdmin: false,
        systemScope: null,
        showDeleted: false,
        userIdentity: 'py-user py-project - - -',
      });
      expect(ctx).not.to.have.property('user');
      expect(ctx).not.to.have.property('project');
    });

    it('fills what a Diablo-era or minimal sender leaves out: id, version 1.0, request id, admin from roles', () => {
      const { message } = decodeRequest({ method: 'ping', _unique_id: 'u-9', _context_roles: ['Admin'] });
      const env = message as RpcEnvelope;
      expect(env.id).to.equal('u-9');
      expect(env.version).to.equal('1.0');
      expect(env.args).to.deep.equal({});
      expect(env.context.requestId).to.match(/^req-/);
      expect(env.context.isAdmin).to.equal(true);
      expect(env.context.userId).to.equal(null);
      expect(decodeRequest({ method: 'x', _context_read_deleted: 'only' }).message).to.have.nested.property(
        'context.readDeleted',
        true,
      );
    });
  });

  describe('envelope 2.0', () => {
    it('wraps the inner message as a JSON string under oslo.message', () => {
      const outer = wrapEnvelope({ method: 'm' });
      expect(outer).to.deep.equal({ 'oslo.version': '2.0', 'oslo.message': '{"method":"m"}' });
      expect(unwrapEnvelope(Buffer.from(JSON.stringify(outer)))).to.deep.equal({ method: 'm' });
    });

    it('accepts a bare pre-envelope (1.0) dict and refuses another major, non-JSON and non-objects', () => {
      expect(unwrapEnvelope('{"method":"m","args":{}}')).to.deep.equal({ method: 'm', args: {} });
      expect(() => unwrapEnvelope('{"oslo.version":"3.0","oslo.message":"{}"}')).to.throw(
        /envelope version 3.0/,
      );
      expect(() => unwrapEnvelope('not json')).to.throw(/not JSON/);
      expect(() => unwrapEnvelope('[1]')).to.throw(/not a JSON object/);
    });
  });

  describe('replies', () => {
    it('sends a result as one oslo reply with ending true, the way oslo.messaging servers do', () => {
      const inner = encodeReply({ id: 'e', result: { size: 2 } }, 'm-1', true);
      expect(inner).to.deep.include({ result: { size: 2 }, failure: null, ending: true, _msg_id: 'm-1' });
      expect(inner._unique_id).to.match(/^[0-9a-f]{32}$/);
      expect(encodeReply({ id: 'e' }, 'm-1', true)).to.deep.include({ result: null, failure: null });
    });

    it('sends an error as oslo failure JSON: class, module, message, tb, args, kwargs', () => {
      const inner = encodeReply(
        {
          id: 'e',
          error: {
            type: 'NotFound',
            code: 'NOT_FOUND',
            message: 'Volume v could not be found',
            data: { id: 'v' },
            retryable: false,
            httpStatus: 404,
          },
        },
        'm-1',
        true,
      );
      expect(inner.result).to.equal(null);
      expect(JSON.parse(inner.failure as string)).to.deep.equal({
        class: 'NotFound',
        module: 'stratus',
        message: 'Volume v could not be found',
        tb: [],
        args: ['Volume v could not be found'],
        kwargs: { code: 'NOT_FOUND', data: { id: 'v' }, retryable: false, httpStatus: 404 },
      });
    });

    it('a Stratus failure comes back with its code, data, retryable flag and HTTP status', () => {
      const payload = {
        type: 'Conflict',
        code: 'CONFLICT',
        message: 'busy',
        data: { a: 1 },
        retryable: true,
        httpStatus: 409,
      };
      expect(decodeFailure(encodeFailure(payload))).to.deep.equal(payload);
    });

    it('a Python exception becomes a REMOTE_ERROR named after its class, with module and traceback', () => {
      const failure = JSON.stringify({
        class: 'ValueError',
        module: 'builtins',
        message: 'bad value',
        tb: ['Traceback (most recent call last):\n', 'ValueError: bad value\n'],
        args: ['bad value'],
        kwargs: {},
      });
      expect(decodeFailure(failure)).to.deep.equal({
        type: 'ValueError',
        code: 'REMOTE_ERROR',
        message: 'bad value',
        data: {
          module: 'builtins',
          traceback: ['Traceback (most recent call last):\n', 'ValueError: bad value\n'],
        },
        retryable: false,
      });
      expect(
        decodeFailure(
          JSON.stringify({ class: 'NoSuchMethod', module: 'oslo_messaging.rpc.dispatcher', message: 'x' }),
        ).code,
      ).to.equal('NOT_SUPPORTED');
      expect(decodeFailure(['OldError', 'diablo style', []])).to.deep.include({
        type: 'OldError',
        message: 'diablo style',
      });
    });

    it('decodes result, failure, the ending flag and the verbatim reply of a non-RPC request', () => {
      expect(decodeReply({ _msg_id: 'm', result: 5, failure: null, ending: true })).to.deep.equal({
        msgId: 'm',
        ending: true,
        hasResult: true,
        result: 5,
      });
      expect(decodeReply({ _msg_id: 'm', result: null, failure: null, ending: false })).to.deep.include({
        ending: false,
      });
      expect(decodeReply({ _msg_id: 'm', result: 1 }).ending, 'no ending key: a one-message reply').to.equal(
        true,
      );
      expect(decodeReply(encodeReply({ ok: true }, 'm', false))).to.deep.include({
        raw: { ok: true },
        ending: true,
      });
      expect(decodeReply(encodeReply({ id: 'x', result: 1, more: 2 }, 'm', true)).raw).to.deep.equal({
        id: 'x',
        result: 1,
        more: 2,
      });
    });
  });

  describe('config', () => {
    it('refuses invalid config with every problem listed', () => {
      expect(() => new AmqpTransport({ urls: ['http://x'], heartbeatSec: -1 } as never))
        .to.throw(/urls\/0[\s\S]*heartbeatSec/)
        .with.property('code', 'CONFIG_INVALID');
      expect(() => new AmqpTransport({ reconnect: { minDelayMs: 500, maxDelayMs: 100 } })).to.throw(
        /maxDelayMs/,
      );
    });

    it('reads TLS material at construction and says which file is missing', () => {
      expect(() => new AmqpTransport({ tls: { ca: '/nonexistent/ca.pem', rejectUnauthorized: true } }))
        .to.throw(/tls\/ca/)
        .with.property('code', 'CONFIG_INVALID');
    });

    it('applies oslo-compatible defaults', () => {
      const { config } = new AmqpTransport();
      expect(config).to.deep.include({
        controlExchange: 'openstack',
        heartbeatSec: 30,
        confirm: true,
        durableQueues: false,
        maxRedeliveries: 5,
      });
      expect(new AmqpTransport({ controlExchange: 'nova' }).deadLetterQueueName).to.equal('nova:dead-letter');
    });
  });
});

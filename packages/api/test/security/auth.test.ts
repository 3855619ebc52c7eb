import { RpcClient } from '@stratus/core';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import sinon from 'sinon';
import { buildApp } from '../../src/index.js';
import { AllInOne, type TestUser, USERS } from '../support/all-in-one.js';
import { call, login } from '../support/client.js';

function passwordLogin(user: { name: string; password: string }, remoteAddress = '127.0.0.1') {
  return {
    method: 'POST' as const,
    url: '/v3/auth/tokens',
    remoteAddress,
    payload: {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user.name, domain: { id: 'default' }, password: user.password } },
        },
      },
    },
  };
}

describe('security: tokens, passwords and login limits', function () {
  this.timeout(60_000);

  let aio: AllInOne;
  before(async () => {
    aio = await AllInOne.start();
  });
  after(async () => aio?.stop());
  afterEach(() => sinon.restore());

  async function appWith(
    options: Parameters<typeof buildApp>[0] extends infer O ? Partial<O> : never,
    config: Record<string, unknown> = {},
  ): Promise<FastifyInstance> {
    const app = await buildApp({
      store: aio.store,
      rpc: new RpcClient(await aio.transport(), { defaultTimeoutMs: 5000 }),
      config,
      ...options,
    });
    aio.apps.push(app);
    return app;
  }

  describe('tokens', () => {
    it('expire after tokenTtlSec: the same token is then refused on every API', async () => {
      const clock = sinon.useFakeTimers({ now: Date.now(), toFake: ['Date'] });
      const app = await appWith({}, { tokenTtlSec: 60 });
      const alice = await login(app, USERS.alice);
      const urls = [`${alice.volumeRoot}/volumes`, '/v2.1/servers', '/v3/auth/projects', '/image/v2/images'];
      for (const url of urls) expect((await call(app, alice, 'GET', url)).statusCode, url).to.equal(200);
      clock.tick(59_000);
      expect((await call(app, alice, 'GET', urls[0] as string)).statusCode).to.equal(200);
      clock.tick(1_001);
      for (const url of urls) expect((await call(app, alice, 'GET', url)).statusCode, url).to.equal(401);
      // Nor can an expired token be traded for a new one.
      const rescope = await app.inject({
        method: 'POST',
        url: '/v3/auth/tokens',
        payload: { auth: { identity: { methods: ['token'], token: { id: alice.token } } } },
      });
      expect(rescope.statusCode).to.equal(401);
    });

    it('are revoked by DELETE /v3/auth/tokens, at once, everywhere; only the owner or an admin may', async () => {
      const app = await appWith({});
      const alice = await login(app, USERS.alice);
      const bob = await login(app, USERS.bob);
      const admin = await login(app, USERS.admin);
      const other = await login(app, USERS.alice);
      const byBob = await call(app, bob, 'DELETE', '/v3/auth/tokens', undefined, {
        'x-subject-token': alice.token,
      });
      expect(byBob.statusCode).to.equal(403);
      expect((await call(app, alice, 'GET', '/v2.1/servers')).statusCode).to.equal(200);

      const own = await call(app, alice, 'DELETE', '/v3/auth/tokens', undefined, {
        'x-subject-token': alice.token,
      });
      expect(own.statusCode).to.equal(204);
      for (const url of [`${alice.volumeRoot}/volumes`, '/v2.1/servers', '/v3/auth/catalog']) {
        expect((await call(app, alice, 'GET', url)).statusCode, url).to.equal(401);
      }
      // Another token of the same user is not affected; an admin can revoke it.
      expect((await call(app, other, 'GET', '/v2.1/servers')).statusCode).to.equal(200);
      const byAdmin = await call(app, admin, 'DELETE', '/v3/auth/tokens', undefined, {
        'x-subject-token': other.token,
      });
      expect(byAdmin.statusCode).to.equal(204);
      expect((await call(app, other, 'GET', '/v2.1/servers')).statusCode).to.equal(401);
    });
  });

  describe('passwords and tokens at rest', () => {
    it('stores salted scrypt hashes, never a password; tokens only as SHA-256', async () => {
      const app = await appWith({});
      const session = await login(app, USERS.alice);
      const users = await sql<{
        name: string;
        password_hash: string;
      }>`select name, password_hash from identity_users`.execute(aio.store.db);
      expect(users.rows.length).to.be.greaterThanOrEqual(3);
      const dump = JSON.stringify(users.rows);
      for (const u of Object.values(USERS) as TestUser[]) expect(dump).not.to.include(u.password);
      for (const row of users.rows)
        expect(row.password_hash).to.match(/^scrypt\$\d+\$\d+\$\d+\$[\w-]+\$[\w-]+$/);
      const hashes = users.rows.map((r) => r.password_hash.split('$')[5]);
      expect(new Set(hashes).size).to.equal(hashes.length);
      const tokens = await sql<Record<string, unknown>>`select * from tokens`.execute(aio.store.db);
      expect(JSON.stringify(tokens.rows)).not.to.include(session.token);
    });
  });

  describe('rate limiting POST /v3/auth/tokens', () => {
    const limits = {
      windowSec: 60,
      maxFailuresPerUser: 3,
      maxFailuresPerClient: 6,
      maxRequestsPerClient: 30,
    };

    it('locks one user after repeated failures, even for the right password, until the window passes', async () => {
      const clock = sinon.useFakeTimers({ now: Date.now(), toFake: ['Date'] });
      const app = await appWith({ authRateLimit: limits });
      for (let i = 0; i < 3; i++) {
        expect(
          (await app.inject(passwordLogin({ name: 'alice', password: `guess-${i}` }))).statusCode,
        ).to.equal(401);
      }
      const locked = await app.inject(passwordLogin(USERS.alice, '10.0.0.2'));
      expect(locked.statusCode).to.equal(429);
      expect(Number(locked.headers['retry-after'])).to.be.within(1, 60);
      expect(locked.json()).to.deep.equal({
        error: { code: 429, title: 'Too Many Requests', message: locked.json().error.message },
      });
      expect(locked.json().error.message).to.match(/failed logins for this user; retry in \d+ s/);
      // Names are case-folded: ALICE is the same account.
      expect(
        (await app.inject(passwordLogin({ ...USERS.alice, name: 'ALICE' }, '10.0.0.3'))).statusCode,
      ).to.equal(429);
      // Another user from the same address is not locked.
      expect((await app.inject(passwordLogin(USERS.bob))).statusCode).to.equal(201);
      clock.tick(60_001);
      expect((await app.inject(passwordLogin(USERS.alice))).statusCode).to.equal(201);
    });

    it('limits failures from one client address across users, and all requests from it', async () => {
      const app = await appWith({ authRateLimit: limits });
      for (let i = 0; i < 6; i++) {
        const res = await app.inject(passwordLogin({ name: `nobody-${i}`, password: 'x' }, '10.9.9.9'));
        expect(res.statusCode).to.equal(401);
      }
      expect((await app.inject(passwordLogin(USERS.bob, '10.9.9.9'))).statusCode).to.equal(429);
      expect((await app.inject(passwordLogin(USERS.bob, '10.9.9.10'))).statusCode).to.equal(201);

      let last = 0;
      for (let i = 0; i < 31; i++) last = (await app.inject(passwordLogin(USERS.bob, '10.1.1.1'))).statusCode;
      expect(last).to.equal(429);
    });

    it('is on by default in every app, and can be turned off', async () => {
      const defaults = await appWith({});
      let status = 0;
      for (let i = 0; i < 11 && status !== 429; i++) {
        status = (await defaults.inject(passwordLogin({ name: 'admin', password: `guess-${i}` }, '10.2.2.2')))
          .statusCode;
      }
      expect(status).to.equal(429);
      const off = await appWith({ authRateLimit: false });
      for (let i = 0; i < 12; i++) {
        expect(
          (await off.inject(passwordLogin({ name: 'admin', password: `guess-${i}` }))).statusCode,
        ).to.equal(401);
      }
    });
  });
});

import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import sinon from 'sinon';
import { type AllInOne, startSignedIn, USERS } from '../support/all-in-one.js';
import { call, login, type Session } from '../support/client.js';

function passwordAuth(user: { name: string; password: string }, scope?: unknown) {
  return {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user.name, domain: { name: 'Default' }, password: user.password } },
      },
      ...(scope === undefined ? {} : { scope }),
    },
  };
}

describe('Identity v3', () => {
  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;
  let bob: Session;
  let admin: Session;

  before(async () => {
    ({ aio, app, alice, bob, admin } = await startSignedIn());
  });
  after(async () => aio?.stop());
  afterEach(() => sinon.restore());

  describe('discovery', () => {
    it('GET /v3 is the Keystone v3 version document', async () => {
      const res = await call(app, undefined, 'GET', '/v3');
      expect(res.statusCode).to.equal(200);
      const { version } = res.json();
      expect(version.id).to.match(/^v3\./);
      expect(version.status).to.equal('stable');
      expect(version['media-types'][0].type).to.equal('application/vnd.openstack.identity-v3+json');
      expect(version.links[0]).to.deep.equal({ rel: 'self', href: 'http://localhost:80/v3/' });
    });

    it('GET / lists the versions with 300 Multiple Choices', async () => {
      const res = await call(app, undefined, 'GET', '/');
      expect(res.statusCode).to.equal(300);
      expect(res.json().versions.values.map((v: { id: string }) => v.id)).to.include('v2.1');
    });

    it('builds URLs from publicUrl when configured', async () => {
      const other = await aio.testApp({ publicUrl: 'https://cloud.example.com/' });
      const res = await call(other, undefined, 'GET', '/v3');
      expect(res.json().version.links[0].href).to.equal('https://cloud.example.com/v3/');
    });
  });

  describe('POST /v3/auth/tokens', () => {
    it('issues a project-scoped token with X-Subject-Token, roles and a catalog', async () => {
      const res = await call(
        app,
        undefined,
        'POST',
        '/v3/auth/tokens',
        passwordAuth(USERS.alice, { project: { name: 'project-a', domain: { name: 'Default' } } }),
      );
      expect(res.statusCode).to.equal(201);
      expect(res.headers['x-subject-token']).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(res.headers['x-openstack-request-id']).to.match(/^req-[0-9a-f-]{36}$/);
      const { token } = res.json();
      expect(token.methods).to.deep.equal(['password']);
      expect(token.user).to.include({ name: 'alice', password_expires_at: null });
      expect(token.user.domain).to.deep.equal({ id: 'default', name: 'Default' });
      expect(token.project).to.include({ id: alice.projectId, name: 'project-a' });
      expect(token.roles.map((r: { name: string }) => r.name)).to.deep.equal(['member']);
      expect(token.expires_at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      const types = token.catalog.map((s: { type: string }) => s.type);
      expect(types).to.include.members(['identity', 'compute', 'block-storage', 'volumev3', 'image']);
      const volume = token.catalog.find((s: { type: string }) => s.type === 'block-storage');
      const publicEndpoint = volume.endpoints.find((e: { interface: string }) => e.interface === 'public');
      expect(publicEndpoint).to.include({
        region_id: 'RegionOne',
        region: 'RegionOne',
        url: `http://localhost:80/volume/v3/${alice.projectId}`,
      });
    });

    it('accepts a user id and a project id', async () => {
      const res = await call(app, undefined, 'POST', '/v3/auth/tokens', {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { id: alice.userId, password: USERS.alice.password } },
          },
          scope: { project: { id: alice.projectId } },
        },
      });
      expect(res.statusCode).to.equal(201);
      expect(res.json().token.project.id).to.equal(alice.projectId);
    });

    it("scopes to the user's default project when no scope is given; unscoped on request", async () => {
      const implicit = await call(app, undefined, 'POST', '/v3/auth/tokens', passwordAuth(USERS.bob));
      expect(implicit.json().token.project.id).to.equal(bob.projectId);
      const unscoped = await call(
        app,
        undefined,
        'POST',
        '/v3/auth/tokens',
        passwordAuth(USERS.bob, 'unscoped'),
      );
      expect(unscoped.statusCode).to.equal(201);
      expect(unscoped.json().token).to.not.have.property('project');
      expect(unscoped.json().token).to.not.have.property('catalog');
    });

    it('leaves the catalog out with ?nocatalog', async () => {
      const res = await call(app, undefined, 'POST', '/v3/auth/tokens?nocatalog', passwordAuth(USERS.alice));
      expect(res.statusCode).to.equal(201);
      expect(res.json().token).to.not.have.property('catalog');
    });

    for (const [what, body] of [
      ['a wrong password', passwordAuth({ name: 'alice', password: 'nope' })],
      ['an unknown user', passwordAuth({ name: 'mallory', password: 'x' })],
      [
        'another domain',
        {
          auth: {
            identity: {
              methods: ['password'],
              password: {
                user: { name: 'alice', domain: { name: 'Other' }, password: USERS.alice.password },
              },
            },
          },
        },
      ],
      [
        'a project the user has no role on',
        passwordAuth(USERS.alice, { project: { name: 'project-b', domain: { id: 'default' } } }),
      ],
      ['an unknown project', passwordAuth(USERS.alice, { project: { id: 'nope' } })],
      ['an unsupported method', { auth: { identity: { methods: ['totp'], totp: {} } } }],
    ] as const) {
      it(`answers ${what} with 401 in Keystone's error format`, async () => {
        const res = await call(app, undefined, 'POST', '/v3/auth/tokens', body);
        expect(res.statusCode).to.equal(401);
        expect(res.json().error).to.include({ code: 401, title: 'Unauthorized' });
        expect(res.headers).to.not.have.property('x-subject-token');
      });
    }

    it('answers a user name without a domain with 400', async () => {
      const res = await call(app, undefined, 'POST', '/v3/auth/tokens', {
        auth: { identity: { methods: ['password'], password: { user: { name: 'alice', password: 'x' } } } },
      });
      expect(res.statusCode).to.equal(400);
      expect(res.json().error).to.include({ code: 400, title: 'Bad Request' });
      expect(res.json().error.message).to.contain('domain');
    });

    it('answers wrong types and unknown fields with 400, naming the field', async () => {
      const wrongType = await call(app, undefined, 'POST', '/v3/auth/tokens', {
        auth: { identity: { methods: 'password' } },
      });
      expect(wrongType.statusCode).to.equal(400);
      expect(wrongType.json().error.message).to.contain('/auth/identity/methods');
      const unknown = await call(app, undefined, 'POST', '/v3/auth/tokens', {
        ...passwordAuth(USERS.alice),
        extra: 1,
      });
      expect(unknown.statusCode).to.equal(400);
      expect(unknown.json().error.message).to.contain('/extra');
    });

    it('answers invalid JSON with 400 and an oversized body with 413, never 500', async () => {
      const bad = await app.inject({
        method: 'POST',
        url: '/v3/auth/tokens',
        headers: { 'content-type': 'application/json' },
        payload: '{"auth": ',
      });
      expect(bad.statusCode).to.equal(400);
      expect(bad.json().error).to.include({ code: 400, title: 'Bad Request' });
      const huge = await app.inject({
        method: 'POST',
        url: '/v3/auth/tokens',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ auth: { pad: 'x'.repeat(2 * 1024 * 1024) } }),
      });
      expect(huge.statusCode).to.equal(413);
      expect(huge.json().error.code).to.equal(413);
    });

    it('rescopes a token with the token method, keeping its expiry and audit chain', async () => {
      const unscoped = await call(
        app,
        undefined,
        'POST',
        '/v3/auth/tokens',
        passwordAuth(USERS.admin, 'unscoped'),
      );
      const first = unscoped.json().token;
      const res = await call(app, undefined, 'POST', '/v3/auth/tokens', {
        auth: {
          identity: { methods: ['token'], token: { id: unscoped.headers['x-subject-token'] } },
          scope: { project: { name: 'admin', domain: { id: 'default' } } },
        },
      });
      expect(res.statusCode).to.equal(201);
      const { token } = res.json();
      expect(token.methods).to.deep.equal(['token']);
      expect(token.project.id).to.equal(admin.projectId);
      expect(token.expires_at <= first.expires_at).to.equal(true);
      expect(token.audit_ids[1]).to.equal(first.audit_ids[0]);
    });

    it('refuses to rescope an invalid token', async () => {
      const res = await call(app, undefined, 'POST', '/v3/auth/tokens', {
        auth: { identity: { methods: ['token'], token: { id: 'not-a-token' } } },
      });
      expect(res.statusCode).to.equal(401);
    });
  });

  describe('validate and revoke', () => {
    it('GET /v3/auth/tokens validates X-Subject-Token (200) and answers 404 for an unknown one', async () => {
      const ok = await call(app, alice, 'GET', '/v3/auth/tokens', undefined, {
        'x-subject-token': alice.token,
      });
      expect(ok.statusCode).to.equal(200);
      expect(ok.json().token.user.id).to.equal(alice.userId);
      const missing = await call(app, admin, 'GET', '/v3/auth/tokens', undefined, {
        'x-subject-token': 'nope',
      });
      expect(missing.statusCode).to.equal(404);
      expect(missing.json().error).to.include({ code: 404, title: 'Not Found' });
    });

    it("lets admins validate anyone's token, members only their own (403)", async () => {
      const byAdmin = await call(app, admin, 'GET', '/v3/auth/tokens', undefined, {
        'x-subject-token': bob.token,
      });
      expect(byAdmin.statusCode).to.equal(200);
      const byAlice = await call(app, alice, 'GET', '/v3/auth/tokens', undefined, {
        'x-subject-token': bob.token,
      });
      expect(byAlice.statusCode).to.equal(403);
      expect(byAlice.json().error).to.include({ code: 403, title: 'Forbidden' });
    });

    it('DELETE /v3/auth/tokens revokes: the token then gets 401 everywhere', async () => {
      const session = await login(app, USERS.bob);
      const before = await call(app, session, 'GET', '/v2.1/servers');
      expect(before.statusCode).to.equal(200);
      const revoke = await call(app, session, 'DELETE', '/v3/auth/tokens', undefined, {
        'x-subject-token': session.token,
      });
      expect(revoke.statusCode).to.equal(204);
      const after = await call(app, session, 'GET', '/v2.1/servers');
      expect(after.statusCode).to.equal(401);
      expect(after.headers['www-authenticate']).to.contain('Keystone');
      expect(after.json().error.code).to.equal(401);
    });

    it('rejects an expired token with 401', async () => {
      const session = await login(app, USERS.bob);
      const clock = sinon.useFakeTimers({ now: Date.now() + 3601 * 1000, toFake: ['Date'] });
      const res = await call(app, session, 'GET', '/v2.1/servers');
      clock.restore();
      expect(res.statusCode).to.equal(401);
    });

    it('rejects a missing token with 401 on every API', async () => {
      for (const url of [
        '/v2.1/servers',
        `/volume/v3/${alice.projectId}/volumes`,
        '/image/v2/images',
        '/v3/auth/projects',
      ]) {
        const res = await call(app, undefined, 'GET', url);
        expect(res.statusCode, url).to.equal(401);
        expect(res.json().error.title, url).to.equal('Unauthorized');
      }
    });
  });

  it("GET /v3/auth/projects lists the projects the user has roles on; /v3/auth/catalog the token's catalog", async () => {
    const projects = await call(app, alice, 'GET', '/v3/auth/projects');
    expect(projects.statusCode).to.equal(200);
    expect(projects.json().projects.map((p: { name: string }) => p.name)).to.deep.equal(['project-a']);
    const catalog = await call(app, alice, 'GET', '/v3/auth/catalog');
    expect(catalog.statusCode).to.equal(200);
    expect(catalog.json().catalog.map((s: { type: string }) => s.type)).to.include('compute');
  });

  it('keeps a request id from the client when it has the OpenStack form', async () => {
    const id = 'req-12345678-1234-1234-1234-123456789abc';
    const res = await call(app, undefined, 'GET', '/v3', undefined, { 'x-openstack-request-id': id });
    expect(res.headers['x-openstack-request-id']).to.equal(id);
    const bogus = await call(app, undefined, 'GET', '/v3', undefined, {
      'x-openstack-request-id': 'evil\nid',
    });
    expect(bogus.headers['x-openstack-request-id']).to.not.equal('evil\nid');
  });
});

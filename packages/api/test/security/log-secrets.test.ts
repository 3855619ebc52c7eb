import { waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { sql } from 'kysely';
import { CIRROS_IMAGE_ID } from '../../src/index.js';
import { AllInOne, USERS } from '../support/all-in-one.js';
import { captureLogger } from './support.js';

/** A full session over real HTTP; every log line of every service is kept, at trace level. */
describe('security: no secrets in the logs of a full run', function () {
  this.timeout(60_000);

  let aio: AllInOne;
  let logs: ReturnType<typeof captureLogger>;
  const secrets = new Map<string, string>();
  /** Not secret: ids the logs must show, proving the grep sees what the services wrote. */
  const visible: string[] = [];

  async function http(
    method: string,
    path: string,
    token?: string,
    body?: unknown,
    extra: Record<string, string> = {},
  ) {
    const headers: Record<string, string> = { ...extra };
    if (token) headers['x-auth-token'] = token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${aio.url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      // biome-ignore lint/suspicious/noExplicitAny: response bodies of several APIs, read by path
      json: () => JSON.parse(text) as Record<string, any>,
      text,
    };
  }

  async function loginAs(user: { name: string; password: string; project: string }) {
    const res = await http('POST', '/v3/auth/tokens', undefined, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: user.name, domain: { id: 'default' }, password: user.password } },
        },
        scope: { project: { name: user.project, domain: { id: 'default' } } },
      },
    });
    expect(res.status, res.text).to.equal(201);
    const token = res.headers.get('x-subject-token') as string;
    secrets.set(`token of ${user.name}`, token);
    return { token, projectId: res.json().token.project.id as string };
  }

  before(async () => {
    logs = captureLogger();
    aio = await AllInOne.start({ logger: logs.logger });
    for (const user of Object.values(USERS)) secrets.set(`password of ${user.name}`, user.password);

    const alice = await loginAs(USERS.alice);
    const admin = await loginAs(USERS.admin);
    const root = `/volume/v3/${alice.projectId}`;

    // A wrong password must not be logged either: it is often a real password with a typo.
    const wrong = 'Tr0ub4dor&3-almost-right';
    secrets.set('a mistyped password', wrong);
    const failed = await http('POST', '/v3/auth/tokens', undefined, {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'alice', domain: { id: 'default' }, password: wrong } },
        },
      },
    });
    expect(failed.status).to.equal(401);

    // Rescope, validate (X-Subject-Token), create, snapshot, boot, attach (CHAP), console, detach.
    const rescoped = await http('POST', '/v3/auth/tokens', undefined, {
      auth: {
        identity: { methods: ['token'], token: { id: alice.token } },
        scope: { project: { id: alice.projectId } },
      },
    });
    expect(rescoped.status).to.equal(201);
    secrets.set('a rescoped token', rescoped.headers.get('x-subject-token') as string);
    expect(
      (await http('GET', '/v3/auth/tokens', admin.token, undefined, { 'x-subject-token': alice.token }))
        .status,
    ).to.equal(200);

    const created = await http('POST', `${root}/volumes`, alice.token, { volume: { size: 1, name: 'data' } });
    expect(created.status, created.text).to.equal(202);
    const volumeId = created.json().volume.id as string;
    visible.push(volumeId, alice.projectId);
    await waitFor(
      async () => (await http('GET', `${root}/volumes/${volumeId}`, alice.token)).json().volume.status,
      (s) => s === 'available',
      'volume',
    );
    const snap = await http('POST', `${root}/snapshots`, alice.token, {
      snapshot: { volume_id: volumeId, name: 's1' },
    });
    expect(snap.status, snap.text).to.equal(202);

    const server = await http('POST', '/v2.1/servers', alice.token, {
      server: { name: 'vm', flavorRef: '1', imageRef: CIRROS_IMAGE_ID },
    });
    expect(server.status, server.text).to.equal(202);
    const serverId = server.json().server.id as string;
    await waitFor(
      async () => (await http('GET', `/v2.1/servers/${serverId}`, alice.token)).json().server.status,
      (s) => s === 'ACTIVE',
      'server',
    );
    const attach = await http('POST', `/v2.1/servers/${serverId}/os-volume_attachments`, alice.token, {
      volumeAttachment: { volumeId },
    });
    expect(attach.status, attach.text).to.equal(200);
    const consoleOut = await http('POST', `/v2.1/servers/${serverId}/action`, alice.token, {
      'os-getConsoleOutput': { length: 10 },
    });
    expect(consoleOut.status, consoleOut.text).to.equal(200);
    const detach = await http(
      'DELETE',
      `/v2.1/servers/${serverId}/os-volume_attachments/${volumeId}`,
      alice.token,
    );
    expect(detach.status, detach.text).to.equal(202);
    await waitFor(
      async () => (await http('GET', `${root}/volumes/${volumeId}`, alice.token)).json().volume.status,
      (s) => s === 'available',
      'detach',
    );
    expect(
      (await http('DELETE', '/v3/auth/tokens', alice.token, undefined, { 'x-subject-token': alice.token }))
        .status,
    ).to.equal(204);
    expect((await http('GET', '/v2.1/servers', alice.token)).status).to.equal(401);

    // The CHAP credentials the export was made with (stored as "CHAP <user> <secret>").
    const rows = await sql<{ provider_auth: string | null }>`select provider_auth from volumes`.execute(
      aio.store.db,
    );
    for (const row of rows.rows) {
      const secret = /^CHAP \S+ (\S+)$/.exec(row.provider_auth ?? '')?.[1];
      if (secret) secrets.set(`CHAP secret of a volume`, secret);
    }
  });

  after(async () => aio?.stop());

  it('ran a session that produced secrets and plenty of trace and debug logs', () => {
    expect([...secrets.keys()]).to.include.members([
      'CHAP secret of a volume',
      'token of alice',
      'password of alice',
    ]);
    expect(logs.lines.length).to.be.greaterThan(50);
    expect(logs.lines.some((l) => l.msg === 'rpc call')).to.equal(true);
    expect(logs.lines.some((l) => l.msg === 'token issued')).to.equal(true);
    const all = logs.text.join('');
    for (const id of visible) expect(all).to.include(id);
  });

  it('logs no password, token or CHAP secret, at any level', () => {
    const all = logs.text.join('');
    const leaks = [...secrets].filter(([, value]) => all.includes(value)).map(([what]) => what);
    const where = leaks.map((what) => {
      const value = secrets.get(what) as string;
      return `${what}: ${logs.text.find((l) => l.includes(value))?.slice(0, 300)}`;
    });
    expect(leaks, where.join('\n')).to.deep.equal([]);
  });
});

import { waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { CIRROS_IMAGE_ID } from '../../src/index.js';
import { type AllInOne, startSignedIn, USERS } from '../support/all-in-one.js';
import { call, login, type Session } from '../support/client.js';

interface ServerView {
  id: string;
  name: string;
  status: string;
  'OS-EXT-STS:task_state': string | null;
  [key: string]: unknown;
}

describe('Compute v2.1', () => {
  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;
  let bob: Session;
  let admin: Session;

  before(async () => {
    ({ aio, app, alice, bob, admin } = await startSignedIn({ quotas: { instances: 30, cores: 40 } }));
  });
  after(async () => aio?.stop());

  async function server(session: Session, id: string): Promise<ServerView> {
    return (await call(app, session, 'GET', `/v2.1/servers/${id}`)).json().server;
  }

  async function settled(session: Session, id: string, status: string): Promise<ServerView> {
    return waitFor(
      () => server(session, id),
      (s) => s?.status === status && s['OS-EXT-STS:task_state'] === null,
      `server ${id} to be ${status}`,
    );
  }

  async function boot(session: Session, name = 'vm'): Promise<string> {
    const res = await call(app, session, 'POST', '/v2.1/servers', {
      server: { name, flavorRef: '1', imageRef: CIRROS_IMAGE_ID },
    });
    expect(res.statusCode, res.body).to.equal(202);
    const { id } = res.json().server;
    await settled(session, id, 'ACTIVE');
    return id;
  }

  async function action(session: Session, id: string, body: unknown) {
    return call(app, session, 'POST', `/v2.1/servers/${id}/action`, body);
  }

  it('GET /v2.1 is the v2.1 version document with microversion headers', async () => {
    const res = await call(app, undefined, 'GET', '/v2.1', undefined, {
      'x-openstack-nova-api-version': '2.1',
    });
    expect(res.statusCode).to.equal(200);
    expect(res.json().version).to.include({
      id: 'v2.1',
      status: 'CURRENT',
      version: '2.1',
      min_version: '2.1',
    });
    expect(res.headers['openstack-api-version']).to.equal('compute 2.1');
    expect(res.headers['x-openstack-nova-api-version']).to.equal('2.1');
  });

  describe('flavors', () => {
    it('lists, lists with details, shows by id and 404s an unknown id', async () => {
      const list = await call(app, alice, 'GET', '/v2.1/flavors');
      expect(list.json().flavors.map((f: { name: string }) => f.name)).to.deep.equal([
        'm1.tiny',
        'm1.small',
        'm1.medium',
        'm1.large',
        'm1.xlarge',
      ]);
      const detail = await call(app, alice, 'GET', '/v2.1/flavors/detail?is_public=None');
      expect(detail.json().flavors[0]).to.include({
        id: '1',
        name: 'm1.tiny',
        ram: 512,
        vcpus: 1,
        disk: 1,
        swap: '',
      });
      const one = await call(app, alice, 'GET', '/v2.1/flavors/2');
      expect(one.json().flavor).to.include({ name: 'm1.small', ram: 2048 });
      const specs = await call(app, alice, 'GET', '/v2.1/flavors/2/os-extra_specs');
      expect(specs.json()).to.deep.equal({ extra_specs: {} });
      const missing = await call(app, alice, 'GET', '/v2.1/flavors/m1.tiny');
      expect(missing.statusCode).to.equal(404);
      expect(missing.json().itemNotFound.code).to.equal(404);
    });
  });

  describe('servers', () => {
    it('creates a server (202 + Location), which becomes ACTIVE in the Nova view', async () => {
      const res = await call(app, alice, 'POST', '/v2.1/servers', {
        server: {
          name: 'web-1',
          flavorRef: 'http://localhost/flavors/1',
          imageRef: CIRROS_IMAGE_ID,
          min_count: 1,
          max_count: 1,
          networks: 'none',
        },
      });
      expect(res.statusCode).to.equal(202);
      const { id } = res.json().server;
      expect(res.headers.location).to.equal(`http://localhost:80/v2.1/servers/${id}`);
      const view = await settled(alice, id, 'ACTIVE');
      expect(view).to.include({ name: 'web-1', tenant_id: alice.projectId, user_id: alice.userId });
      expect(view['OS-EXT-STS:vm_state']).to.equal('active');
      expect(view['OS-EXT-STS:power_state']).to.equal(1);
      expect(view.flavor).to.deep.include({ id: '1' });
      expect(view.image).to.deep.include({ id: CIRROS_IMAGE_ID });
      expect(view).to.not.have.property('OS-EXT-SRV-ATTR:host');
      expect((await server(admin, id))['OS-EXT-SRV-ATTR:host']).to.equal('aio-1');
    });

    it('lists own servers newest first (summary and detail), filters by name and status', async () => {
      const first = await boot(alice, 'list-a');
      const second = await boot(alice, 'list-b');
      await boot(bob, 'list-a');
      const summary = await call(app, alice, 'GET', '/v2.1/servers?name=list-');
      expect(summary.json().servers.map((s: { id: string }) => s.id)).to.deep.equal([second, first]);
      const detail = await call(app, alice, 'GET', '/v2.1/servers/detail?name=list-a&status=ACTIVE');
      expect(detail.json().servers.map((s: ServerView) => s.id)).to.deep.equal([first]);
      const paged = await call(app, alice, 'GET', '/v2.1/servers?name=list-&limit=1');
      expect(paged.json().servers_links[0].href).to.contain(`marker=${second}`);
      const badMarker = await call(app, alice, 'GET', '/v2.1/servers?marker=nope');
      expect(badMarker.statusCode).to.equal(400);
      const all = await call(app, admin, 'GET', '/v2.1/servers/detail?all_tenants=1&name=list-a');
      expect(all.json().servers).to.have.length(2);
    });

    it('runs the power actions through their states', async () => {
      const id = await boot(alice, 'actions');
      const steps: [unknown, string][] = [
        [{ 'os-stop': null }, 'SHUTOFF'],
        [{ 'os-start': null }, 'ACTIVE'],
        [{ pause: null }, 'PAUSED'],
        [{ unpause: null }, 'ACTIVE'],
        [{ suspend: null }, 'SUSPENDED'],
        [{ resume: null }, 'ACTIVE'],
        [{ reboot: { type: 'SOFT' } }, 'ACTIVE'],
        [{ reboot: { type: 'HARD' } }, 'ACTIVE'],
      ];
      for (const [body, status] of steps) {
        const res = await action(alice, id, body);
        expect(res.statusCode, JSON.stringify(body)).to.equal(202);
        await settled(alice, id, status);
      }
    });

    it('rescues (200 with adminPass) and unrescues', async () => {
      const id = await boot(alice, 'rescue-me');
      const res = await action(alice, id, { rescue: { adminPass: 'rescue-pass-1' } });
      expect(res.statusCode).to.equal(200);
      expect(res.json()).to.deep.equal({ adminPass: 'rescue-pass-1' });
      await settled(alice, id, 'RESCUE');
      const generated = await action(alice, id, { unrescue: null });
      expect(generated.statusCode).to.equal(202);
      await settled(alice, id, 'ACTIVE');
    });

    it('returns the console output (200), tailed by length', async () => {
      const id = await boot(alice, 'console');
      const full = await action(alice, id, { 'os-getConsoleOutput': { length: null } });
      expect(full.statusCode).to.equal(200);
      expect(full.json().output).to.be.a('string');
      const tail = await action(alice, id, { 'os-getConsoleOutput': { length: 1 } });
      expect(tail.json().output.split('\n')).to.have.length(1);
    });

    it('answers an action in the wrong state with 409 conflictingRequest', async () => {
      const id = await boot(alice, 'conflict');
      const res = await action(alice, id, { unpause: null });
      expect(res.statusCode).to.equal(409);
      expect(res.json().conflictingRequest.code).to.equal(409);
    });

    it('lock: a member cannot act on its locked server (409), unlock lifts it', async () => {
      const id = await boot(alice, 'locked');
      expect((await action(alice, id, { lock: null })).statusCode).to.equal(202);
      const refused = await action(alice, id, { pause: null });
      expect(refused.statusCode).to.equal(409);
      expect((await action(alice, id, { unlock: null })).statusCode).to.equal(202);
      expect((await action(alice, id, { pause: null })).statusCode).to.equal(202);
      await settled(alice, id, 'PAUSED');
      const adminLock = await action(admin, id, { lock: null });
      expect(adminLock.statusCode).to.equal(202);
      const memberUnlock = await action(alice, id, { unlock: null });
      expect(memberUnlock.statusCode).to.equal(403);
      expect(memberUnlock.json().forbidden.code).to.equal(403);
    });

    it('answers unknown actions and bad action bodies with 400', async () => {
      const id = await boot(alice, 'bad-actions');
      for (const body of [
        { migrate: null },
        { reboot: { type: 'GENTLE' } },
        { pause: null, unpause: null },
        { 'os-getConsoleOutput': { length: 'x' } },
      ]) {
        const res = await action(alice, id, body);
        expect(res.statusCode, JSON.stringify(body)).to.equal(400);
        expect(res.json().badRequest.code).to.equal(400);
      }
    });

    it('answers bad create bodies with 400 badRequest', async () => {
      const cases: [string, unknown][] = [
        ['unknown flavor', { server: { name: 'x', flavorRef: '99', imageRef: CIRROS_IMAGE_ID } }],
        ['unknown image', { server: { name: 'x', flavorRef: '1', imageRef: 'nope' } }],
        ['unknown field', { server: { name: 'x', flavorRef: '1', imageRef: CIRROS_IMAGE_ID, color: 'red' } }],
        ['missing name', { server: { flavorRef: '1', imageRef: CIRROS_IMAGE_ID } }],
        ['name with spaces around', { server: { name: ' x ', flavorRef: '1', imageRef: CIRROS_IMAGE_ID } }],
        [
          'several servers',
          { server: { name: 'x', flavorRef: '1', imageRef: CIRROS_IMAGE_ID, max_count: 3 } },
        ],
        ['a keypair', { server: { name: 'x', flavorRef: '1', imageRef: CIRROS_IMAGE_ID, key_name: 'k' } }],
      ];
      for (const [what, body] of cases) {
        const res = await call(app, alice, 'POST', '/v2.1/servers', body);
        expect(res.statusCode, what).to.equal(400);
        expect(res.json().badRequest.code, what).to.equal(400);
      }
    });

    it('answers an exceeded instance quota with 403 forbidden, as Nova does', async () => {
      const limited = await aio.testApp({ quotas: { instances: 0 } });
      const res = await call(limited, bob, 'POST', '/v2.1/servers', {
        server: { name: 'over', flavorRef: '1', imageRef: CIRROS_IMAGE_ID },
      });
      expect(res.statusCode).to.equal(403);
      expect(res.json().forbidden.message).to.contain('Quota exceeded for instances');
    });

    it("isolates projects: another project's server is 404 to show, act on, attach to and delete", async () => {
      const id = await boot(alice, 'private');
      for (const [method, url, body] of [
        ['GET', `/v2.1/servers/${id}`, undefined],
        ['POST', `/v2.1/servers/${id}/action`, { pause: null }],
        ['POST', `/v2.1/servers/${id}/action`, { migrate: null }],
        ['GET', `/v2.1/servers/${id}/os-volume_attachments`, undefined],
        ['DELETE', `/v2.1/servers/${id}`, undefined],
      ] as const) {
        const res = await call(app, bob, method, url, body);
        expect(res.statusCode, `${method} ${url}`).to.equal(404);
        expect(res.json().itemNotFound.code).to.equal(404);
      }
      expect((await server(alice, id)).status).to.equal('ACTIVE');
    });

    it('deletes (204); the server then reads as 404', async () => {
      const id = await boot(alice, 'doomed');
      const res = await call(app, alice, 'DELETE', `/v2.1/servers/${id}`);
      expect(res.statusCode).to.equal(204);
      await waitFor(
        async () => (await call(app, alice, 'GET', `/v2.1/servers/${id}`)).statusCode,
        (status) => status === 404,
        'the server to be gone',
      );
    });
  });

  describe('os-volume_attachments', () => {
    it('attaches (next free device), lists, shows and detaches a volume', async () => {
      const id = await boot(alice, 'with-volume');
      const created = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes`, { volume: { size: 1 } });
      const volumeId = created.json().volume.id;
      await waitFor(
        async () =>
          (await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${volumeId}`)).json().volume.status,
        (s) => s === 'available',
        'the volume',
      );
      const attached = await call(app, alice, 'POST', `/v2.1/servers/${id}/os-volume_attachments`, {
        volumeAttachment: { volumeId },
      });
      expect(attached.statusCode, attached.body).to.equal(200);
      expect(attached.json().volumeAttachment).to.deep.equal({
        id: volumeId,
        serverId: id,
        volumeId,
        device: '/dev/vdb',
      });
      const list = await call(app, alice, 'GET', `/v2.1/servers/${id}/os-volume_attachments`);
      expect(list.json().volumeAttachments).to.have.length(1);
      const one = await call(app, alice, 'GET', `/v2.1/servers/${id}/os-volume_attachments/${volumeId}`);
      expect(one.json().volumeAttachment.device).to.equal('/dev/vdb');
      const volume = (await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${volumeId}`)).json().volume;
      expect(volume.status).to.equal('in-use');
      expect(volume.attachments[0]).to.include({ server_id: id, device: '/dev/vdb' });
      expect((await server(alice, id))['os-extended-volumes:volumes_attached']).to.deep.equal([
        { id: volumeId },
      ]);
      const again = await call(app, alice, 'POST', `/v2.1/servers/${id}/os-volume_attachments`, {
        volumeAttachment: { volumeId, device: '/dev/vdc' },
      });
      expect(again.statusCode).to.equal(409);
      const detached = await call(
        app,
        alice,
        'DELETE',
        `/v2.1/servers/${id}/os-volume_attachments/${volumeId}`,
      );
      expect(detached.statusCode).to.equal(202);
      await waitFor(
        async () =>
          (await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${volumeId}`)).json().volume.status,
        (s) => s === 'available',
        'the detach',
      );
      const gone = await call(app, alice, 'GET', `/v2.1/servers/${id}/os-volume_attachments/${volumeId}`);
      expect(gone.statusCode).to.equal(404);
    });

    it("cannot attach another project's volume (404) or a bad device name (400)", async () => {
      const id = await boot(alice, 'attach-errors');
      const theirs = await call(app, bob, 'POST', `${bob.volumeRoot}/volumes`, { volume: { size: 1 } });
      const res = await call(app, alice, 'POST', `/v2.1/servers/${id}/os-volume_attachments`, {
        volumeAttachment: { volumeId: theirs.json().volume.id },
      });
      expect(res.statusCode).to.equal(404);
      const badDevice = await call(app, alice, 'POST', `/v2.1/servers/${id}/os-volume_attachments`, {
        volumeAttachment: { volumeId: theirs.json().volume.id, device: 'vdb; rm -rf /' },
      });
      expect(badDevice.statusCode).to.equal(400);
    });
  });

  describe('services and limits', () => {
    it('os-services lists compute services for an admin, 403 for a member', async () => {
      const res = await call(app, admin, 'GET', '/v2.1/os-services');
      expect(res.statusCode).to.equal(200);
      expect(res.json().services.map((s: { binary: string }) => s.binary)).to.deep.equal(['stratus-compute']);
      expect(res.json().services[0]).to.include({ state: 'up', status: 'enabled', zone: 'nova' });
      const member = await call(app, alice, 'GET', '/v2.1/os-services');
      expect(member.statusCode).to.equal(403);
      expect(member.json().forbidden.message).to.contain('os-services');
    });

    it('limits report instances, cores and RAM used by the project', async () => {
      const fresh = await login(app, USERS.bob);
      const before = (await call(app, fresh, 'GET', '/v2.1/limits')).json().limits.absolute;
      await boot(fresh, 'counted');
      const after = (await call(app, fresh, 'GET', '/v2.1/limits')).json().limits.absolute;
      expect(after.maxTotalInstances).to.equal(30);
      expect(after.totalInstancesUsed).to.equal(before.totalInstancesUsed + 1);
      expect(after.totalRAMUsed).to.equal(before.totalRAMUsed + 512);
    });
  });
});

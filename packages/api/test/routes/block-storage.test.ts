import { waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { type AllInOne, startSignedIn, USERS } from '../support/all-in-one.js';
import { call, login, type Session } from '../support/client.js';

describe('Block Storage v3', () => {
  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;
  let bob: Session;
  let admin: Session;

  before(async () => {
    ({ aio, app, alice, bob, admin } = await startSignedIn({ quotas: { volumes: 20, gigabytes: 50 } }));
  });
  after(async () => aio?.stop());

  async function createVolume(session: Session, body: Record<string, unknown> = {}) {
    const res = await call(app, session, 'POST', `${session.volumeRoot}/volumes`, {
      volume: { size: 1, ...body },
    });
    expect(res.statusCode, res.body).to.equal(202);
    return res.json().volume as { id: string; status: string; name: string | null };
  }

  async function volumeStatus(session: Session, id: string, statuses: string[]) {
    return waitFor(
      async () => (await call(app, session, 'GET', `${session.volumeRoot}/volumes/${id}`)).json().volume,
      (v) => statuses.includes(v?.status),
      `volume ${id} to be ${statuses.join('|')}`,
    );
  }

  describe('version documents', () => {
    it('GET /volume/v3/ is the v3 document, GET /volume/ lists it with 300', async () => {
      const v3 = await call(app, undefined, 'GET', '/volume/v3/');
      expect(v3.statusCode).to.equal(200);
      expect(v3.json().versions[0]).to.include({ id: 'v3.0', status: 'CURRENT', min_version: '3.0' });
      const rootDoc = await call(app, undefined, 'GET', '/volume/');
      expect(rootDoc.statusCode).to.equal(300);
      expect(rootDoc.json().versions).to.have.length(1);
    });
  });

  describe('volumes', () => {
    it('creates (202, creating), then shows it available in the Cinder view', async () => {
      const created = await createVolume(alice, { name: 'data', description: 'first' });
      expect(created.status).to.equal('creating');
      const volume = await volumeStatus(alice, created.id, ['available']);
      expect(volume).to.include({
        name: 'data',
        description: 'first',
        size: 1,
        bootable: 'false',
        availability_zone: 'nova',
      });
      expect(volume['os-vol-tenant-attr:tenant_id']).to.equal(alice.projectId);
      expect(volume).to.not.have.property('os-vol-host-attr:host');
      expect(volume.created_at).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
      expect(volume.links[0].href).to.equal(`http://localhost:80${alice.volumeRoot}/volumes/${created.id}`);
    });

    it('accepts the body cinderclient sends (nulls for unset options) and the microversion header', async () => {
      const res = await call(
        app,
        alice,
        'POST',
        `${alice.volumeRoot}/volumes`,
        {
          volume: {
            size: '1',
            consistencygroup_id: null,
            snapshot_id: null,
            name: 'from-cli',
            description: null,
            volume_type: null,
            availability_zone: null,
            metadata: {},
            imageRef: null,
            source_volid: null,
            backup_id: null,
          },
        },
        { 'openstack-api-version': 'volume 3.0' },
      );
      expect(res.statusCode).to.equal(202);
      expect(res.headers['openstack-api-version']).to.equal('volume 3.0');
      await volumeStatus(alice, res.json().volume.id, ['available']);
    });

    it('lists summaries and details of the own project only, with name and status filters', async () => {
      const mine = await createVolume(alice, { name: 'listed' });
      const theirs = await createVolume(bob, { name: 'listed' });
      const summary = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes?name=listed`);
      expect(summary.statusCode).to.equal(200);
      expect(summary.json().volumes).to.deep.equal([
        {
          id: mine.id,
          name: 'listed',
          links: [
            { href: `http://localhost:80${alice.volumeRoot}/volumes/${mine.id}`, rel: 'self' },
            { href: `http://localhost:80/volume/${alice.projectId}/volumes/${mine.id}`, rel: 'bookmark' },
          ],
        },
      ]);
      const detail = await call(app, bob, 'GET', `${bob.volumeRoot}/volumes/detail`);
      const ids = detail.json().volumes.map((v: { id: string }) => v.id);
      expect(ids).to.include(theirs.id).and.not.include(mine.id);
      const none = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/detail?status=no-such-status`);
      expect(none.json().volumes).to.deep.equal([]);
    });

    it('pages with limit and marker, with a next link', async () => {
      const all = (await call(app, alice, 'GET', `${alice.volumeRoot}/volumes`)).json().volumes;
      expect(all.length).to.be.greaterThan(2);
      const first = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes?limit=2`);
      expect(first.json().volumes.map((v: { id: string }) => v.id)).to.deep.equal([all[0].id, all[1].id]);
      expect(first.json().volumes_links[0].href).to.contain(`marker=${all[1].id}`);
      const second = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes?limit=2&marker=${all[1].id}`);
      expect(second.json().volumes[0].id).to.equal(all[2].id);
      const badMarker = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes?marker=nope`);
      expect(badMarker.statusCode).to.equal(404);
      expect(badMarker.json().itemNotFound.code).to.equal(404);
      const badLimit = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes?limit=abc`);
      expect(badLimit.statusCode).to.equal(400);
      expect(badLimit.json().badRequest.message).to.contain('/limit');
    });

    it('lets an admin list every project with all_tenants, and see hosts', async () => {
      const own = await call(app, admin, 'GET', `${admin.volumeRoot}/volumes/detail`);
      expect(
        own
          .json()
          .volumes.every(
            (v: { 'os-vol-tenant-attr:tenant_id': string }) =>
              v['os-vol-tenant-attr:tenant_id'] === admin.projectId,
          ),
      ).to.equal(true);
      const all = await call(app, admin, 'GET', `${admin.volumeRoot}/volumes/detail?all_tenants=1`);
      const projects = new Set(
        all
          .json()
          .volumes.map((v: { 'os-vol-tenant-attr:tenant_id': string }) => v['os-vol-tenant-attr:tenant_id']),
      );
      expect([...projects]).to.include.members([alice.projectId, bob.projectId]);
      expect(all.json().volumes[0]['os-vol-host-attr:host']).to.equal('aio-1');
      const onlyBob = await call(
        app,
        admin,
        'GET',
        `${admin.volumeRoot}/volumes/detail?all_tenants=1&project_id=${bob.projectId}`,
      );
      expect(
        onlyBob
          .json()
          .volumes.every(
            (v: { 'os-vol-tenant-attr:tenant_id': string }) =>
              v['os-vol-tenant-attr:tenant_id'] === bob.projectId,
          ),
      ).to.equal(true);
    });

    it("isolates projects: another project's volume is 404 to show, update, delete and extend", async () => {
      const volume = await createVolume(alice, { name: 'private' });
      await volumeStatus(alice, volume.id, ['available']);
      const url = `${bob.volumeRoot}/volumes/${volume.id}`;
      for (const [method, path, payload] of [
        ['GET', url, undefined],
        ['PUT', url, { volume: { name: 'stolen' } }],
        ['DELETE', url, undefined],
        ['POST', `${url}/action`, { 'os-extend': { new_size: 2 } }],
      ] as const) {
        const res = await call(app, bob, method, path, payload);
        expect(res.statusCode, `${method} ${path}`).to.equal(404);
        expect(res.json().itemNotFound).to.include({ code: 404 });
      }
      const adminView = await call(app, admin, 'GET', `${admin.volumeRoot}/volumes/${volume.id}`);
      expect(adminView.statusCode).to.equal(200);
    });

    it("refuses a URL naming another project than the token's (400 Malformed request url)", async () => {
      const res = await call(app, bob, 'GET', `${alice.volumeRoot}/volumes`);
      expect(res.statusCode).to.equal(400);
      expect(res.json().badRequest.message).to.contain('Malformed request url');
    });

    it('updates the name and description', async () => {
      const volume = await createVolume(alice, { name: 'old' });
      const res = await call(app, alice, 'PUT', `${alice.volumeRoot}/volumes/${volume.id}`, {
        volume: { name: 'new', description: 'renamed' },
      });
      expect(res.statusCode).to.equal(200);
      expect(res.json().volume).to.include({ name: 'new', description: 'renamed' });
      const shown = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${volume.id}`);
      expect(shown.json().volume).to.include({ name: 'new', description: 'renamed' });
      const unknownField = await call(app, alice, 'PUT', `${alice.volumeRoot}/volumes/${volume.id}`, {
        volume: { size: 5 },
      });
      expect(unknownField.statusCode).to.equal(400);
    });

    it('extends with os-extend (202) and refuses unknown actions (400)', async () => {
      const volume = await createVolume(alice);
      await volumeStatus(alice, volume.id, ['available']);
      const res = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes/${volume.id}/action`, {
        'os-extend': { new_size: 2 },
      });
      expect(res.statusCode).to.equal(202);
      expect(res.body).to.equal('');
      await waitFor(
        async () => (await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${volume.id}`)).json().volume,
        (v) => v.size === 2 && v.status === 'available',
        'the extend',
      );
      const smaller = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes/${volume.id}/action`, {
        'os-extend': { new_size: 1 },
      });
      expect(smaller.statusCode).to.equal(400);
      const unknown = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes/${volume.id}/action`, {
        'os-reset_status': { status: 'available' },
      });
      expect(unknown.statusCode).to.equal(400);
      expect(unknown.json().badRequest.message).to.contain('There is no such action: os-reset_status');
      const badArgs = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes/${volume.id}/action`, {
        'os-extend': { new_size: 'big' },
      });
      expect(badArgs.statusCode).to.equal(400);
    });

    it('deletes (202); the volume then reads as 404', async () => {
      const volume = await createVolume(alice);
      await volumeStatus(alice, volume.id, ['available']);
      const res = await call(app, alice, 'DELETE', `${alice.volumeRoot}/volumes/${volume.id}`);
      expect(res.statusCode).to.equal(202);
      await waitFor(
        async () => (await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${volume.id}`)).statusCode,
        (status) => status === 404,
        'the volume to be gone',
      );
    });

    it('answers bad input with 400 badRequest, never 500', async () => {
      const cases: [string, unknown][] = [
        ['size of wrong type', { volume: { size: 'one' } }],
        ['no size', { volume: { name: 'x' } }],
        ['size 0', { volume: { size: 0 } }],
        ['unknown top-level key', { volume: { size: 1 }, bogus: true }],
        ['unsupported option', { volume: { size: 1, imageRef: 'abc' } }],
        ['other volume type', { volume: { size: 1, volume_type: 'ssd' } }],
        ['no body', undefined],
      ];
      for (const [what, payload] of cases) {
        const res = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes`, payload);
        expect(res.statusCode, what).to.equal(400);
        expect(res.json().badRequest.code, what).to.equal(400);
      }
      const invalidJson = await app.inject({
        method: 'POST',
        url: `${alice.volumeRoot}/volumes`,
        headers: { 'x-auth-token': alice.token, 'content-type': 'application/json' },
        payload: '{"volume": {',
      });
      expect(invalidJson.statusCode).to.equal(400);
      expect(invalidJson.json().badRequest.message).to.contain('Malformed request body');
    });

    it('answers an exceeded quota with 413 overLimit', async () => {
      const res = await call(app, bob, 'POST', `${bob.volumeRoot}/volumes`, { volume: { size: 51 } });
      expect(res.statusCode).to.equal(413);
      expect(res.json().overLimit.message).to.contain('Quota exceeded for gigabytes');
    });
  });

  describe('snapshots', () => {
    it('creates, lists, shows and deletes a snapshot; a volume with snapshots cannot be deleted (400)', async () => {
      const volume = await createVolume(bob, { name: 'snapped' });
      await volumeStatus(bob, volume.id, ['available']);
      const created = await call(app, bob, 'POST', `${bob.volumeRoot}/snapshots`, {
        snapshot: { volume_id: volume.id, name: 's1', description: null, force: 'False', metadata: {} },
      });
      expect(created.statusCode, created.body).to.equal(202);
      const snapshot = created.json().snapshot;
      expect(snapshot).to.include({ name: 's1', volume_id: volume.id, size: 1, status: 'creating' });
      await waitFor(
        async () =>
          (await call(app, bob, 'GET', `${bob.volumeRoot}/snapshots/${snapshot.id}`)).json().snapshot,
        (s) => s.status === 'available',
        'the snapshot',
      );
      for (const path of ['snapshots', 'snapshots/detail']) {
        const list = await call(app, bob, 'GET', `${bob.volumeRoot}/${path}?volume_id=${volume.id}`);
        expect(list.json().snapshots.map((s: { id: string }) => s.id)).to.deep.equal([snapshot.id]);
      }
      const hidden = await call(app, alice, 'GET', `${alice.volumeRoot}/snapshots/${snapshot.id}`);
      expect(hidden.statusCode).to.equal(404);
      const blocked = await call(app, bob, 'DELETE', `${bob.volumeRoot}/volumes/${volume.id}`);
      expect(blocked.statusCode).to.equal(400);
      expect(blocked.json().badRequest.message).to.match(/^Invalid volume: .*snapshot/);
      const deleted = await call(app, bob, 'DELETE', `${bob.volumeRoot}/snapshots/${snapshot.id}`);
      expect(deleted.statusCode).to.equal(202);
    });

    it('answers a snapshot of an unknown volume with 404 and bad force values with 400', async () => {
      const unknown = await call(app, bob, 'POST', `${bob.volumeRoot}/snapshots`, {
        snapshot: { volume_id: 'nope' },
      });
      expect(unknown.statusCode).to.equal(404);
      const volume = await createVolume(bob);
      await volumeStatus(bob, volume.id, ['available']);
      const badForce = await call(app, bob, 'POST', `${bob.volumeRoot}/snapshots`, {
        snapshot: { volume_id: volume.id, force: 'maybe' },
      });
      expect(badForce.statusCode).to.equal(400);
    });
  });

  describe('services, limits, quotas', () => {
    it('os-services lists the volume services for an admin, 403 forbidden for a member', async () => {
      const res = await call(app, admin, 'GET', `${admin.volumeRoot}/os-services`);
      expect(res.statusCode).to.equal(200);
      expect(res.json().services).to.have.length(1);
      expect(res.json().services[0]).to.include({
        binary: 'stratus-volume',
        host: 'aio-1',
        zone: 'nova',
        status: 'enabled',
        state: 'up',
      });
      const member = await call(app, alice, 'GET', `${alice.volumeRoot}/os-services`);
      expect(member.statusCode).to.equal(403);
      expect(member.json().forbidden.code).to.equal(403);
    });

    it("limits show the project's usage against the quotas", async () => {
      const fresh = await login(app, USERS.admin);
      const before = (await call(app, fresh, 'GET', `${fresh.volumeRoot}/limits`)).json().limits.absolute;
      await createVolume(fresh, { size: 3 });
      const res = await call(app, fresh, 'GET', `${fresh.volumeRoot}/limits`);
      expect(res.statusCode).to.equal(200);
      const absolute = res.json().limits.absolute;
      expect(absolute).to.include({ maxTotalVolumes: 20, maxTotalVolumeGigabytes: 50 });
      expect(absolute.totalVolumesUsed).to.equal(before.totalVolumesUsed + 1);
      expect(absolute.totalGigabytesUsed).to.equal(before.totalGigabytesUsed + 3);
    });

    it('quota sets: own project (with usage), defaults; another project is 403 for a member', async () => {
      const own = await call(app, alice, 'GET', `${alice.volumeRoot}/os-quota-sets/${alice.projectId}`);
      expect(own.statusCode).to.equal(200);
      expect(own.json().quota_set).to.include({
        id: alice.projectId,
        volumes: 20,
        gigabytes: 50,
        snapshots: 10,
      });
      const usage = await call(
        app,
        alice,
        'GET',
        `${alice.volumeRoot}/os-quota-sets/${alice.projectId}?usage=True`,
      );
      expect(usage.json().quota_set.volumes.limit).to.equal(20);
      expect(usage.json().quota_set.volumes.in_use).to.be.greaterThan(0);
      const defaults = await call(
        app,
        alice,
        'GET',
        `${alice.volumeRoot}/os-quota-sets/${alice.projectId}/defaults`,
      );
      expect(defaults.json().quota_set.volumes).to.equal(20);
      const other = await call(app, alice, 'GET', `${alice.volumeRoot}/os-quota-sets/${bob.projectId}`);
      expect(other.statusCode).to.equal(403);
      const byAdmin = await call(app, admin, 'GET', `${admin.volumeRoot}/os-quota-sets/${bob.projectId}`);
      expect(byAdmin.statusCode).to.equal(200);
    });
  });

  it("serves Cinder's own paths (/v3/{project_id}/...) too", async () => {
    const res = await call(app, alice, 'GET', `/v3/${alice.projectId}/volumes`);
    expect(res.statusCode).to.equal(200);
    expect(res.json()).to.have.property('volumes');
    const unknown = await call(app, alice, 'GET', `${alice.volumeRoot}/backups`);
    expect(unknown.statusCode).to.equal(404);
    expect(unknown.json().itemNotFound.code).to.equal(404);
  });
});

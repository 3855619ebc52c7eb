import { waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { CIRROS_IMAGE_ID } from '../../src/index.js';
import { type AllInOne, startSignedIn } from '../support/all-in-one.js';
import { call, type Session } from '../support/client.js';
import { type RouteEntry, routesOf } from './support.js';

/** Path parameters that name something owned by a project. */
const OWNED_PARAMS = new Set(['project_id', 'target_id', 'volume_id', 'snapshot_id', 'server_id']);

/** A plausible body per route, so the walk reaches the handler's ownership check, not validation. */
function bodyFor(route: RouteEntry, spareVolume: string): unknown {
  const { method, url } = route;
  if (method === 'PUT' && url.endsWith('/volumes/:volume_id')) return { volume: { name: 'pwned' } };
  if (method === 'POST' && url.endsWith('/volumes/:volume_id/action'))
    return { 'os-extend': { new_size: 5 } };
  if (method === 'POST' && url.endsWith('/servers/:server_id/action')) return { 'os-stop': null };
  if (method === 'POST' && url.endsWith('/os-volume_attachments'))
    return { volumeAttachment: { volumeId: spareVolume } };
  if (method === 'POST' && url.endsWith('/volumes')) return { volume: { size: 1, name: 'planted' } };
  if (method === 'POST' && url.endsWith('/snapshots'))
    return { snapshot: { volume_id: spareVolume, name: 'stolen' } };
  return undefined;
}

describe('security: project isolation on every route', function () {
  this.timeout(60_000);

  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;
  let bob: Session;
  let admin: Session;
  const owned: Record<string, string> = {};
  let spareVolume: string;

  async function volume(session: Session, name: string): Promise<string> {
    const res = await call(app, session, 'POST', `${session.volumeRoot}/volumes`, {
      volume: { size: 1, name },
    });
    expect(res.statusCode, res.body).to.equal(202);
    const id = res.json().volume.id as string;
    await waitFor(
      async () =>
        (await call(app, session, 'GET', `${session.volumeRoot}/volumes/${id}`)).json().volume.status,
      (s) => s === 'available',
      `volume ${name}`,
    );
    return id;
  }

  before(async () => {
    ({ aio, app, alice, bob, admin } = await startSignedIn());

    const attached = await volume(alice, 'alice-attached');
    spareVolume = await volume(alice, 'alice-spare');
    const snap = await call(app, alice, 'POST', `${alice.volumeRoot}/snapshots`, {
      snapshot: { volume_id: spareVolume, name: 'alice-snap' },
    });
    expect(snap.statusCode, snap.body).to.equal(202);
    const server = await call(app, alice, 'POST', '/v2.1/servers', {
      server: { name: 'alice-vm', flavorRef: '1', imageRef: CIRROS_IMAGE_ID },
    });
    expect(server.statusCode, server.body).to.equal(202);
    const serverId = server.json().server.id as string;
    await waitFor(
      async () => (await call(app, alice, 'GET', `/v2.1/servers/${serverId}`)).json().server.status,
      (s) => s === 'ACTIVE',
      'alice-vm',
    );
    const attach = await call(app, alice, 'POST', `/v2.1/servers/${serverId}/os-volume_attachments`, {
      volumeAttachment: { volumeId: attached },
    });
    expect(attach.statusCode, attach.body).to.equal(200);
    Object.assign(owned, {
      project_id: alice.projectId,
      target_id: alice.projectId,
      volume_id: attached,
      snapshot_id: snap.json().snapshot.id as string,
      server_id: serverId,
    });
  });

  after(async () => aio?.stop());

  function request(route: RouteEntry, session: Session, params: Record<string, string>): InjectOptions {
    const url = route.url.replace(/:([a-z_]+)/g, (_m, name: string) => params[name] ?? name);
    const payload = bodyFor(route, spareVolume);
    const options: InjectOptions = {
      method: route.method as NonNullable<InjectOptions['method']>,
      url,
      headers: { 'x-auth-token': session.token },
    };
    if (payload !== undefined) options.payload = payload as object;
    return options;
  }

  it("refuses another project's token on every route naming Alice's project or resources (403/404, or Cinder's 400 for a foreign project URL)", async () => {
    const routes = routesOf(app).filter((r) =>
      [...r.url.matchAll(/:([a-z_]+)/g)].some((m) => OWNED_PARAMS.has(m[1] as string)),
    );
    expect(routes.length).to.be.greaterThan(30);
    const failures: string[] = [];
    for (const route of routes) {
      // Alice's ids everywhere, and Bob's own project in the URL with Alice's resource ids.
      const variants = [{ ...owned }, { ...owned, project_id: bob.projectId, target_id: bob.projectId }];
      for (const params of variants) {
        const onlyProject = !/:(volume_id|snapshot_id|server_id)/.test(route.url);
        if (onlyProject && params.project_id === bob.projectId) continue; // Bob's own collection: allowed.
        const res = await app.inject(request(route, bob, params));
        // Cinder answers a URL naming another project than the token's with 400 "Malformed
        // request url" before any handler runs; Stratus keeps that, and says why.
        const projectRefused =
          res.statusCode === 400 &&
          (route.method === 'HEAD' || /names project .* the token is scoped to/.test(res.body));
        if (res.statusCode !== 403 && res.statusCode !== 404 && !projectRefused) {
          failures.push(
            `${route.method} ${route.url} [project ${params.project_id === bob.projectId ? 'bob' : 'alice'}] -> ${res.statusCode} ${res.body.slice(0, 200)}`,
          );
        }
      }
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });

  it("never lists Alice's resources to Bob, whatever the filters", async () => {
    const secrets = Object.entries(owned)
      .filter(([k]) => k !== 'target_id')
      .map(([, v]) => v)
      .concat(spareVolume);
    const lists = routesOf(app).filter(
      (r) =>
        r.method === 'GET' && !/:(volume_id|snapshot_id|server_id|target_id|flavor_id|image_id)/.test(r.url),
    );
    const leaks: string[] = [];
    for (const route of lists) {
      for (const query of [
        '',
        '?all_tenants=1',
        `?all_tenants=1&project_id=${alice.projectId}`,
        `?project_id=${alice.projectId}&tenant_id=${alice.projectId}`,
      ]) {
        const url = route.url.replace(/:project_id/g, bob.projectId) + query;
        const res = await app.inject({ method: 'GET', url, headers: { 'x-auth-token': bob.token } });
        const found = secrets.filter((s) => res.body.includes(s));
        if (found.length > 0) leaks.push(`GET ${url} -> ${res.statusCode} shows ${found.join(', ')}`);
      }
    }
    expect(leaks).to.deep.equal([]);
  });

  it("left Alice's resources untouched, and an admin still sees them", async () => {
    const vol = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${owned.volume_id}`);
    expect(vol.json().volume).to.include({ name: 'alice-attached', size: 1, status: 'in-use' });
    const server = await call(app, alice, 'GET', `/v2.1/servers/${owned.server_id}`);
    expect(server.json().server).to.include({ status: 'ACTIVE', name: 'alice-vm' });
    const snaps = await call(app, alice, 'GET', `${alice.volumeRoot}/snapshots`);
    expect(snaps.json().snapshots.map((s: { id: string }) => s.id)).to.include(owned.snapshot_id);
    const all = await call(app, admin, 'GET', `${admin.volumeRoot}/volumes?all_tenants=1`);
    expect(all.json().volumes.map((v: { id: string }) => v.id)).to.include(owned.volume_id);
    const servers = await call(app, admin, 'GET', '/v2.1/servers?all_tenants=1');
    expect(servers.json().servers.map((s: { id: string }) => s.id)).to.include(owned.server_id);
  });
});

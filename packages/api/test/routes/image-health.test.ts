import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { CIRROS_IMAGE_ID } from '../../src/index.js';
import { AllInOne, USERS } from '../support/all-in-one.js';
import { call, login, type Session } from '../support/client.js';

const SECOND_IMAGE = '0b6a2c1e-1111-4222-8333-944455556666';

describe('Image v2, health and metrics', () => {
  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;

  before(async () => {
    aio = await AllInOne.start();
    app = await aio.testApp({
      images: [
        { id: CIRROS_IMAGE_ID, name: 'cirros', sizeBytes: 1024 },
        { id: SECOND_IMAGE, name: 'debian-12', sizeBytes: 2048, diskFormat: 'raw' },
      ],
    });
    alice = await login(app, USERS.alice);
  });
  after(async () => aio?.stop());

  describe('images', () => {
    it('GET /image lists versions with 300; /image/versions with 200', async () => {
      const root = await call(app, undefined, 'GET', '/image');
      expect(root.statusCode).to.equal(300);
      expect(root.json().versions[0].links[0].href).to.equal('http://localhost:80/image/v2/');
      expect((await call(app, undefined, 'GET', '/image/versions')).statusCode).to.equal(200);
    });

    it('lists the configured images in the Glance view, filters by name, pages', async () => {
      const all = await call(app, alice, 'GET', '/image/v2/images');
      expect(all.statusCode).to.equal(200);
      expect(all.json().images.map((i: { name: string }) => i.name)).to.deep.equal(['cirros', 'debian-12']);
      expect(all.json().images[1]).to.include({
        status: 'active',
        size: 2048,
        disk_format: 'raw',
        visibility: 'public',
      });
      const byName = await call(app, alice, 'GET', '/image/v2/images?name=cirros');
      expect(byName.json().images.map((i: { id: string }) => i.id)).to.deep.equal([CIRROS_IMAGE_ID]);
      const page = await call(app, alice, 'GET', '/image/v2/images?limit=1');
      expect(page.json().images).to.have.length(1);
      expect(page.json().next).to.contain(`marker=${CIRROS_IMAGE_ID}`);
    });

    it('shows an image by id; an unknown one (or a name) is 404 in plain text, as Glance', async () => {
      const one = await call(app, alice, 'GET', `/image/v2/images/${SECOND_IMAGE}`);
      expect(one.json()).to.include({ id: SECOND_IMAGE, name: 'debian-12' });
      const byName = await call(app, alice, 'GET', '/image/v2/images/cirros');
      expect(byName.statusCode).to.equal(404);
      expect(byName.headers['content-type']).to.contain('text/plain');
      expect(byName.body).to.match(/^404 Not Found/);
    });
  });

  describe('health and metrics', () => {
    it('/healthz answers 200 without a token', async () => {
      const res = await call(app, undefined, 'GET', '/healthz');
      expect(res.statusCode).to.equal(200);
      expect(res.json()).to.deep.equal({ status: 'ok', checks: { database: 'ok' } });
    });

    it('/metrics counts requests by method, route pattern and status, with latency histograms', async () => {
      // A fresh app: its counters start at zero.
      const fresh = await aio.testApp();
      await call(fresh, alice, 'GET', `/image/v2/images/${CIRROS_IMAGE_ID}`);
      await call(fresh, alice, 'GET', '/image/v2/images/nope');
      await call(fresh, undefined, 'GET', '/no/such/route');
      const res = await call(fresh, undefined, 'GET', '/metrics');
      expect(res.statusCode).to.equal(200);
      expect(res.headers['content-type']).to.contain('text/plain; version=0.0.4');
      const text = res.body;
      expect(text).to.contain('# TYPE stratus_api_requests_total counter');
      expect(text).to.match(
        /stratus_api_requests_total\{method="GET",route="\/image\/v2\/images\/:image_id",status="200"\} 1\n/,
      );
      expect(text).to.match(
        /stratus_api_requests_total\{method="GET",route="\/image\/v2\/images\/:image_id",status="404"\} 1\n/,
      );
      expect(text).to.match(/stratus_api_requests_total\{method="GET",route="unmatched",status="404"\} 1\n/);
      expect(text).to.match(
        /stratus_api_request_duration_seconds_count\{method="GET",route="\/image\/v2\/images\/:image_id"\} 2\n/,
      );
      expect(text).to.contain('le="+Inf"');
    });

    it('answers unknown routes with the format of the API they fall under', async () => {
      const compute = await call(app, alice, 'GET', '/v2.1/os-hypervisors');
      expect(compute.statusCode).to.equal(404);
      expect(compute.json().itemNotFound.code).to.equal(404);
      const identity = await call(app, alice, 'GET', '/v3/users');
      expect(identity.statusCode).to.equal(404);
      expect(identity.json().error.title).to.equal('Not Found');
    });
  });

  it('the running API service is registered as stratus-api in the service registry', async () => {
    const record = await aio.apiService.record;
    expect(record).to.include({ binary: 'stratus-api', topic: 'api', host: 'aio-1' });
    const res = await fetch(`${aio.url}/healthz`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('x-openstack-request-id')).to.match(/^req-/);
  });
});

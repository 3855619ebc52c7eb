import { RpcClient } from '@stratus/core';
import { expect } from 'chai';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { buildApp } from '../../src/index.js';
import { AllInOne, USERS } from '../support/all-in-one.js';
import { call, login, type Session } from '../support/client.js';
import { captureLogger, isTypedFault, type RouteEntry, routesOf } from './support.js';

const FUZZ_RUNS = Number(process.env.STRATUS_FUZZ_RUNS ?? 400);

const printable = (max: number) => fc.stringMatching(new RegExp(`^[\\x20-\\x7e]{0,${max}}$`));

/** Values for path parameters: real ids, garbage, traversal, encodings, huge. */
const paramValue = (real: readonly string[]) =>
  fc.oneof(
    fc.constantFrom(...real),
    fc.constantFrom(
      '..',
      '%2e%2e',
      '..%2f..%2fetc%2fpasswd',
      '%00',
      '__proto__',
      'constructor',
      '-rf',
      '--force',
      '$(id)',
      'a;b',
    ),
    printable(40).map((s) => encodeURIComponent(s)),
    fc.constant('x'.repeat(600)),
    fc.uuid(),
  );

/** JSON-ish bodies, with the keys that pollute prototypes. */
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(
    fc.constantFrom(
      '__proto__',
      'constructor',
      'volume',
      'server',
      'snapshot',
      'auth',
      'os-extend',
      'reboot',
    ),
    fc.jsonValue({ maxDepth: 3 }),
  ),
  fc.record({
    volume: fc.record(
      {
        size: fc.oneof(fc.integer(), fc.string(), fc.double(), fc.constant(null)),
        name: fc.oneof(fc.string({ maxLength: 300 }), fc.integer()),
        description: fc.string(),
        metadata: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())),
        snapshot_id: fc.oneof(fc.uuid(), fc.string()),
      },
      { requiredKeys: [] },
    ),
  }),
  fc.record({
    server: fc.record(
      {
        name: fc.string(),
        imageRef: fc.oneof(fc.uuid(), fc.string()),
        flavorRef: fc.oneof(fc.string(), fc.integer()),
        block_device_mapping_v2: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
  }),
  fc
    .tuple(
      fc.constantFrom(
        'os-extend',
        'reboot',
        'os-start',
        'os-stop',
        'pause',
        'unpause',
        'suspend',
        'resume',
        'lock',
        'unlock',
        'rescue',
        'unrescue',
        'os-getConsoleOutput',
        'createImage',
      ),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map(([action, args]) => ({ [action]: args })),
);

interface FuzzRequest {
  readonly route: RouteEntry;
  readonly method: string;
  readonly params: string[];
  readonly query: string;
  readonly token: 'valid' | 'none' | 'garbage' | 'other';
  readonly garbageToken: string;
  readonly payload:
    | { kind: 'none' }
    | { kind: 'json'; value: unknown }
    | { kind: 'raw'; text: string; type: string };
  readonly headers: Record<string, string>;
}

describe('security: fuzzing the HTTP API', function () {
  this.timeout(300_000);

  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;
  let bob: Session;
  let routes: RouteEntry[];
  let realIds: string[];
  let logs: ReturnType<typeof captureLogger>;

  before(async () => {
    aio = await AllInOne.start();
    logs = captureLogger();
    app = await buildApp({
      store: aio.store,
      rpc: new RpcClient(await aio.transport(), { defaultTimeoutMs: 5000 }),
      logger: logs.logger,
      // Every response body is checked against its route's schema: a mismatch is a 500 and fails here.
      validateResponses: true,
    });
    aio.apps.push(app);
    alice = await login(app, USERS.alice);
    bob = await login(app, USERS.bob);
    const volume = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes`, {
      volume: { size: 1, name: 'seed' },
    });
    expect(volume.statusCode, volume.body).to.equal(202);
    realIds = [alice.projectId, bob.projectId, volume.json().volume.id, '1', 'm1.tiny', 'default'];
    routes = routesOf(app);
  });

  after(async () => aio?.stop());

  it('finds the routes it walks in Fastify’s own table', () => {
    const urls = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const expected of [
      'POST /v3/auth/tokens',
      'POST /volume/v3/:project_id/volumes/:volume_id/action',
      'DELETE /v2.1/servers/:server_id/os-volume_attachments/:volume_id',
      'GET /image/v2/images/:image_id',
    ]) {
      expect(urls.has(expected), expected).to.equal(true);
    }
    expect(routes.length).to.be.greaterThan(60);
  });

  function requestArb(): fc.Arbitrary<FuzzRequest> {
    return fc.record({
      route: fc.constantFrom(...routes),
      method: fc.oneof(
        { weight: 6, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
      ),
      params: fc.array(paramValue(realIds), { minLength: 3, maxLength: 3 }),
      query: fc.oneof(
        fc.constant(''),
        fc.constantFrom(
          '?all_tenants=1',
          '?limit=-1',
          '?limit=abc',
          '?marker=zzz',
          '?nocatalog',
          '?sort=__proto__',
          '?limit=99999999999999999999',
        ),
        fc
          .dictionary(printable(10), printable(20), { maxKeys: 3 })
          .map((q) => `?${new URLSearchParams(q).toString()}`),
      ),
      token: fc.constantFrom('valid', 'none', 'garbage', 'other'),
      garbageToken: printable(600),
      payload: fc.oneof(
        fc.constant({ kind: 'none' as const }),
        body.map((value) => ({ kind: 'json' as const, value })),
        fc
          .record({
            text: fc.oneof(
              printable(200),
              fc.constantFrom('{', '{"a":', '[1,2', '{"__proto__":{"x":1}}', 'null', '"s"', '1e999'),
            ),
            type: fc.constantFrom(
              'application/json',
              'application/json; charset=utf-8',
              'text/plain',
              'application/x-www-form-urlencoded',
              'application/octet-stream',
              'application/json;charset=latin1',
            ),
          })
          .map((r) => ({ kind: 'raw' as const, ...r })),
      ),
      headers: fc.dictionary(
        fc.constantFrom(
          'x-openstack-request-id',
          'openstack-api-version',
          'x-openstack-nova-api-version',
          'accept',
          'x-subject-token',
          'x-forwarded-for',
          'host',
          'content-length-x',
        ),
        printable(60),
        { maxKeys: 3 },
      ),
    });
  }

  function toInject(r: FuzzRequest): InjectOptions {
    let i = 0;
    const url = r.route.url.replace(/:[a-z_]+/g, () => r.params[i++ % 3] as string) + r.query;
    const method = (r.method || r.route.method) as NonNullable<InjectOptions['method']>;
    const headers: Record<string, string> = { ...r.headers };
    if (r.token === 'valid') headers['x-auth-token'] = alice.token;
    if (r.token === 'other') headers['x-auth-token'] = bob.token;
    if (r.token === 'garbage') headers['x-auth-token'] = r.garbageToken;
    const options: InjectOptions = { method, url, headers };
    if (r.payload.kind === 'json') options.payload = JSON.stringify(r.payload.value);
    if (r.payload.kind === 'json') headers['content-type'] = 'application/json';
    if (r.payload.kind === 'raw') {
      options.payload = r.payload.text;
      headers['content-type'] = r.payload.type;
    }
    return options;
  }

  it('answers random requests on every route without a 5xx, failures in the upstream format', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(requestArb(), async (r) => {
        const options = toInject(r);
        const res = await app.inject(options);
        seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
        const what = `${options.method} ${String(options.url).slice(0, 200)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
        expect(res.statusCode, what).to.be.below(500);
        if (res.statusCode >= 400) expect(isTypedFault(res, String(options.method)), what).to.equal(true);
      }),
      { numRuns: FUZZ_RUNS },
    );
    // The generator reached handlers (2xx), auth (401), validation (400) and routing (404).
    for (const status of [200, 400, 401, 404])
      expect(seen.get(status) ?? 0, `status ${status}`).to.be.greaterThan(0);
  });

  it('refuses oversized bodies with 413 on every route that takes one', async () => {
    const big = JSON.stringify({ volume: { size: 1, name: 'x'.repeat(2 * 1024 * 1024) } });
    for (const route of routes.filter((r) => r.method === 'POST' || r.method === 'PUT')) {
      const url = route.url
        .replace(/:project_id/g, alice.projectId)
        .replace(/:[a-z_]+/g, realIds[2] as string);
      const res = await app.inject({
        method: route.method as 'POST',
        url,
        payload: big,
        headers: { 'content-type': 'application/json', 'x-auth-token': alice.token },
      });
      expect(res.statusCode, `${route.method} ${url}`).to.equal(413);
      expect(isTypedFault(res, route.method), res.body).to.equal(true);
    }
  });

  it('leaves no trace of the fuzzing: no error logs, no prototype pollution, still serving', async () => {
    const errors = logs.lines.filter((l) => (l.level as number) >= 50);
    expect(errors.map((l) => `${l.msg}`)).to.deep.equal([]);
    expect(({} as Record<string, unknown>).x).to.equal(undefined);
    const res = await call(app, alice, 'GET', `${alice.volumeRoot}/volumes`);
    expect(res.statusCode).to.equal(200);
  });
});

import { createPlugin, definePlugin, RequestContext, StratusError, silentLogger } from '@stratus/core';
import { waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
// driver-lvm is not a dependency of @stratus/api: its source is loaded from the workspace (it
// resolves @stratus/core to the same built copy), with its recording fake of lvm2 + tgt.
import { LvmVolumeDriver, volume as lvmPlugin } from '../../../driver-lvm/src/index.js';
import { FakeLvmHost } from '../../../driver-lvm/test/support/fake-lvm.js';
import { CIRROS_IMAGE_ID } from '../../src/index.js';
import { AllInOne, USERS } from '../support/all-in-one.js';
import { call, login, type Session } from '../support/client.js';

/** Shell metacharacters, option-looking values and path traversal. */
const HOSTILE = [
  '--force',
  '-rf',
  '-',
  '; rm -rf /',
  '$(reboot)',
  '`id`',
  '../../etc/passwd',
  '/dev/sda',
  'a b',
  'x\ny',
  '| tee /etc/shadow',
  '&& halt',
  "vol'1",
  'vol"1',
  '--name=evil',
  'snapshot_rimage',
];

const hostileArb = fc.oneof(
  fc.constantFrom(...HOSTILE),
  fc
    .tuple(
      fc.stringMatching(/^[a-z0-9]{0,6}$/),
      fc.constantFrom(';', '|', '&', '$(', '`', '>', '<', '\n', ' ', '../', '\\', '"', "'", '*', '\0'),
      fc.string({ maxLength: 6 }),
    )
    .map(([a, m, b]) => a + m + b),
  fc.string({ maxLength: 10 }).map((s) => `-${s}`),
);

/**
 * Commands other than the read-only reports (`vgs`, `lvs`) the heartbeat's stats refresh runs on
 * its own schedule, as text.
 */
function changes(runs: readonly { argv: readonly string[] }[]): string[] {
  return runs.filter((r) => !r.argv.includes('vgs') && !r.argv.includes('lvs')).map((r) => r.argv.join(' '));
}

describe('security: hostile names from the API down to the LVM driver', function () {
  this.timeout(60_000);

  /** The volume service runs the real LVM driver on this recording fake of lvm2 + tgt. */
  const lvm = new FakeLvmHost('volumes', 100);
  let aio: AllInOne;
  let app: FastifyInstance;
  let alice: Session;
  let volumeId: string;
  let serverId: string;

  async function available(id: string): Promise<void> {
    await waitFor(
      async () => (await call(app, alice, 'GET', `${alice.volumeRoot}/volumes/${id}`)).json().volume?.status,
      (s) => s === 'available' || s === 'error',
      `volume ${id}`,
    );
  }

  before(async () => {
    // The real manifest, with the recording fake as the executor the service would give it.
    const plugin = definePlugin({
      ...lvmPlugin,
      create: (config, env) => new LvmVolumeDriver(config, { ...env, executor: lvm.executor }),
    });
    aio = await AllInOne.start({
      host: 'st-1',
      volumeDriver: { plugin, config: { volumeGroup: 'volumes', targetHelper: 'tgtadm' } },
      apiConfig: { quotas: { volumes: 100, gigabytes: 1000, snapshots: 100 } },
    });
    app = aio.app;
    alice = await login(app, USERS.alice);
  });
  after(async () => aio?.stop());

  it('keeps display names, descriptions and metadata off the command line', async () => {
    for (const value of HOSTILE) {
      const res = await call(app, alice, 'POST', `${alice.volumeRoot}/volumes`, {
        volume: { size: 1, name: value, description: value },
      });
      // Display names are free text: accepted, stored, shown, and never a command argument.
      expect(res.statusCode, `${JSON.stringify(value)}: ${res.body}`).to.equal(202);
      expect(res.json().volume.name).to.equal(value);
      volumeId = res.json().volume.id;
      await available(volumeId);
      const snap = await call(app, alice, 'POST', `${alice.volumeRoot}/snapshots`, {
        snapshot: { volume_id: volumeId, name: value, description: value },
      });
      expect(snap.statusCode, snap.body).to.equal(202);
    }
    const created = lvm.ran('lvcreate');
    expect(created.length).to.be.greaterThan(HOSTILE.length);
    for (const run of created) {
      const name = run.argv.find((a) => a.startsWith('--name='));
      expect(name, JSON.stringify(run.argv)).to.match(
        /^--name=_?(volume|snapshot)-[0-9a-f]{8}-[0-9a-f-]{27}$/,
      );
    }
    const every = lvm.commands.flat();
    for (const value of HOSTILE.filter((v) => v !== '--force' && v !== '-')) {
      expect(
        every.filter((a) => a.includes(value)),
        JSON.stringify(value),
      ).to.deep.equal([]);
    }
  });

  it('refuses hostile ids and sizes in every volume, snapshot and attach request before any command runs', async () => {
    const server = await call(app, alice, 'POST', '/v2.1/servers', {
      server: { name: 'vm', flavorRef: '1', imageRef: CIRROS_IMAGE_ID },
    });
    expect(server.statusCode, server.body).to.equal(202);
    serverId = server.json().server.id;
    await waitFor(
      async () => (await call(app, alice, 'GET', `/v2.1/servers/${serverId}`)).json().server.status,
      (s) => s === 'ACTIVE',
      'server',
    );
    const before = lvm.runs.length;
    const root = alice.volumeRoot;
    for (const value of HOSTILE) {
      const id = encodeURIComponent(value);
      const attempts: [string, string, unknown?][] = [
        ['GET', `${root}/volumes/${id}`],
        ['DELETE', `${root}/volumes/${id}`],
        ['PUT', `${root}/volumes/${id}`, { volume: { name: 'x' } }],
        ['POST', `${root}/volumes/${id}/action`, { 'os-extend': { new_size: 2 } }],
        ['POST', `${root}/volumes/${volumeId}/action`, { 'os-extend': { new_size: value } }],
        ['DELETE', `${root}/snapshots/${id}`],
        ['POST', `${root}/snapshots`, { snapshot: { volume_id: value } }],
        ['POST', `${root}/volumes`, { volume: { size: value } }],
        ['POST', `${root}/volumes`, { volume: { size: 1, snapshot_id: value } }],
        [
          'POST',
          `/v2.1/servers/${serverId}/os-volume_attachments`,
          { volumeAttachment: { volumeId: value } },
        ],
        ['DELETE', `/v2.1/servers/${serverId}/os-volume_attachments/${id}`],
      ];
      for (const [method, url, body] of attempts) {
        const res = await call(app, alice, method as 'GET', url, body);
        expect(res.statusCode, `${method} ${url} ${JSON.stringify(body)}: ${res.body}`).to.be.oneOf([
          400, 404,
        ]);
      }
    }
    const ran = changes(lvm.runs.slice(before));
    expect(ran, ran.join('\n')).to.deep.equal([]);
  });

  it('refuses a hostile initiator reaching the volume service over RPC, before tgtadm runs', async () => {
    const rpc = await aio.rpcClient({ topic: 'volume' });
    const before = lvm.runs.length;
    const initiators = [
      ...HOSTILE,
      'iqn.2010-10.org.x:a;b',
      'iqn.2010-10.org.x:a b',
      'iqn.2010-10.org.x:$(id)',
      '-iqn.2010-10.org.x',
    ];
    for (const initiator of initiators) {
      try {
        await rpc.call(RequestContext.admin(), { host: 'st-1' }, 'initialize_connection', {
          volume_id: volumeId,
          connector: { host: 'evil', initiator },
        });
        expect.fail(`accepted initiator ${JSON.stringify(initiator)}`);
      } catch (error) {
        expect(StratusError.is(error, 'INVALID_INPUT'), `${JSON.stringify(initiator)}: ${error}`).to.equal(
          true,
        );
      }
    }
    const ran = changes(lvm.runs.slice(before));
    expect(ran, ran.join('\n')).to.deep.equal([]);
    // The honest path still works: the compute host's own initiator attaches.
    const attach = await call(app, alice, 'POST', `/v2.1/servers/${serverId}/os-volume_attachments`, {
      volumeAttachment: { volumeId },
    });
    expect(attach.statusCode, attach.body).to.equal(200);
    expect(lvm.ran('tgtadm').length).to.be.greaterThan(0);
  });

  it('the driver itself refuses hostile volume and snapshot names, and config refuses a hostile VG (property)', async () => {
    const host = new FakeLvmHost('volumes', 100);
    const driver = new LvmVolumeDriver(await resolvedConfig({ volumeGroup: 'volumes' }), {
      host: 'st-1',
      logger: silentLogger(),
      executor: host.executor,
      dataDir: '/nonexistent',
    });
    await fc.assert(
      fc.asyncProperty(hostileArb, async (name) => {
        const volume = { id: 'v1', name, sizeGiB: 1 };
        const snapshot = { id: 's1', name, volumeId: 'v1', volumeName: name, volumeSizeGiB: 1 };
        const attempts = [
          () => driver.createVolume(volume),
          () => driver.deleteVolume(volume),
          () => driver.extendVolume(volume, 2),
          () => driver.createExport(volume),
          () => driver.initializeConnection(volume, { host: 'h', initiator: 'iqn.2010-10.org.stratus:h' }),
          () => driver.createSnapshot(snapshot),
          () => driver.deleteSnapshot(snapshot),
        ];
        for (const attempt of attempts) {
          try {
            await attempt();
            expect.fail(`accepted ${JSON.stringify(name)}`);
          } catch (error) {
            expect(StratusError.is(error, 'INVALID_INPUT'), `${JSON.stringify(name)}: ${error}`).to.equal(
              true,
            );
          }
        }
      }),
      { numRuns: 200 },
    );
    expect(host.runs).to.deep.equal([]);
    for (const vg of ['-rf', '--force', '../vg', 'vg;id', 'vg name', '$(id)']) {
      try {
        await resolvedConfig({ volumeGroup: vg });
        expect.fail(`accepted volume group ${vg}`);
      } catch (error) {
        expect(StratusError.is(error, 'CONFIG_INVALID'), String(error)).to.equal(true);
      }
    }
  });
});

/** The LVM driver's config after defaults and validation, as a service would resolve it. */
async function resolvedConfig(
  raw: Record<string, unknown>,
): Promise<ConstructorParameters<typeof LvmVolumeDriver>[0]> {
  let seen: unknown;
  const probe = {
    ...lvmPlugin,
    create: (config: unknown) => {
      seen = config;
      return {};
    },
  };
  await createPlugin(probe as never, raw, {
    host: 'st-1',
    logger: silentLogger(),
    dataDir: '/nonexistent',
  } as never);
  return seen as ConstructorParameters<typeof LvmVolumeDriver>[0];
}

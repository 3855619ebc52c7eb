import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '@stratus/testkit/fixtures';
import { expect } from 'chai';
import { AllInOne, USERS } from './support/all-in-one.js';

const run = promisify(execFile);
const OPENSTACK = '/usr/bin/openstack';

/**
 * Debian's python3-openstackclient driven as a user would, against a running all-in-one Stratus
 * (API + volume + compute, fake drivers). Skipped when the client is not installed, except under CI.
 */
describe('python3-openstackclient against a running Stratus', function () {
  this.timeout(180_000);
  let aio: AllInOne;
  let home: string;

  before(async function () {
    if (!existsSync(OPENSTACK)) {
      if (process.env.CI)
        throw new Error(`${OPENSTACK} is missing: apt-get install -y python3-openstackclient`);
      console.log(`      skipped: ${OPENSTACK} is missing (apt-get install -y python3-openstackclient)`);
      this.skip();
    }
    home = mkdtempSync(path.join(tmpdir(), 'stratus-osc-'));
    aio = await AllInOne.start();
  });
  after(async () => {
    await aio?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** `openstack <args> -f json` as `user`, parsed; no shell, no clouds.yaml, no OS_* from the caller. */
  async function openstack(
    args: string[],
    user: (typeof USERS)[keyof typeof USERS] = USERS.admin,
  ): Promise<unknown> {
    const argv = [
      '--os-auth-url',
      `${aio.url}/v3`,
      '--os-username',
      user.name,
      '--os-password',
      user.password,
      '--os-project-name',
      user.project,
      '--os-user-domain-name',
      'Default',
      '--os-project-domain-name',
      'Default',
      '--os-identity-api-version',
      '3',
      '--os-region-name',
      'RegionOne',
      ...args,
    ];
    const wantsJson = args.includes('-f');
    try {
      const { stdout } = await run(OPENSTACK, argv, {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' },
        timeout: 60_000,
        maxBuffer: 4 * 1024 * 1024,
      });
      return wantsJson ? JSON.parse(stdout) : stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string; message: string };
      throw new Error(`openstack ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
    }
  }

  it('creates a volume and a server, attaches, lists, and deletes, as a user would', async () => {
    const token = (await openstack(['token', 'issue', '-f', 'json'])) as { id: string; project_id: string };
    expect(token.id).to.be.a('string');

    const volume = (await openstack(['volume', 'create', '--size', '1', 'osc-vol', '-f', 'json'])) as {
      id: string;
      size: number;
    };
    expect(volume.size).to.equal(1);
    await waitFor(
      async () => (await openstack(['volume', 'show', volume.id, '-f', 'json'])) as { status: string },
      (v) => v.status === 'available',
      'the volume to be available',
      { timeoutMs: 30_000 },
    );

    const server = (await openstack([
      'server',
      'create',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--wait',
      'osc-server',
      '-f',
      'json',
    ])) as { id: string; status: string; flavor: string; image: string };
    expect(server.status).to.equal('ACTIVE');
    expect(server.flavor).to.contain('m1.tiny');
    expect(server.image).to.contain('cirros');

    await openstack(['server', 'add', 'volume', 'osc-server', 'osc-vol']);
    const listed = (await openstack(['volume', 'list', '-f', 'json'])) as {
      ID: string;
      Status: string;
      'Attached to': { server_id: string; device: string }[];
    }[];
    const row = listed.find((v) => v.ID === volume.id);
    expect(row?.Status).to.equal('in-use');
    expect(row?.['Attached to'][0]).to.include({ server_id: server.id, device: '/dev/vdb' });

    const services = (await openstack(['volume', 'service', 'list', '-f', 'json'])) as {
      Binary: string;
      State: string;
    }[];
    expect(services.map((s) => [s.Binary, s.State])).to.deep.equal([['stratus-volume', 'up']]);

    const servers = (await openstack(['server', 'list', '-f', 'json'])) as { Name: string; Status: string }[];
    expect(servers.map((s) => [s.Name, s.Status])).to.deep.equal([['osc-server', 'ACTIVE']]);

    await openstack(['server', 'delete', '--wait', 'osc-server']);
    expect(await openstack(['server', 'list', '-f', 'json'])).to.deep.equal([]);
    // Terminating the server detached its volume.
    await waitFor(
      async () => (await openstack(['volume', 'show', volume.id, '-f', 'json'])) as { status: string },
      (v) => v.status === 'available',
      'the volume to be detached',
      { timeoutMs: 30_000 },
    );
    await openstack(['volume', 'delete', volume.id]);
  });

  it("keeps projects apart: a member sees only its own project's volumes", async () => {
    const mine = (await openstack(
      ['volume', 'create', '--size', '1', 'alice-vol', '-f', 'json'],
      USERS.alice,
    )) as {
      id: string;
    };
    const bobs = (await openstack(['volume', 'list', '-f', 'json'], USERS.bob)) as { ID: string }[];
    expect(bobs.map((v) => v.ID)).to.not.include(mine.id);
    const alices = (await openstack(['volume', 'list', '-f', 'json'], USERS.alice)) as { ID: string }[];
    expect(alices.map((v) => v.ID)).to.include(mine.id);
    let refused = '';
    try {
      await openstack(['volume', 'service', 'list', '-f', 'json'], USERS.alice);
    } catch (error) {
      refused = (error as Error).message;
    }
    expect(refused).to.match(/403|Policy doesn't allow/);
  });
});

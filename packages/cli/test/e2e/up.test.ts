import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ensureBuilt, startUp, stratus, tempDir, type UpProcess } from '../support/cli.js';

interface Volume {
  id: string;
  name: string;
  status: string;
  size: number;
  attachments: { server_id: string; device: string }[];
}

describe('stratus up and the client commands (real binary)', function () {
  this.timeout(180_000);
  let dir: string;
  let remove: () => Promise<void>;
  let up: UpProcess | undefined;
  const cli = (args: string[], env?: Record<string, string>, input?: string) =>
    stratus(args, { cwd: dir, ...(env ? { env } : {}), ...(input !== undefined ? { input } : {}) });
  const json = async <T>(args: string[]): Promise<T> => {
    const result = await cli([...args, '--json']);
    expect(result.code, `${args.join(' ')}: ${result.stderr}`).to.equal(0);
    return JSON.parse(result.stdout) as T;
  };

  before(async () => {
    await ensureBuilt();
    ({ dir, remove } = await tempDir());
    up = await startUp(dir);
  });
  after(async () => {
    await up?.stop();
    await remove();
  });

  it('prints the API, the admin login once, and writes a 0600 profile the folder uses', async () => {
    const { stdout } = (up as UpProcess).output();
    expect(stdout).to.match(/login\s+user admin, password \S+, project admin/);
    const file = path.join(dir, '.stratus', 'profile.json');
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    const profile = JSON.parse(await readFile(file, 'utf8'));
    expect(profile).to.include({ endpoint: (up as UpProcess).endpoint, username: 'admin', project: 'admin' });
    expect(stdout).to.include(`password ${profile.password}`);
  });

  it('creates a volume and a server with --wait, attaches it, and lists both as JSON', async () => {
    const volume = await json<Volume>(['volume', 'create', '--size', '1', '--name', 'data', '--wait']);
    expect(volume).to.include({ name: 'data', status: 'available', size: 1 });

    const server = await json<{ id: string; status: string }>([
      'server',
      'create',
      'web',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--wait',
    ]);
    expect(server.status).to.equal('ACTIVE');

    const attach = await cli(['server', 'attach', 'web', 'data', '--wait']);
    expect(attach.code, attach.stderr).to.equal(0);
    expect(attach.stderr).to.equal('');

    const volumes = await json<Volume[]>(['volume', 'list']);
    expect(volumes).to.have.length(1);
    expect(volumes[0]).to.include({ id: volume.id, status: 'in-use' });
    expect(volumes[0]?.attachments[0]?.server_id).to.equal(server.id);
    const servers = await json<{ id: string; name: string }[]>(['server', 'list']);
    expect(servers.map((s) => s.name)).to.deep.equal(['web']);
  });

  it('lists the registered services with topic, state and heartbeat age', async () => {
    const services = await json<
      { binary: string; topic: string; state: string; lastHeartbeatAgeSec: number }[]
    >(['service', 'list']);
    expect(services.map((s) => s.binary).sort()).to.deep.equal([
      'stratus-api',
      'stratus-compute',
      'stratus-volume',
    ]);
    expect(services.every((s) => s.state === 'up' && s.lastHeartbeatAgeSec < 60)).to.equal(true);
    expect(services.find((s) => s.binary === 'stratus-volume')?.topic).to.equal('volume');

    const disabled = await cli([
      'service',
      'disable',
      (await json<{ host: string }[]>(['service', 'list']))[0]?.host ?? '',
      'volume',
      '--reason',
      'maintenance',
    ]);
    expect(disabled.code, disabled.stderr).to.equal(0);
    expect(disabled.stdout).to.include('disabled (maintenance)');
    const missing = await cli(['service', 'enable', 'no-such-host', 'volume']);
    expect(missing.code).to.equal(3);
  });

  it('exits 3 for a missing resource and 2 for a usage error, with one line each', async () => {
    const missing = await cli(['volume', 'show', 'nope']);
    expect(missing.code).to.equal(3);
    expect(missing.stderr).to.equal('stratus: volume nope could not be found\n');
    const usage = await cli(['server', 'create', 'x', '--flavor', 'm1.tiny']);
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.include("required option '-i, --image <image>' not specified");
  });

  it('exits 1 when an action is refused by the state of the server', async () => {
    const stop = await cli(['server', 'stop', 'web', '--wait']);
    expect(stop.code, stop.stderr).to.equal(0);
    const pause = await cli(['server', 'pause', 'web']);
    expect(pause.code).to.equal(1);
    expect(pause.stderr).to.match(/^stratus: .*stopped/);
    expect((await cli(['server', 'start', 'web', '--wait'])).code).to.equal(0);
  });

  it('exits 4 without a deployment (with how to start one) and on bad credentials', async () => {
    const elsewhere = await tempDir();
    try {
      const none = await stratus(['volume', 'list'], { cwd: elsewhere.dir });
      expect(none.code).to.equal(4);
      expect(none.stderr).to.include('stratus up');
    } finally {
      await elsewhere.remove();
    }
    const wrong = await cli(['volume', 'list', '--password', 'not-the-password']);
    expect(wrong.code).to.equal(4);
    expect(wrong.stderr).to.match(/^stratus: Authentication as admin .* failed/);
  });

  it('adds a user whose project sees none of the admin project', async () => {
    const added = await cli(
      ['user', 'add', 'alice', '--project', 'demo', '--password-stdin'],
      undefined,
      'alice-secret-1\n',
    );
    expect(added.code, added.stderr).to.equal(0);
    const asAlice = await cli(['volume', 'list', '--json', '--username', 'alice', '--project', 'demo'], {
      STRATUS_PASSWORD: 'alice-secret-1',
    });
    expect(asAlice.code, asAlice.stderr).to.equal(0);
    expect(JSON.parse(asAlice.stdout)).to.deep.equal([]);
    const twice = await cli(['user', 'add', 'alice', '--project', 'demo', '--password', 'whatever-123']);
    expect(twice.code).to.equal(1);
    expect(twice.stderr).to.include('already exists');
  });

  it('extends, snapshots and deletes with --wait, naming each deleted id', async () => {
    const volume = await json<Volume>(['volume', 'create', '--size', '1', '--name', 'scratch', '--wait']);
    const extended = await json<Volume>(['volume', 'extend', 'scratch', '--size', '2', '--wait']);
    expect(extended).to.include({ id: volume.id, status: 'available', size: 2 });

    const snapshot = await json<{ id: string; status: string; volume_id: string }>([
      'volume',
      'snapshot',
      'create',
      'scratch',
      '--name',
      'snap',
      '--wait',
    ]);
    expect(snapshot).to.include({ status: 'available', volume_id: volume.id });
    const listed = await cli(['volume', 'snapshot', 'list', '--volume', 'scratch']);
    expect(listed.stdout).to.match(new RegExp(`^${snapshot.id}\\s+snap\\s+${volume.id}\\s+available`, 'm'));
    const snapshotGone = await cli(['volume', 'snapshot', 'delete', 'snap', '--wait']);
    expect(snapshotGone.stdout, snapshotGone.stderr).to.equal(`deleted snapshot ${snapshot.id}\n`);
    const volumeGone = await cli(['volume', 'delete', volume.id, '--wait']);
    expect(volumeGone.stdout, volumeGone.stderr).to.equal(`deleted volume ${volume.id}\n`);

    const server = await json<{ id: string }>([
      'server',
      'create',
      'scratch-vm',
      '--flavor',
      'm1.tiny',
      '--image',
      'cirros',
      '--wait',
    ]);
    const serverGone = await cli(['server', 'delete', 'scratch-vm', 'no-such-server', '--wait']);
    expect(serverGone.code).to.equal(3);
    expect(serverGone.stdout).to.equal(`deleted server ${server.id}\n`);
    expect(serverGone.stderr).to.match(
      /^stratus: no-such-server: server no-such-server could not be found\n/,
    );
    const servers = await json<{ name: string }[]>(['server', 'list']);
    expect(servers.map((s) => s.name)).to.deep.equal(['web']);
    expect((await cli(['volume', 'show', volume.id])).code).to.equal(3);
  });

  it('refuses a second stratus up on the same data directory', async () => {
    const second = await cli(['up', '--port', '0']);
    expect(second.code).to.equal(1);
    expect(second.stderr).to.include('already running');
  });

  it('stops on Ctrl-C, and a second up finds its volumes and servers again', async () => {
    expect(await (up as UpProcess).stop()).to.equal(0);
    expect((up as UpProcess).output().stdout).to.include('Stratus stopped.');

    up = await startUp(dir);
    expect(up.output().stdout).to.not.match(/password/);
    const volumes = await json<Volume[]>(['volume', 'list']);
    expect(volumes.map((v) => [v.name, v.status])).to.deep.equal([['data', 'in-use']]);
    const server = await json<{ status: string }>(['server', 'show', 'web']);
    expect(server.status).to.equal('ACTIVE');
    // The backend really has them: detaching and deleting go through the drivers.
    const detach = await cli(['server', 'detach', 'web', 'data', '--wait']);
    expect(detach.code, detach.stderr).to.equal(0);
    const deleted = await cli(['volume', 'delete', 'data', '--wait']);
    expect(deleted.code, deleted.stderr).to.equal(0);
    expect(await json<Volume[]>(['volume', 'list'])).to.deep.equal([]);
  });
});

describe('--wait on an injected failure (real binary)', function () {
  this.timeout(180_000);
  let dir: string;
  let remove: () => Promise<void>;
  let up: UpProcess | undefined;

  before(async () => {
    await ensureBuilt();
    ({ dir, remove } = await tempDir());
    up = await startUp(dir, ['--port', '0'], {
      STRATUS_FAKE_FAULTS: JSON.stringify({
        volume: { createVolume: { fail: 1 } },
        compute: { spawn: { fail: 1 } },
      }),
    });
  });
  after(async () => {
    await up?.stop();
    await remove();
  });

  it('exits 1 naming the error state when the volume ends in error, and 0 once it works', async () => {
    const failed = await stratus(['volume', 'create', '--size', '1', '--name', 'bad', '--wait'], {
      cwd: dir,
    });
    expect(failed.code).to.equal(1);
    expect(failed.stderr).to.match(/^stratus: volume bad ended in status error/);
    expect(failed.stdout).to.equal('');
    const ok = await stratus(['volume', 'create', '--size', '1', '--name', 'good', '--wait', '--json'], {
      cwd: dir,
    });
    expect(ok.code, ok.stderr).to.equal(0);
    expect(JSON.parse(ok.stdout).status).to.equal('available');
  });

  it('exits 1 with the fault when a server fails to spawn', async () => {
    const failed = await stratus(
      ['server', 'create', 'vm1', '--flavor', 'm1.tiny', '--image', 'cirros', '--wait'],
      {
        cwd: dir,
      },
    );
    expect(failed.code).to.equal(1);
    expect(failed.stderr).to.match(/^stratus: server vm1 ended in status error/);
  });
});

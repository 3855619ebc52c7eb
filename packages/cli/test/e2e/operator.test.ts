import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ensureBuilt, stratus, tempDir } from '../support/cli.js';

describe('operator commands (real binary)', function () {
  this.timeout(120_000);
  let dir: string;
  let remove: () => Promise<void>;

  before(() => ensureBuilt());
  beforeEach(async () => {
    ({ dir, remove } = await tempDir());
  });
  afterEach(() => remove());

  const writeConfig = (config: unknown) =>
    writeFile(path.join(dir, 'stratus.config.json'), JSON.stringify(config));

  it('config validate accepts an empty folder (built-in defaults) and exits 0', async () => {
    const result = await stratus(['config', 'validate'], { cwd: dir });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.match(/^valid: built-in defaults/);
  });

  it('config validate lists every problem of a bad file and exits 1', async () => {
    await writeConfig({ reportInterval: 'fast', bogus: 1 });
    const result = await stratus(['config', 'validate'], { cwd: dir });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include('stratus: Invalid configuration');
    expect(result.stderr).to.include('/reportInterval');
    expect(result.stderr).to.include('/bogus');
    expect(result.stderr).to.not.match(/\n\s+at /);
  });

  it('config show --json prints the effective config with defaults and absolute paths', async () => {
    const result = await stratus(['config', 'show', '--json'], {
      cwd: dir,
      env: { STRATUS_REPORT_INTERVAL: '5' },
    });
    expect(result.code, result.stderr).to.equal(0);
    const config = JSON.parse(result.stdout);
    expect(config.reportInterval).to.equal(5);
    expect(config.dataDir).to.equal(path.join(dir, '.stratus'));
    expect(Object.keys(config.services)).to.deep.equal(['api', 'volume', 'compute']);
  });

  it('config show never prints RPC signing secrets or database passwords', async () => {
    const secret = 'do-not-print-this-shared-secret-0123456789';
    await writeConfig({
      database: { url: 'postgres://stratus:hunter2@127.0.0.1:5432/stratus' },
      rpcSigning: { keys: [{ id: 'k1', secret }], acceptKeys: [{ id: 'k0', secret: `${secret}-old` }] },
    });
    const result = await stratus(['config', 'show', '--json'], { cwd: dir });
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.not.include(secret);
    expect(result.stdout).to.not.include('hunter2');
    const config = JSON.parse(result.stdout);
    expect(config.rpcSigning.keys).to.deep.equal([{ id: 'k1', secret: '[redacted]' }]);
    expect(config.rpcSigning.acceptKeys).to.deep.equal([{ id: 'k0', secret: '[redacted]' }]);
  });

  it('config schema prints the JSON Schema of the config file', async () => {
    const result = await stratus(['config', 'schema'], { cwd: dir });
    expect(result.code).to.equal(0);
    const schema = JSON.parse(result.stdout);
    expect(schema.title).to.equal('Stratus deployment configuration');
    expect(schema.properties).to.have.property('database');
  });

  it('plugins list --json resolves every plugin of the built-in deployment', async () => {
    const result = await stratus(['plugins', 'list', '--json'], { cwd: dir });
    expect(result.code, result.stderr).to.equal(0);
    const reports = JSON.parse(result.stdout) as {
      at: string;
      ok: boolean;
      packageName?: string;
      contract?: string;
    }[];
    expect(reports.map((r) => r.at)).to.deep.equal([
      '/transport',
      '/services/api/manager',
      '/services/volume/manager',
      '/services/volume/driver',
      '/services/compute/manager',
      '/services/compute/driver',
    ]);
    expect(reports.every((r) => r.ok)).to.equal(true);
    expect(reports[3]).to.include({ packageName: '@stratus/driver-fake', contract: '^1.0.0' });
  });

  it('plugins check names each broken plugin, its config path and what to do; exit 1', async () => {
    await writeConfig({
      services: {
        volume: {
          manager: { plugin: '@stratus/manager-volume' },
          driver: { plugin: '@stratus/driver-fake#volume', config: { capacityGiB: 'lots' } },
        },
        compute: {
          manager: { plugin: '@stratus/manager-compute' },
          driver: { plugin: '@acme/stratus-driver-nope' },
        },
      },
    });
    const result = await stratus(['plugins', 'check'], { cwd: dir });
    expect(result.code).to.equal(1);
    expect(result.stdout).to.include('/services/volume/driver/config/capacityGiB');
    expect(result.stdout).to.include('pnpm add @acme/stratus-driver-nope');
    expect(result.stdout).to.include('2 of 5 plugin(s) have problems');

    const json = await stratus(['plugins', 'check', '--json'], { cwd: dir });
    expect(json.code).to.equal(1);
    const codes = (JSON.parse(json.stdout) as { code?: string }[]).map((r) => r.code ?? 'ok');
    expect(codes).to.deep.equal(['ok', 'ok', 'CONFIG_INVALID', 'ok', 'PLUGIN_NOT_FOUND']);
  });

  it('db status shows pending migrations until db migrate applies them (once)', async () => {
    const before = await stratus(['db', 'status', '--json'], { cwd: dir });
    expect(before.code, before.stderr).to.equal(0);
    const pending = JSON.parse(before.stdout) as { namespace: string; state: string }[];
    expect(pending.length).to.be.greaterThan(3);
    expect(pending.every((m) => m.state === 'pending')).to.equal(true);
    expect(new Set(pending.map((m) => m.namespace))).to.include.members(['core', 'volume', 'compute', 'api']);

    const migrated = await stratus(['db', 'migrate', '--json'], { cwd: dir });
    expect(migrated.code, migrated.stderr).to.equal(0);
    expect(JSON.parse(migrated.stdout).applied).to.have.length(pending.length);

    const again = await stratus(['db', 'migrate'], { cwd: dir });
    expect(again.stdout).to.include('nothing to apply');
    const after = JSON.parse((await stratus(['db', 'status', '--json'], { cwd: dir })).stdout) as {
      state: string;
    }[];
    expect(after.every((m) => m.state === 'applied')).to.equal(true);
  });

  it('doctor passes on a fresh folder, warning about pending migrations', async () => {
    const result = await stratus(['doctor', '--json'], { cwd: dir });
    expect(result.code, result.stdout + result.stderr).to.equal(0);
    const checks = JSON.parse(result.stdout) as { check: string; status: string }[];
    expect(checks.filter((c) => c.status === 'fail')).to.deep.equal([]);
    expect(checks.find((c) => c.check === 'migrations')?.status).to.equal('warn');
    expect(checks.find((c) => c.check === 'driver volume')?.status).to.equal('ok');
    expect(checks.find((c) => c.check === 'transport')?.status).to.equal('ok');
  });

  it('doctor reports an unreachable database with what to check, and exits 1', async () => {
    await writeConfig({ database: { url: 'postgres://stratus:secret@127.0.0.1:1/stratus' } });
    const result = await stratus(['doctor', '--timeout', '10'], { cwd: dir });
    expect(result.code).to.equal(1);
    const storeLine = result.stdout.split('\n').find((l) => l.includes(' store '));
    expect(storeLine).to.match(/^FAIL\s+store/);
    expect(storeLine).to.include('STORE_UNAVAILABLE');
    expect(result.stdout).to.include('→ Check database.url (postgres://stratus:***@127.0.0.1:1/stratus)');
    expect(result.stdout).to.not.include('secret');
    expect(result.stdout).to.match(/\d+ problem\(s\) found/);
  });
});

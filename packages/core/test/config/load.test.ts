import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  type ConfigInvalidError,
  checkConfiguredPlugins,
  configFromEnv,
  definePlugin,
  loadConfig,
  StratusError,
} from '../../src/index.js';
import { createApp, manifestSource } from '../plugin/app-fixture.js';

async function configError(promise: Promise<unknown>): Promise<ConfigInvalidError> {
  try {
    await promise;
  } catch (error) {
    if (StratusError.is(error, 'CONFIG_INVALID')) return error as ConfigInvalidError;
    throw error;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('loadConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stratus-config-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('applies every default when there is no file, rooted at cwd', async () => {
    const { config, root, file } = await loadConfig({ cwd: dir, env: {} });
    expect(root).to.equal(dir);
    expect(file).to.equal(undefined);
    expect(config.host).to.equal(os.hostname());
    expect(config.dataDir).to.equal(path.join(dir, '.stratus'));
    expect(config.database.url).to.equal(`sqlite:${path.join(dir, '.stratus', 'stratus.db')}`);
    expect(config.transport.plugin).to.equal('@stratus/core#memoryTransportPlugin');
    expect(config.reportInterval).to.equal(10);
    expect(config.serviceDownTime).to.equal(60);
    expect(config.rootHelper).to.deep.equal([]);
    expect(config.services).to.deep.equal({});
  });

  it("reads stratus.config.yaml and resolves dataDir against the file's folder", async () => {
    const sub = path.join(dir, 'etc');
    await mkdir(sub);
    await writeFile(
      path.join(sub, 'stratus.config.yaml'),
      [
        'host: st-3',
        'dataDir: ./state',
        'services:',
        '  volume:',
        '    manager: { plugin: "@stratus/manager-volume" }',
        '    driver: { plugin: "@stratus/driver-lvm", config: { volumeGroup: stratus-volumes } }',
      ].join('\n'),
    );
    const { config, root, file } = await loadConfig({ cwd: sub, env: {} });
    expect(file).to.equal(path.join(sub, 'stratus.config.yaml'));
    expect(root).to.equal(sub);
    expect(config.host).to.equal('st-3');
    expect(config.dataDir).to.equal(path.join(sub, 'state'));
    expect(config.services.volume?.manager.plugin).to.equal('@stratus/manager-volume');
    expect(config.services.volume?.driver?.config).to.deep.equal({ volumeGroup: 'stratus-volumes' });
  });

  it('layers file < STRATUS_* env < overrides', async () => {
    await writeFile(
      path.join(dir, 'stratus.config.json'),
      JSON.stringify({ host: 'from-file', reportInterval: 5, log: { level: 'warn' } }),
    );
    const { config } = await loadConfig({
      cwd: dir,
      env: {
        STRATUS_HOST: 'from-env',
        STRATUS_REPORT_INTERVAL: '7',
        STRATUS_DATABASE__URL: 'postgres://x@h/db',
      },
      overrides: { host: 'from-flag' },
    });
    expect(config.host).to.equal('from-flag');
    expect(config.reportInterval).to.equal(7);
    expect(config.database.url).to.equal('postgres://x@h/db');
    expect(config.log.level).to.equal('warn');
  });

  it('keeps env strings as strings where the schema wants one', () => {
    const { values, issues } = configFromEnv({ STRATUS_HOST: '12345', STRATUS_ROOT_HELPER: '["sudo","-n"]' });
    expect(issues).to.deep.equal([]);
    expect(values).to.deep.equal({ host: '12345', rootHelper: ['sudo', '-n'] });
  });

  it('ignores STRATUS_* variables that name no config key', () => {
    expect(configFromEnv({ STRATUS_TEST_PG_URL: 'postgres://x', STRATUS_CONFIG: 'a' }).values).to.deep.equal(
      {},
    );
  });

  it('reports a malformed JSON env value with its path', async () => {
    const error = await configError(loadConfig({ cwd: dir, env: { STRATUS_REPORT_INTERVAL: 'ten' } }));
    expect(error.issues).to.deep.include({
      path: '/reportInterval',
      message: 'STRATUS_REPORT_INTERVAL is not valid JSON: ten',
    });
  });

  it('commits SQLite with synchronous=normal unless told full; anything else is refused', async () => {
    expect((await loadConfig({ cwd: dir, env: {} })).config.database.sqliteSynchronous).to.equal('normal');
    const full = await loadConfig({ cwd: dir, env: { STRATUS_DATABASE__SQLITE_SYNCHRONOUS: 'full' } });
    expect(full.config.database.sqliteSynchronous).to.equal('full');
    const error = await configError(
      loadConfig({ cwd: dir, env: { STRATUS_DATABASE__SQLITE_SYNCHRONOUS: 'off' } }),
    );
    expect(error.issues.map((i) => i.path)).to.include('/database/sqliteSynchronous');
  });

  it('rejects an invalid config listing every problem at once', async () => {
    await writeFile(
      path.join(dir, 'stratus.config.json'),
      JSON.stringify({
        reportInterval: 0,
        dataDirectory: '/x',
        database: { url: 'mysql://nope' },
        services: { volume: { driver: { plugin: 'x' } } },
      }),
    );
    const error = await configError(loadConfig({ cwd: dir, env: {} }));
    const paths = error.issues.map((i) => i.path);
    expect(paths).to.include.members([
      '/reportInterval',
      '/dataDirectory',
      '/database/url',
      '/services/volume/manager',
    ]);
    expect(error.message).to.contain(path.join(dir, 'stratus.config.json'));
  });

  it('says which file is not valid JSON', async () => {
    await writeFile(path.join(dir, 'stratus.config.json'), '{ "host": ');
    const error = await configError(loadConfig({ cwd: dir, env: {} }));
    expect(error.issues[0]?.message).to.match(/not valid JSON/);
  });

  it('reports a missing explicit file', async () => {
    const error = await configError(loadConfig({ cwd: dir, file: 'missing.yaml', env: {} }));
    expect(error.issues[0]?.message).to.match(/cannot be read/);
  });

  it('ignores prototype keys in overrides', async () => {
    const overrides = JSON.parse('{"__proto__": {"polluted": true}, "host": "h1"}') as Record<
      string,
      unknown
    >;
    const { config } = await loadConfig({ cwd: dir, env: {}, overrides });
    expect(config.host).to.equal('h1');
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });
});

describe('checkConfiguredPlugins', () => {
  it('resolves each named plugin from the config folder and validates each config section', async () => {
    const manager = definePlugin({
      name: 'fixture-manager',
      kind: 'manager',
      contract: '^1.0.0',
      driverKind: 'volume-driver',
      create: () => ({}),
    });
    const app = await createApp([
      {
        name: 'fixture-driver',
        source: manifestSource({
          name: 'fixture-driver',
          kind: 'volume-driver',
          contract: '^1.0.0',
          config: {
            type: 'object',
            properties: { vg: { type: 'string' } },
            required: ['vg'],
            additionalProperties: false,
          },
        }),
      },
      {
        name: 'fixture-manager',
        source: `export default ${JSON.stringify({ name: 'fixture-manager', kind: 'manager', contract: '^1.0.0', driverKind: 'volume-driver' }).replace(/}$/, ', create: () => ({}) }')};`,
      },
    ]);
    try {
      await writeFile(
        path.join(app.root, 'stratus.config.json'),
        JSON.stringify({
          services: {
            good: {
              manager: { plugin: 'fixture-manager' },
              driver: { plugin: 'fixture-driver', config: { vg: 'v' } },
            },
            bad: {
              manager: { plugin: 'fixture-manager' },
              driver: { plugin: 'fixture-driver', config: { vg: 3 } },
            },
            missing: { manager: { plugin: '@acme/not-installed' } },
          },
        }),
      );
      const loaded = await loadConfig({ cwd: app.root, env: {} });
      const checks = await checkConfiguredPlugins(loaded);
      const byPath = Object.fromEntries(checks.map((c) => [c.at, c]));
      expect(byPath['/transport']?.error?.code).to.equal(undefined);
      expect(byPath['/services/good/driver']?.config).to.deep.equal({ vg: 'v' });
      expect(byPath['/services/bad/driver']?.error?.code).to.equal('CONFIG_INVALID');
      expect(byPath['/services/bad/driver']?.error?.message).to.contain('/services/bad/driver/config/vg');
      expect(byPath['/services/missing/manager']?.error?.code).to.equal('PLUGIN_NOT_FOUND');
      expect(manager.driverKind).to.equal('volume-driver');
    } finally {
      await app.dispose();
    }
  });
});

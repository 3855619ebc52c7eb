import {
  createPlugin,
  type Driver,
  Executor,
  migrationStatus,
  type PluginManifest,
  redactUrl,
  ServiceRegistry,
  StratusError,
  silentLogger,
  type Transport,
} from '@stratus/core';
import type { Command } from 'commander';
import { type CliContext, type JsonFlag, withConfig, withJson } from '../context.js';
import { checkPlugins, type Deployment, loadDeployment, type PluginReport } from '../deployment.js';
import { ExitCode } from '../exit.js';
import { emit, formatAge } from '../output.js';
import { profilePath, readProfile } from '../profile.js';
import { migrationSets, withStore } from '../store.js';

/** One finding of `stratus doctor`. */
export interface DoctorCheck {
  readonly check: string;
  readonly status: 'ok' | 'warn' | 'fail';
  readonly message: string;
  readonly hint?: string;
}

interface DoctorFlags extends JsonFlag {
  readonly config?: string;
  readonly timeout?: string;
}

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

/** `stratus doctor`. */
export function registerDoctor(program: Command, ctx: CliContext): void {
  withJson(withConfig(program.command('doctor')))
    .description(
      'check the config, plugins, database, transport, driver setup and the running deployment; say what is wrong',
    )
    .option('--timeout <seconds>', 'give up on each network check after this long', '5')
    .action(async (flags: DoctorFlags) => {
      const timeoutMs = Math.max(0.1, Number(flags.timeout ?? 5)) * 1000;
      const checks = await runDoctor(ctx, flags, timeoutMs);
      emit(ctx.io, Boolean(flags.json), checks, () => {
        const width = Math.max(...checks.map((c) => c.check.length));
        const lines = checks.map(
          (c) =>
            `${MARK[c.status]}  ${c.check.padEnd(width)}  ${c.message}${c.hint ? `\n${' '.repeat(width + 8)}→ ${c.hint}` : ''}`,
        );
        const failed = checks.filter((c) => c.status === 'fail').length;
        const warned = checks.filter((c) => c.status === 'warn').length;
        const summary = failed
          ? `${failed} problem(s) found${warned ? `, ${warned} warning(s)` : ''}.`
          : `no problems found${warned ? ` (${warned} warning(s))` : ''}.`;
        return `${lines.join('\n')}\n\n${summary}\n`;
      });
      if (checks.some((c) => c.status === 'fail')) ctx.setExitCode(ExitCode.FAILED);
    });
}

async function runDoctor(ctx: CliContext, flags: DoctorFlags, timeoutMs: number): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let deployment: Deployment;
  try {
    deployment = await loadDeployment(flags, ctx.io);
  } catch (error) {
    checks.push(failure('config', error, 'Fix the listed paths; stratus config schema prints every key.'));
    return checks;
  }
  checks.push({
    check: 'config',
    status: 'ok',
    message: `${deployment.file ?? 'no config file: defaults'}${deployment.builtInServices ? ' (services: built-in local deployment)' : ''}`,
  });

  const reports = await checkPlugins(deployment);
  for (const report of reports) checks.push(pluginCheck(report));

  checks.push(...(await storeChecks(deployment, timeoutMs)));
  const transport = reports.find((r) => r.at === '/transport');
  if (transport?.ok) checks.push(await transportCheck(deployment, transport, timeoutMs));
  for (const report of reports) {
    if (report.ok && report.kind.endsWith('-driver')) {
      checks.push(await driverCheck(deployment, report, timeoutMs));
    }
  }
  checks.push(await apiCheck(deployment, timeoutMs));
  return checks;
}

function pluginCheck(report: PluginReport): DoctorCheck {
  const name = `plugin ${report.at.replace(/^\/services\//, '').replace(/^\//, '')}`;
  if (!report.ok) {
    return {
      check: name,
      status: 'fail',
      message: `${report.spec}: ${report.problem}`,
      hint: 'stratus plugins check shows every plugin with its problem.',
    };
  }
  const pkg = report.packageName ? ` → ${report.packageName}@${report.packageVersion ?? '?'}` : '';
  return {
    check: name,
    status: 'ok',
    message: `${report.spec}${pkg} (${report.kind} ${report.contract}, core ${report.coreContract})`,
  };
}

async function storeChecks(deployment: Deployment, timeoutMs: number): Promise<DoctorCheck[]> {
  const url = redactUrl(deployment.config.database.url);
  try {
    return await withTimeout(
      withStore(deployment, async (store) => {
        const found: DoctorCheck[] = [];
        const now = await store.now();
        found.push({
          check: 'store',
          status: 'ok',
          message: `${url} (${store.dialect}, clock ${now.toISOString()})`,
        });
        let pending = 0;
        try {
          const status = await migrationStatus(store, await migrationSets(deployment));
          pending = status.filter((s) => s.state === 'pending').length;
          found.push(
            pending
              ? {
                  check: 'migrations',
                  status: 'warn',
                  message: `${pending} of ${status.length} pending`,
                  hint: 'run stratus db migrate (stratus up and stratus serve also migrate at start).',
                }
              : { check: 'migrations', status: 'ok', message: `all ${status.length} applied` },
          );
        } catch (error) {
          found.push(failure('migrations', error));
        }
        if (pending === 0) found.push(...(await registryChecks(deployment, store)));
        return found;
      }),
      timeoutMs,
      `the database ${url} did not answer`,
    );
  } catch (error) {
    return [
      failure(
        'store',
        error,
        `Check database.url (${url}) and that the database server is running and reachable from this host.`,
      ),
    ];
  }
}

async function registryChecks(
  deployment: Deployment,
  store: Parameters<Parameters<typeof withStore>[1]>[0],
): Promise<DoctorCheck[]> {
  const registry = new ServiceRegistry(store, { serviceDownTimeSec: deployment.config.serviceDownTime });
  const services = await registry.list({ includeDisabled: true });
  if (!services.length) {
    return [
      {
        check: 'services',
        status: 'warn',
        message: 'no service has registered yet',
        hint: 'start them: stratus up (all in one) or stratus serve <volume|compute|api>.',
      },
    ];
  }
  return services.map((s) => ({
    check: `service ${s.binary}`,
    status: s.up ? 'ok' : 'warn',
    message: `${s.host}: ${s.up ? 'up' : 'down'}, last heartbeat ${formatAge(s.lastHeartbeatAgeSec)} ago${s.disabled ? ', disabled' : ''}`,
    ...(s.up ? {} : { hint: `is ${s.binary} running on ${s.host}? Its log says why it stopped reporting.` }),
  }));
}

async function transportCheck(
  deployment: Deployment,
  report: PluginReport,
  timeoutMs: number,
): Promise<DoctorCheck> {
  let transport: Transport | undefined;
  try {
    transport = await withTimeout(
      (async () => {
        const created = await createPlugin<'transport', Transport>(
          report.manifest as PluginManifest<'transport'>,
          deployment.config.transport.config,
          pluginEnv(deployment, report.manifest as PluginManifest),
        );
        await created.connect();
        return created;
      })(),
      timeoutMs,
      'the transport did not connect',
    );
    const memory = report.spec.includes('#memory');
    return {
      check: 'transport',
      status: 'ok',
      message: memory
        ? `${report.spec}: in-process (only services of one process talk: fine for stratus up)`
        : `${report.spec}: connected`,
    };
  } catch (error) {
    return failure(
      'transport',
      error,
      'Check transport.config (URL, credentials) and that the broker is running.',
    );
  } finally {
    await transport?.close().catch(() => undefined);
  }
}

async function driverCheck(
  deployment: Deployment,
  report: PluginReport,
  timeoutMs: number,
): Promise<DoctorCheck> {
  const name = `driver ${report.at.split('/')[2] ?? ''}`.trim();
  let driver: Driver | undefined;
  try {
    await withTimeout(
      (async () => {
        driver = await createPlugin<typeof report.kind, Driver>(
          report.manifest as PluginManifest,
          report.pluginConfig,
          pluginEnv(deployment, report.manifest as PluginManifest),
        );
        await driver.setup();
        await driver.checkForSetupError();
      })(),
      timeoutMs * 4,
      'the driver setup check did not finish',
    );
    return { check: name, status: 'ok', message: `${report.spec}: setup checks passed` };
  } catch (error) {
    return failure(name, error, `The service cannot start until this passes; see ${report.spec}'s README.`);
  } finally {
    await driver?.close().catch(() => undefined);
  }
}

async function apiCheck(deployment: Deployment, timeoutMs: number): Promise<DoctorCheck> {
  let profile: Awaited<ReturnType<typeof readProfile>>;
  try {
    profile = await readProfile(profilePath(deployment.config.dataDir));
  } catch (error) {
    return failure('api', error);
  }
  if (!profile) {
    return {
      check: 'api',
      status: 'ok',
      message: 'no local profile (stratus up writes one); skipped',
    };
  }
  try {
    const response = await fetch(`${profile.endpoint}/v3`, { signal: AbortSignal.timeout(timeoutMs) });
    return {
      check: 'api',
      status: response.ok ? 'ok' : 'warn',
      message: `${profile.endpoint} answered ${response.status}`,
    };
  } catch (error) {
    return {
      check: 'api',
      status: 'warn',
      message: `${profile.endpoint} is not answering (${(error as Error).cause ? String((error as { cause: Error }).cause.message) : (error as Error).message})`,
      hint: 'start the local deployment with stratus up, or ignore this if it is stopped on purpose.',
    };
  }
}

function pluginEnv(deployment: Deployment, manifest: PluginManifest) {
  const logger = silentLogger();
  return {
    host: deployment.config.host,
    logger,
    dataDir: deployment.config.dataDir,
    executor: new Executor({
      filters: manifest.commands ?? [],
      rootHelper: deployment.config.rootHelper,
      logger,
    }),
  };
}

function failure(check: string, error: unknown, hint?: string): DoctorCheck {
  const message = error instanceof Error ? error.message.replace(/\n\s*/g, ' ') : String(error);
  return {
    check,
    status: 'fail',
    message: StratusError.is(error) ? `[${error.code}] ${message}` : message,
    ...(hint ? { hint } : {}),
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${Math.round(ms / 100) / 10} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

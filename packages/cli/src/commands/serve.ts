import {
  createPlugin,
  Executor,
  Launcher,
  loadConfig,
  type PluginManifest,
  Service,
  type Transport,
} from '@stratus/core';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { checkPlugins, LOCAL_SERVICES, loadDeployment } from '../deployment.js';
import { CliError, usageError } from '../exit.js';

interface ServeFlags {
  readonly config?: string;
  readonly host?: string;
  readonly dataDir?: string;
}

/** `stratus serve <service>`. */
export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description(
      "run one service of the config (volume, compute, api, ...) with the config's transport and database, for multi-host deployments; JSON logs on stdout",
    )
    .argument(
      '<service>',
      'name of the service in the config (services.<name>); volume, compute and api have defaults',
    )
    .option('-c, --config <file>', 'deployment config file (default: ./stratus.config.{json,yaml})')
    .option(
      '--host <name>',
      "this host's name in the service registry and its direct queue (default: config host, else the OS hostname)",
    )
    .option('-d, --data-dir <dir>', 'folder for local state (default: config dataDir)')
    .action((name: string, flags: ServeFlags) => serve(ctx, name, flags));
}

async function serve(ctx: CliContext, name: string, flags: ServeFlags): Promise<void> {
  const { io } = ctx;
  const deployment = await loadDeployment(flags, io);
  const { createLogger } = await import('@stratus/core');
  const logger = createLogger({ level: deployment.config.log.level, bindings: {} });

  let entry = deployment.config.services[name];
  if (!entry && LOCAL_SERVICES[name]) {
    entry = LOCAL_SERVICES[name];
    logger.warn(`services.${name} is not in the config; using the built-in entry (${entry?.manager.plugin})`);
  }
  if (!entry) {
    const known = Object.keys(deployment.config.services);
    throw usageError(
      `No service "${name}" in the config (it defines: ${known.join(', ') || 'none'})`,
      `Add services.${name} to ${deployment.file ?? 'stratus.config.json'}, or serve one of the defined ones.`,
    );
  }
  if (deployment.config.transport.plugin.startsWith('@stratus/core#memory')) {
    logger.warn(
      'the transport is the in-process memory bus: services in other processes cannot reach this one; set transport.plugin (e.g. @stratus/transport-amqp) for a multi-host deployment',
    );
  }
  const scoped = { ...deployment, config: { ...deployment.config, services: { [name]: entry } } };
  const reports = await checkPlugins(scoped);
  const broken = reports.filter((r) => !r.ok);
  if (broken.length) {
    throw new CliError(
      `Cannot start ${name}: ${broken.map((r) => `${r.at} (${r.spec}): ${r.problem}`).join('\n')}`,
      { hint: 'stratus plugins check lists every plugin and its problem.' },
    );
  }
  const manager = reports.find((r) => r.at === `/services/${name}/manager`)
    ?.manifest as PluginManifest<'manager'>;
  const driver = reports.find((r) => r.at === `/services/${name}/driver`)?.manifest;
  const transportManifest = reports.find((r) => r.at === '/transport')
    ?.manifest as PluginManifest<'transport'>;

  const transport = await createPlugin<'transport', Transport>(
    transportManifest,
    scoped.config.transport.config,
    {
      host: scoped.config.host,
      logger: logger.child({ plugin: transportManifest.name }),
      dataDir: scoped.config.dataDir,
      executor: new Executor({
        filters: transportManifest.commands ?? [],
        rootHelper: scoped.config.rootHelper,
        logger,
      }),
    },
  );
  await transport.connect();
  try {
    const service = new Service({
      name,
      settings: scoped.config,
      root: scoped.root,
      manager,
      ...(entry.manager.config ? { managerConfig: entry.manager.config } : {}),
      ...(driver ? { driver, driverConfig: entry.driver?.config } : {}),
      ...(entry.topic ? { topic: entry.topic } : {}),
      logger,
      transport,
    });
    const launcher = new Launcher({
      services: [service],
      logger,
      ...(scoped.file
        ? {
            reloadConfig: async () =>
              (await loadConfig({ file: scoped.file as string, cwd: io.cwd, env: io.env })).config,
          }
        : {}),
    });
    await launcher.launch();
    await launcher.wait();
  } finally {
    await transport.close().catch(() => undefined);
  }
}

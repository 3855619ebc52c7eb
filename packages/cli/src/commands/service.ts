import { type ServiceRecord, ServiceRegistry } from '@stratus/core';
import type { Command } from 'commander';
import { type CliContext, type JsonFlag, withConfig, withJson } from '../context.js';
import { loadDeployment } from '../deployment.js';
import { CliError, ExitCode } from '../exit.js';
import { emit, formatAge, renderTable } from '../output.js';
import { withStore } from '../store.js';

interface ServiceFlags extends JsonFlag {
  readonly config?: string;
  readonly dataDir?: string;
  readonly host?: string;
  readonly binary?: string;
  readonly reason?: string;
}

function view(record: ServiceRecord) {
  return {
    id: record.id,
    host: record.host,
    binary: record.binary,
    topic: record.topic,
    zone: record.availabilityZone,
    status: record.disabled ? 'disabled' : 'enabled',
    disabledReason: record.disabledReason,
    state: record.up ? 'up' : 'down',
    lastHeartbeatAgeSec: Math.round(record.lastHeartbeatAgeSec * 10) / 10,
    updatedAt: record.updatedAt.toISOString(),
    reportCount: record.reportCount,
    version: record.version,
    capabilities: record.capabilities,
  };
}

/** `stratus service list|enable|disable`: the service registry, as Nova's `nova-manage service`. */
export function registerService(program: Command, ctx: CliContext): void {
  const group = program
    .command('service')
    .description(
      "registered services (host, binary, topic, zone, status, up/down by heartbeat), read from the deployment's database",
    );

  withJson(withConfig(group.command('list')))
    .description('list services; "down" means no heartbeat within serviceDownTime, on the database clock')
    .option('-d, --data-dir <dir>', 'data directory of a local deployment (default ./.stratus)')
    .option('--host <host>', 'only services of this host')
    .option('--binary <binary>', 'only this binary, e.g. stratus-volume')
    .action(async (flags: ServiceFlags) => {
      const deployment = await loadDeployment({ ...flags, host: undefined }, ctx.io);
      const records = await withStore(deployment, (store) =>
        new ServiceRegistry(store, { serviceDownTimeSec: deployment.config.serviceDownTime }).list({
          includeDisabled: true,
          ...(flags.host ? { host: flags.host } : {}),
          ...(flags.binary ? { binary: flags.binary } : {}),
        }),
      );
      const rows = records.map(view);
      emit(ctx.io, Boolean(flags.json), rows, () =>
        rows.length
          ? renderTable(rows, [
              { header: 'id', value: (r) => r.id },
              { header: 'host', value: (r) => r.host },
              { header: 'binary', value: (r) => r.binary },
              { header: 'topic', value: (r) => r.topic },
              { header: 'zone', value: (r) => r.zone },
              {
                header: 'status',
                value: (r) => (r.disabledReason ? `disabled (${r.disabledReason})` : r.status),
              },
              { header: 'state', value: (r) => r.state },
              { header: 'last heartbeat', value: (r) => `${formatAge(r.lastHeartbeatAgeSec)} ago` },
            ])
          : `no services registered in ${deployment.config.database.url.replace(/:[^:@/]*@/, ':***@')}\n`,
      );
    });

  for (const disable of [false, true]) {
    const command = withJson(withConfig(group.command(disable ? 'disable' : 'enable')))
      .description(
        disable
          ? 'disable a service: it keeps running, but is no longer chosen for new work'
          : 'enable a disabled service again',
      )
      .argument('<host>', 'host of the service')
      .argument('<binary>', 'binary, e.g. stratus-compute (or just compute)')
      .option('-d, --data-dir <dir>', 'data directory of a local deployment (default ./.stratus)');
    if (disable) command.option('--reason <text>', 'why (shown in service list)');
    command.action(async (host: string, binary: string, flags: ServiceFlags) => {
      const deployment = await loadDeployment({ ...flags, host: undefined }, ctx.io);
      const fullBinary = binary.startsWith('stratus-') ? binary : `stratus-${binary}`;
      const record = await withStore(deployment, async (store) => {
        const registry = new ServiceRegistry(store, {
          serviceDownTimeSec: deployment.config.serviceDownTime,
        });
        try {
          return await registry.setDisabled(host, fullBinary, disable, flags.reason);
        } catch (error) {
          if ((error as { code?: string }).code !== 'NOT_FOUND') throw error;
          const known = await registry.list({ includeDisabled: true });
          throw new CliError(`No service ${fullBinary} on host ${host}`, {
            exitCode: ExitCode.NOT_FOUND,
            hint: known.length
              ? `Registered: ${known.map((s) => `${s.host} ${s.binary}`).join(', ')}`
              : 'No service is registered; start one with stratus up or stratus serve.',
          });
        }
      });
      const row = view(record);
      emit(
        ctx.io,
        Boolean(flags.json),
        row,
        () =>
          `${row.binary} on ${row.host} is ${row.status}${row.disabledReason ? ` (${row.disabledReason})` : ''}\n`,
      );
    });
  }
}

import { migrate, migrationStatus } from '@stratus/core';
import type { Command } from 'commander';
import { type CliContext, type JsonFlag, withConfig, withJson } from '../context.js';
import { loadDeployment } from '../deployment.js';
import { emit, renderTable } from '../output.js';
import { migrationSets, withStore } from '../store.js';

interface DbFlags extends JsonFlag {
  readonly config?: string;
}

/** `stratus db migrate|status`. */
export function registerDb(program: Command, ctx: CliContext): void {
  const group = program
    .command('db')
    .description("the deployment's database: core's tables and every configured manager's");

  withJson(withConfig(group.command('migrate')))
    .description('apply every pending migration (safe to run again, and from several hosts at once)')
    .action(async (flags: DbFlags) => {
      const deployment = await loadDeployment(flags, ctx.io);
      const sets = await migrationSets(deployment);
      const applied = await withStore(deployment, (store) => migrate(store, sets));
      emit(ctx.io, Boolean(flags.json), { database: deployment.config.database.url, applied }, () =>
        applied.length
          ? `${applied.map((m) => `applied ${m.namespace}/${m.name}`).join('\n')}\n${applied.length} migration(s) applied.\n`
          : 'the database is up to date; nothing to apply.\n',
      );
    });

  withJson(withConfig(group.command('status')))
    .description('list every migration, applied (and when) or pending')
    .action(async (flags: DbFlags) => {
      const deployment = await loadDeployment(flags, ctx.io);
      const sets = await migrationSets(deployment);
      const entries = await withStore(deployment, (store) => migrationStatus(store, sets));
      emit(ctx.io, Boolean(flags.json), entries, () => {
        const pending = entries.filter((e) => e.state === 'pending').length;
        return `${renderTable(entries, [
          { header: 'namespace', value: (e) => e.namespace },
          { header: 'migration', value: (e) => e.name },
          { header: 'state', value: (e) => e.state },
          { header: 'applied at', value: (e) => e.appliedAt },
        ])}${pending ? `\n${pending} pending: run stratus db migrate\n` : ''}`;
      });
    });
}

import type { Command } from 'commander';
import { type CliContext, type JsonFlag, withConfig, withJson } from '../context.js';
import { checkPlugins, loadDeployment, type PluginReport } from '../deployment.js';
import { ExitCode } from '../exit.js';
import { emit, renderTable } from '../output.js';

interface PluginFlags extends JsonFlag {
  readonly config?: string;
}

/** The JSON form: everything but the manifest object. */
function plain(report: PluginReport) {
  const { manifest: _manifest, pluginConfig, ...rest } = report;
  return { ...rest, ...(report.ok ? { config: pluginConfig } : {}) };
}

function table(reports: readonly PluginReport[]): string {
  return renderTable(reports, [
    { header: 'at', value: (r) => r.at },
    { header: 'kind', value: (r) => r.kind },
    { header: 'spec', value: (r) => r.spec },
    {
      header: 'package',
      value: (r) =>
        r.packageName ? `${r.packageName}@${r.packageVersion ?? '?'}${r.bundled ? ' (cli)' : ''}` : '-',
    },
    { header: 'contract', value: (r) => (r.contract ? `${r.contract} (core ${r.coreContract})` : '-') },
    { header: 'config', value: (r) => (r.ok ? 'valid' : 'PROBLEM') },
  ]);
}

/** `stratus plugins list|check`. */
export function registerPlugins(program: Command, ctx: CliContext): void {
  const group = program
    .command('plugins')
    .description('the plugins the config names: transport, each service manager and driver');

  withJson(withConfig(group.command('list')))
    .description(
      'list each configured plugin: spec, resolved package and version, kind, contract range vs core',
    )
    .action(async (flags: PluginFlags) => {
      const reports = await checkPlugins(await loadDeployment(flags, ctx.io));
      emit(ctx.io, Boolean(flags.json), reports.map(plain), () => table(reports));
    });

  withJson(withConfig(group.command('check')))
    .description('resolve every configured plugin and validate its config; exit 1 with each problem')
    .action(async (flags: PluginFlags) => {
      const reports = await checkPlugins(await loadDeployment(flags, ctx.io));
      const failed = reports.filter((r) => !r.ok);
      emit(ctx.io, Boolean(flags.json), reports.map(plain), () => {
        const problems = failed.map(
          (r) => `\n${r.at} (${r.spec}) [${r.code}]:\n  ${r.problem?.replace(/\n/g, '\n  ')}`,
        );
        const summary = failed.length
          ? `\n${failed.length} of ${reports.length} plugin(s) have problems.\n`
          : `\nall ${reports.length} plugin(s) resolve and their config is valid.\n`;
        return `${table(reports)}${problems.join('\n')}${problems.length ? '\n' : ''}${summary}`;
      });
      if (failed.length) ctx.setExitCode(ExitCode.FAILED);
    });
}

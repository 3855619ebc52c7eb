import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { redactUrl } from '@stratus/core';
import type { Command } from 'commander';
import { type CliContext, type JsonFlag, withConfig, withJson } from '../context.js';
import { checkPlugins, loadDeployment } from '../deployment.js';
import { ExitCode } from '../exit.js';
import { emit, renderJson } from '../output.js';

interface ConfigFlags extends JsonFlag {
  readonly config?: string;
}

/** `stratus config validate|show|schema`. */
export function registerConfig(program: Command, ctx: CliContext): void {
  const group = program
    .command('config')
    .description('check and print the deployment configuration (stratus.config.json / .yaml)');

  withJson(withConfig(group.command('validate')))
    .description(
      "validate the config file, STRATUS_* variables and every plugin's own config section; exit 1 listing every problem",
    )
    .action(async (flags: ConfigFlags) => {
      const { io } = ctx;
      const deployment = await loadDeployment(flags, io);
      const reports = await checkPlugins(deployment);
      const problems = reports
        .filter((r) => !r.ok)
        .map((r) => ({ at: r.at, plugin: r.spec, message: r.problem ?? 'invalid' }));
      const file = deployment.file ?? null;
      emit(io, Boolean(flags.json), { valid: problems.length === 0, file, problems }, () => {
        const where = file ?? 'built-in defaults (no stratus.config.* in this folder)';
        if (!problems.length) return `valid: ${where}\n`;
        return `invalid: ${where}\n${problems.map((p) => `  ${p.at} (${p.plugin}): ${p.message}`).join('\n')}\n`;
      });
      if (problems.length) ctx.setExitCode(ExitCode.FAILED);
    });

  withJson(withConfig(group.command('show')))
    .description('print the effective config: file < STRATUS_* environment < flags, defaults applied')
    .action(async (flags: ConfigFlags) => {
      const deployment = await loadDeployment(flags, ctx.io);
      const { rpcSigning } = deployment.config;
      const config = {
        ...deployment.config,
        database: { ...deployment.config.database, url: redactUrl(deployment.config.database.url) },
        // Secrets never reach a terminal or a pasted bug report; key ids are enough to compare hosts.
        ...(rpcSigning
          ? {
              rpcSigning: {
                ...rpcSigning,
                keys: rpcSigning.keys.map(({ id }) => ({ id, secret: '[redacted]' })),
                acceptKeys: (rpcSigning.acceptKeys ?? []).map(({ id }) => ({ id, secret: '[redacted]' })),
              },
            }
          : {}),
      };
      // Both forms are JSON: the config is a tree, and JSON is what the file may be written in.
      emit(ctx.io, Boolean(flags.json), config, () => {
        const source = deployment.file ? `# from ${deployment.file}` : '# no config file: defaults';
        const services = deployment.builtInServices ? ' (services: the built-in local deployment)' : '';
        return `${source}${services}\n${renderJson(config)}`;
      });
    });

  group
    .command('schema')
    .description('print the JSON Schema of the config file (for editors: "$schema" in stratus.config.json)')
    .action(async () => {
      const file = fileURLToPath(import.meta.resolve('@stratus/core/config.schema.json'));
      ctx.io.stdout.write(await readFile(file, 'utf8'));
    });
}

import { randomBytes } from 'node:crypto';
import { migrationStatus, type Store } from '@stratus/core';
import type { Command } from 'commander';
import { type CliContext, type JsonFlag, withConfig, withJson } from '../context.js';
import { type Deployment, loadDeployment } from '../deployment.js';
import { CliError, usageError } from '../exit.js';
import { emit, renderTable } from '../output.js';
import { newPassword } from '../prompt.js';
import { migrationSets, withStore } from '../store.js';

interface UserFlags extends JsonFlag {
  readonly config?: string;
  readonly dataDir?: string;
  readonly password?: string;
  readonly passwordStdin?: boolean;
  readonly project?: string;
  readonly role?: string[];
}

/** Opens the deployment's identity tables; they must have been migrated (stratus up / db migrate). */
async function withIdentity<T>(
  deployment: Deployment,
  fn: (identity: import('@stratus/api').IdentityStore, store: Store) => Promise<T>,
): Promise<T> {
  const { IdentityStore } = await import('@stratus/api');
  const sets = await migrationSets(deployment);
  return withStore(deployment, async (store) => {
    // Only the identity tables matter here; other pending migrations are not this command's business.
    const pending = (await migrationStatus(store, sets)).filter((m) => m.state === 'pending');
    if (pending.some((m) => m.namespace === 'api' || m.namespace === 'core')) {
      throw new CliError(`The identity tables of ${store.url} are not created yet`, {
        hint: 'Run stratus db migrate (or start the deployment once with stratus up).',
      });
    }
    return fn(new IdentityStore(store), store);
  });
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `stratus user add|passwd|list|hash-password`. */
export function registerUser(program: Command, ctx: CliContext): void {
  const group = program
    .command('user')
    .description("API users (stored in the deployment's database; passwords only as scrypt hashes)");

  withJson(withConfig(group.command('add')))
    .description('create a user with a default project (created when missing) and roles on it')
    .argument('<name>', 'user name')
    .requiredOption('--project <name>', 'default project of the user')
    .option(
      '--role <role>',
      'role on the project (repeatable; default member, admin sees every project)',
      collect,
    )
    .option('--password <password>', 'the password (visible in the process list: prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('-d, --data-dir <dir>', 'data directory of a local deployment (default ./.stratus)')
    .action(async (name: string, flags: UserFlags) => {
      const deployment = await loadDeployment(flags, ctx.io);
      let password = await newPassword(ctx.io, flags);
      const generated = password === undefined;
      password ??= randomBytes(12).toString('base64url');
      const roles = flags.role?.length ? flags.role : ['member'];
      const user = await withIdentity(deployment, (identity) =>
        identity.addUser({ name, password: password as string, project: flags.project as string, roles }),
      );
      emit(
        ctx.io,
        Boolean(flags.json),
        { ...user, project: flags.project, roles, ...(generated ? { password } : {}) },
        () =>
          `created user ${user.name} (id ${user.id}) in project ${flags.project} with role(s) ${roles.join(', ')}\n${
            generated ? `password: ${password}  (generated; shown once)\n` : ''
          }`,
      );
    });

  withConfig(group.command('passwd'))
    .description("set a user's password (typed twice on a terminal, or --password-stdin)")
    .argument('<name>', 'user name')
    .option(
      '--password <password>',
      'the new password (visible in the process list: prefer --password-stdin)',
    )
    .option('--password-stdin', 'read the new password from stdin')
    .option('-d, --data-dir <dir>', 'data directory of a local deployment (default ./.stratus)')
    .action(async (name: string, flags: UserFlags) => {
      const deployment = await loadDeployment(flags, ctx.io);
      const password = await newPassword(ctx.io, flags);
      if (password === undefined) {
        throw usageError(
          'No new password given',
          'Pass --password-stdin (e.g. echo "$PW" | stratus user passwd NAME --password-stdin), or run it on a terminal.',
        );
      }
      await withIdentity(deployment, (identity) => identity.setPassword(name, password));
      ctx.io.stdout.write(`password of ${name} changed\n`);
    });

  withJson(withConfig(group.command('list')))
    .description('list users')
    .option('-d, --data-dir <dir>', 'data directory of a local deployment (default ./.stratus)')
    .action(async (flags: UserFlags) => {
      const deployment = await loadDeployment(flags, ctx.io);
      const users = await withIdentity(deployment, (identity) => identity.listUsers());
      emit(ctx.io, Boolean(flags.json), users, () =>
        renderTable(users, [
          { header: 'id', value: (u) => u.id },
          { header: 'name', value: (u) => u.name },
          { header: 'default project', value: (u) => u.defaultProjectId },
          { header: 'enabled', value: (u) => u.enabled },
        ]),
      );
    });

  group
    .command('hash-password')
    .description('print the scrypt hash of a password, for users[].passwordHash in the API config')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (flags: { passwordStdin?: boolean }) => {
      const { hashPassword } = await import('@stratus/api');
      const password = await newPassword(ctx.io, flags);
      if (password === undefined)
        throw usageError('No password given', 'Pass --password-stdin, or run it on a terminal.');
      ctx.io.stdout.write(`${await hashPassword(password)}\n`);
    });
}

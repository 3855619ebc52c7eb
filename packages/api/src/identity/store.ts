import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  currentTimestamp,
  InvalidInputError,
  NotFoundError,
  type Store,
  toBoolean,
  withStoreErrors,
} from '@stratus/core';
import type { Kysely } from 'kysely';
import type { ProjectEntry, UserEntry } from '../config.js';
import type { ApiDatabase } from '../migrations.js';
import { hashPassword, isPasswordHash, type PasswordHashOptions, verifyPassword } from './password.js';

/** The only domain: Keystone's `default` domain, named `Default`. */
export const DEFAULT_DOMAIN = Object.freeze({ id: 'default', name: 'Default' });

export interface Project {
  readonly id: string;
  readonly name: string;
  readonly description: string | null;
}

export interface User {
  readonly id: string;
  readonly name: string;
  readonly defaultProjectId: string | null;
  readonly enabled: boolean;
}

export interface AddUserInput {
  readonly name: string;
  /** Plain password, hashed here; or give `passwordHash`. */
  readonly password?: string;
  readonly passwordHash?: string;
  /** Default project name; created when missing. */
  readonly project: string;
  /** Roles on `project`; default `["member"]`. */
  readonly roles?: readonly string[];
  readonly id?: string;
}

export interface BootstrapResult {
  readonly projectsCreated: string[];
  readonly usersCreated: string[];
  readonly rolesAssigned: number;
}

const NAME = /^[^\s/][^/]{0,63}$/;
const ROLE = /^[a-z][a-z0-9_-]{0,63}$/;

/** A fresh Keystone-style id: 32 hex digits. */
export function newId(): string {
  return randomUUID().replaceAll('-', '');
}

/**
 * Users, projects and role assignments (tables `identity_*`). Bootstrapped from config at start;
 * the CLI (`stratus user add|passwd`) calls `addUser` and `setPassword`.
 */
export class IdentityStore {
  readonly #store: Store;
  readonly #db: Kysely<ApiDatabase>;
  readonly #hashOptions: PasswordHashOptions;
  #dummyHash: Promise<string> | undefined;

  /** `hashOptions` lowers the scrypt cost in tests; keep the defaults elsewhere. */
  constructor(store: Store, options: { hashOptions?: PasswordHashOptions } = {}) {
    this.#store = store;
    this.#db = store.db as Kysely<ApiDatabase>;
    this.#hashOptions = options.hashOptions ?? {};
  }

  /** The project named `name`, created when missing. */
  async ensureProject(entry: ProjectEntry): Promise<{ project: Project; created: boolean }> {
    if (!NAME.test(entry.name)) {
      throw new InvalidInputError('Invalid project', [
        { path: '/name', message: 'must be 1-64 characters, no "/" and no leading space' },
      ]);
    }
    const existing = await this.projectByName(entry.name);
    if (existing) return { project: existing, created: false };
    const project: Project = {
      id: entry.id ?? newId(),
      name: entry.name,
      description: entry.description ?? null,
    };
    await this.#run(`create project ${entry.name}`, () =>
      this.#db
        .insertInto('identity_projects')
        .values({ ...project, created_at: currentTimestamp(this.#store.dialect) })
        .execute(),
    );
    return { project, created: true };
  }

  /**
   * Create a user with a default project (created when missing) and roles on it.
   * @throws ConflictError when a user of that name exists; InvalidInputError for bad fields.
   */
  async addUser(input: AddUserInput): Promise<User> {
    const issues = [];
    if (typeof input.name !== 'string' || input.name.length === 0 || input.name.length > 255) {
      issues.push({ path: '/name', message: 'must be 1-255 characters' });
    }
    if (input.password === undefined && input.passwordHash === undefined) {
      issues.push({ path: '/password', message: 'give a password or a passwordHash' });
    }
    if (input.passwordHash !== undefined && !isPasswordHash(input.passwordHash)) {
      issues.push({
        path: '/passwordHash',
        message: 'is not a scrypt$N$r$p$salt$hash string from hashPassword()',
      });
    }
    const roles = input.roles ?? ['member'];
    roles.forEach((role, i) => {
      if (!ROLE.test(role)) issues.push({ path: `/roles/${i}`, message: `must match ${ROLE}` });
    });
    if (issues.length) throw new InvalidInputError('Invalid user', issues);
    if (await this.userByName(input.name)) {
      throw new ConflictError(
        `User ${input.name} already exists; use setPassword (stratus user passwd) to change its password.`,
        { details: { user: input.name } },
      );
    }
    const passwordHash =
      input.passwordHash ?? (await hashPassword(input.password as string, this.#hashOptions));
    const { project } = await this.ensureProject({ name: input.project });
    const now = currentTimestamp(this.#store.dialect);
    const id = input.id ?? newId();
    await this.#run(`create user ${input.name}`, () =>
      this.#db.transaction().execute(async (trx) => {
        await trx
          .insertInto('identity_users')
          .values({
            id,
            name: input.name,
            password_hash: passwordHash,
            default_project_id: project.id,
            enabled: true,
            created_at: now,
            updated_at: now,
          })
          .execute();
        for (const role of new Set(roles)) {
          await trx
            .insertInto('identity_role_assignments')
            .values({ user_id: id, project_id: project.id, role })
            .execute();
        }
      }),
    );
    return { id, name: input.name, defaultProjectId: project.id, enabled: true };
  }

  /** Replace a user's password (existing tokens stay valid until they expire or are revoked). */
  async setPassword(name: string, password: string): Promise<void> {
    const passwordHash = await hashPassword(password, this.#hashOptions);
    const result = await this.#run(`set the password of ${name}`, () =>
      this.#db
        .updateTable('identity_users')
        .set({ password_hash: passwordHash, updated_at: currentTimestamp(this.#store.dialect) })
        .where('name', '=', name)
        .executeTakeFirst(),
    );
    if (result.numUpdatedRows === 0n) throw new NotFoundError('User', name);
  }

  /** Give `user` the `roles` on `project` (by name; the project is created when missing). */
  async assignRoles(userName: string, projectName: string, roles: readonly string[]): Promise<number> {
    const user = await this.userByName(userName);
    if (!user) throw new NotFoundError('User', userName);
    const { project } = await this.ensureProject({ name: projectName });
    const have = new Set(await this.rolesOf(user.id, project.id));
    const missing = [...new Set(roles)].filter((r) => !have.has(r));
    for (const role of missing) {
      if (!ROLE.test(role)) {
        throw new InvalidInputError('Invalid role', [
          { path: '/roles', message: `${role} must match ${ROLE}` },
        ]);
      }
      await this.#run(`assign role ${role}`, () =>
        this.#db
          .insertInto('identity_role_assignments')
          .values({ user_id: user.id, project_id: project.id, role })
          .execute(),
      );
    }
    return missing.length;
  }

  /**
   * Create what config lists and is missing: projects, users (with their hashed password) and
   * role assignments. Existing users keep their password (the CLI may have changed it); roles
   * are only added, never removed.
   */
  async bootstrap(config: {
    readonly projects: readonly ProjectEntry[];
    readonly users: readonly UserEntry[];
  }): Promise<BootstrapResult> {
    const projectsCreated: string[] = [];
    const usersCreated: string[] = [];
    let rolesAssigned = 0;
    for (const entry of config.projects) {
      if ((await this.ensureProject(entry)).created) projectsCreated.push(entry.name);
    }
    for (const entry of config.users) {
      if (!(await this.userByName(entry.name))) {
        if (!(await this.projectByName(entry.project))) projectsCreated.push(entry.project);
        await this.addUser({
          name: entry.name,
          passwordHash: entry.passwordHash,
          project: entry.project,
          roles: entry.roles,
          ...(entry.id ? { id: entry.id } : {}),
        });
        usersCreated.push(entry.name);
        rolesAssigned += new Set(entry.roles).size;
      } else {
        rolesAssigned += await this.assignRoles(entry.name, entry.project, entry.roles);
      }
    }
    return { projectsCreated, usersCreated, rolesAssigned };
  }

  /**
   * The enabled user whose password matches, else undefined. Unknown users cost a hash
   * verification too, so response times do not reveal which names exist.
   */
  async checkPassword(user: User | undefined, password: string): Promise<boolean> {
    if (!user) {
      this.#dummyHash ??= hashPassword('stratus-dummy-password', this.#hashOptions);
      await verifyPassword(password, await this.#dummyHash);
      return false;
    }
    const row = await this.#run(`read user ${user.name}`, () =>
      this.#db
        .selectFrom('identity_users')
        .select('password_hash')
        .where('id', '=', user.id)
        .executeTakeFirst(),
    );
    return row !== undefined && user.enabled && (await verifyPassword(password, row.password_hash));
  }

  async userByName(name: string): Promise<User | undefined> {
    const row = await this.#run(`read user ${name}`, () =>
      this.#db.selectFrom('identity_users').selectAll().where('name', '=', name).executeTakeFirst(),
    );
    return row && toUser(row);
  }

  async userById(id: string): Promise<User | undefined> {
    const row = await this.#run(`read user ${id}`, () =>
      this.#db.selectFrom('identity_users').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    return row && toUser(row);
  }

  async projectByName(name: string): Promise<Project | undefined> {
    return this.#run(`read project ${name}`, () =>
      this.#db
        .selectFrom('identity_projects')
        .select(['id', 'name', 'description'])
        .where('name', '=', name)
        .executeTakeFirst(),
    );
  }

  async projectById(id: string): Promise<Project | undefined> {
    return this.#run(`read project ${id}`, () =>
      this.#db
        .selectFrom('identity_projects')
        .select(['id', 'name', 'description'])
        .where('id', '=', id)
        .executeTakeFirst(),
    );
  }

  /** The user's role names on the project, sorted. */
  async rolesOf(userId: string, projectId: string): Promise<string[]> {
    const rows = await this.#run('read role assignments', () =>
      this.#db
        .selectFrom('identity_role_assignments')
        .select('role')
        .where('user_id', '=', userId)
        .where('project_id', '=', projectId)
        .orderBy('role')
        .execute(),
    );
    return rows.map((r) => r.role);
  }

  /** Projects the user has at least one role on. */
  async projectsOf(userId: string): Promise<Project[]> {
    return this.#run('list projects of a user', () =>
      this.#db
        .selectFrom('identity_projects')
        .select(['identity_projects.id', 'identity_projects.name', 'identity_projects.description'])
        .where(({ exists, selectFrom }) =>
          exists(
            selectFrom('identity_role_assignments')
              .select('identity_role_assignments.role')
              .whereRef('identity_role_assignments.project_id', '=', 'identity_projects.id')
              .where('identity_role_assignments.user_id', '=', userId),
          ),
        )
        .orderBy('identity_projects.name')
        .execute(),
    );
  }

  /** Every user, by name (for `stratus user list`). */
  async listUsers(): Promise<User[]> {
    const rows = await this.#run('list users', () =>
      this.#db.selectFrom('identity_users').selectAll().orderBy('name').execute(),
    );
    return rows.map(toUser);
  }

  #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withStoreErrors({ operation, url: this.#store.url }, fn);
  }
}

function toUser(row: {
  id: string;
  name: string;
  default_project_id: string | null;
  enabled: boolean | number;
}): User {
  return {
    id: row.id,
    name: row.name,
    defaultProjectId: row.default_project_id,
    enabled: toBoolean(row.enabled),
  };
}

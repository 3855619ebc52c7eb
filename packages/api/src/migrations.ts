import type { MigrationSet, TimestampColumn } from '@stratus/core';
import { schemaTypes } from '@stratus/core';
import type { ColumnType } from 'kysely';

type NullableTimestamp = ColumnType<
  Date | string | null,
  Date | string | null | undefined,
  Date | string | null
>;

/** Row of `identity_projects`. Every project lives in the single `default` domain. */
export interface IdentityProjectsTable {
  id: string;
  name: string;
  description: string | null;
  created_at: TimestampColumn;
}

/** Row of `identity_users`. `password_hash` is `scrypt$N$r$p$salt$hash`, never a plain password. */
export interface IdentityUsersTable {
  id: string;
  name: string;
  password_hash: string;
  default_project_id: string | null;
  enabled: ColumnType<boolean | number, boolean, boolean>;
  created_at: TimestampColumn;
  updated_at: TimestampColumn;
}

/** Row of `identity_role_assignments`: a role of a user on a project. */
export interface IdentityRoleAssignmentsTable {
  user_id: string;
  project_id: string;
  role: string;
}

/**
 * Row of `tokens`. Only the SHA-256 of a token is stored, so a leaked table does not leak
 * usable tokens.
 */
export interface TokensTable {
  id_hash: string;
  user_id: string;
  project_id: string | null;
  /** JSON array of the auth methods (`["password"]`, `["token"]`). */
  methods: string;
  audit_id: string;
  /** The audit id of the token this one was rescoped from (Keystone's audit chain). */
  parent_audit_id: string | null;
  issued_at: TimestampColumn;
  expires_at: TimestampColumn;
  revoked_at: NullableTimestamp;
}

/** The tables owned by `@stratus/api`. */
export interface ApiDatabase {
  identity_projects: IdentityProjectsTable;
  identity_users: IdentityUsersTable;
  identity_role_assignments: IdentityRoleAssignmentsTable;
  tokens: TokensTable;
}

/** Migrations of `@stratus/api` (namespace `api`): identity and tokens. */
export const apiMigrations: MigrationSet = {
  namespace: 'api',
  dependsOn: ['core'],
  migrations: {
    '0001_identity_tokens': {
      async up(db, { dialect }) {
        const t = schemaTypes(dialect);
        await db.schema
          .createTable('identity_projects')
          .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('description', 'varchar(255)')
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .execute();
        await db.schema
          .createTable('identity_users')
          .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('name', 'varchar(255)', (c) => c.notNull().unique())
          .addColumn('password_hash', 'varchar(512)', (c) => c.notNull())
          .addColumn('default_project_id', 'varchar(64)', (c) => c.references('identity_projects.id'))
          .addColumn('enabled', t.boolean, (c) => c.notNull().defaultTo(true))
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('updated_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .execute();
        await db.schema
          .createTable('identity_role_assignments')
          .addColumn('user_id', 'varchar(64)', (c) =>
            c.notNull().references('identity_users.id').onDelete('cascade'),
          )
          .addColumn('project_id', 'varchar(64)', (c) =>
            c.notNull().references('identity_projects.id').onDelete('cascade'),
          )
          .addColumn('role', 'varchar(64)', (c) => c.notNull())
          .addPrimaryKeyConstraint('identity_role_assignments_pkey', ['user_id', 'project_id', 'role'])
          .execute();
        await db.schema
          .createTable('tokens')
          .addColumn('id_hash', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('project_id', 'varchar(64)')
          .addColumn('methods', t.json, (c) => c.notNull())
          .addColumn('audit_id', 'varchar(64)', (c) => c.notNull())
          .addColumn('parent_audit_id', 'varchar(64)')
          .addColumn('issued_at', t.timestamp, (c) => c.notNull())
          .addColumn('expires_at', t.timestamp, (c) => c.notNull())
          .addColumn('revoked_at', t.timestamp)
          .execute();
        await db.schema.createIndex('tokens_expires_idx').on('tokens').column('expires_at').execute();
        await db.schema.createIndex('tokens_user_idx').on('tokens').column('user_id').execute();
      },
    },
  },
};

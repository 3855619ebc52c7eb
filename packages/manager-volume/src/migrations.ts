import { type MigrationSet, schemaTypes } from '@stratus/core';

/**
 * The volume service's tables (namespace `volume`): `volumes` and `snapshots`, soft-deleted
 * (`deleted`, `deleted_at`) as in Nova. One migration serves SQLite and PostgreSQL.
 */
export const volumeMigrations: MigrationSet = {
  namespace: 'volume',
  dependsOn: ['core'],
  migrations: {
    '0001_volumes_snapshots': {
      async up(db, { dialect }) {
        const t = schemaTypes(dialect);
        await db.schema
          .createTable('volumes')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('project_id', 'varchar(255)')
          .addColumn('user_id', 'varchar(255)')
          .addColumn('host', 'varchar(255)')
          .addColumn('size_gib', 'integer', (c) => c.notNull())
          .addColumn('name', 'varchar(255)')
          .addColumn('description', 'varchar(255)')
          .addColumn('status', 'varchar(32)', (c) => c.notNull())
          .addColumn('attach_status', 'varchar(32)', (c) => c.notNull().defaultTo('detached'))
          .addColumn('instance_id', 'varchar(255)')
          .addColumn('mountpoint', 'varchar(255)')
          .addColumn('provider_location', 'varchar(1024)')
          .addColumn('provider_auth', 'varchar(1024)')
          .addColumn('source_snapshot_id', 'varchar(36)')
          .addColumn('error_reason', 'text')
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('updated_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('deleted_at', t.timestamp)
          .addColumn('deleted', t.boolean, (c) => c.notNull().defaultTo(false))
          .execute();
        await db.schema
          .createIndex('volumes_project_idx')
          .on('volumes')
          .columns(['project_id', 'deleted', 'created_at'])
          .execute();
        await db.schema
          .createIndex('volumes_host_status_idx')
          .on('volumes')
          .columns(['host', 'status'])
          .execute();

        await db.schema
          .createTable('snapshots')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('project_id', 'varchar(255)')
          .addColumn('user_id', 'varchar(255)')
          .addColumn('volume_id', 'varchar(36)', (c) => c.notNull().references('volumes.id'))
          .addColumn('volume_size_gib', 'integer', (c) => c.notNull())
          .addColumn('name', 'varchar(255)')
          .addColumn('description', 'varchar(255)')
          .addColumn('status', 'varchar(32)', (c) => c.notNull())
          .addColumn('provider_location', 'varchar(1024)')
          .addColumn('error_reason', 'text')
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('updated_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('deleted_at', t.timestamp)
          .addColumn('deleted', t.boolean, (c) => c.notNull().defaultTo(false))
          .execute();
        await db.schema
          .createIndex('snapshots_volume_idx')
          .on('snapshots')
          .columns(['volume_id', 'deleted'])
          .execute();
        await db.schema
          .createIndex('snapshots_project_idx')
          .on('snapshots')
          .columns(['project_id', 'deleted', 'created_at'])
          .execute();
      },
    },
  },
};

import { type MigrationSet, schemaTypes } from '@stratus/core';

/**
 * The compute service's tables (namespace `compute`): `instances` (soft-deleted, as in Nova) and
 * `volume_attachments` (a row per attached volume, removed on detach). One migration serves
 * SQLite and PostgreSQL.
 */
export const computeMigrations: MigrationSet = {
  namespace: 'compute',
  dependsOn: ['core'],
  migrations: {
    '0001_instances_volume_attachments': {
      async up(db, { dialect }) {
        const t = schemaTypes(dialect);
        await db.schema
          .createTable('instances')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('project_id', 'varchar(255)')
          .addColumn('user_id', 'varchar(255)')
          .addColumn('host', 'varchar(255)')
          .addColumn('name', 'varchar(255)', (c) => c.notNull())
          .addColumn('flavor_name', 'varchar(255)', (c) => c.notNull())
          .addColumn('vcpus', 'integer', (c) => c.notNull())
          .addColumn('memory_mib', 'integer', (c) => c.notNull())
          .addColumn('root_gib', 'integer', (c) => c.notNull())
          .addColumn('image_ref', 'varchar(255)', (c) => c.notNull())
          .addColumn('vm_state', 'varchar(32)', (c) => c.notNull())
          .addColumn('task_state', 'varchar(32)')
          .addColumn('power_state', 'varchar(32)', (c) => c.notNull().defaultTo('nostate'))
          .addColumn('locked', t.boolean, (c) => c.notNull().defaultTo(false))
          .addColumn('locked_by', 'varchar(16)')
          .addColumn('error_reason', 'text')
          .addColumn('launched_at', t.timestamp)
          .addColumn('terminated_at', t.timestamp)
          .addColumn('rescued_at', t.timestamp)
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('updated_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('deleted_at', t.timestamp)
          .addColumn('deleted', t.boolean, (c) => c.notNull().defaultTo(false))
          .execute();
        await db.schema
          .createIndex('instances_project_idx')
          .on('instances')
          .columns(['project_id', 'deleted', 'created_at'])
          .execute();
        await db.schema
          .createIndex('instances_host_idx')
          .on('instances')
          .columns(['host', 'deleted', 'vm_state'])
          .execute();

        await db.schema
          .createTable('volume_attachments')
          .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
          .addColumn('instance_id', 'varchar(36)', (c) => c.notNull().references('instances.id'))
          .addColumn('volume_id', 'varchar(36)', (c) => c.notNull())
          .addColumn('mountpoint', 'varchar(255)', (c) => c.notNull())
          .addColumn('status', 'varchar(32)', (c) => c.notNull())
          .addColumn('connection_info', t.json)
          .addColumn('created_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .addColumn('updated_at', t.timestamp, (c) => c.notNull().defaultTo(t.now))
          .execute();
        // One live attachment per volume and per device of an instance: a racing second
        // request fails on insert instead of both reaching the hypervisor.
        await db.schema
          .createIndex('volume_attachments_volume_uq')
          .on('volume_attachments')
          .column('volume_id')
          .unique()
          .execute();
        await db.schema
          .createIndex('volume_attachments_device_uq')
          .on('volume_attachments')
          .columns(['instance_id', 'mountpoint'])
          .unique()
          .execute();
      },
    },
  },
};

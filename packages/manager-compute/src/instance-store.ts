import { currentTimestamp, type Store, withStoreErrors } from '@stratus/core';
import type { Kysely, UpdateObject } from 'kysely';
import type { ComputeDatabase, InstanceRow } from './tables.js';
import type { TaskState, VmState } from './types.js';

/** The conditions of one conditional instance update; every given one must hold. */
export interface InstanceGuard {
  /** vm_state must be one of these. */
  readonly vmStates?: readonly VmState[];
  /** task_state must be one of these (`null`: idle). */
  readonly taskStates?: readonly (TaskState | null)[];
  /** task_state must not be this one (null passes). */
  readonly notTaskState?: TaskState;
  /** The row must belong to this host. */
  readonly host?: string;
  /** The row must not be locked (a guard for non-admin callers). */
  readonly unlocked?: boolean;
}

/** Columns to set on an instance row (values or SQL expressions such as `currentTimestamp()`). */
export type InstanceUpdate = UpdateObject<ComputeDatabase, 'instances'>;

/**
 * Instance rows, shared by `ComputeApi` and `ComputeManager`. Every state change is one
 * `UPDATE ... WHERE id = ? AND vm_state IN (...) AND task_state ...`: of two racing requests
 * exactly one wins (never read-then-write).
 */
export class InstanceStore {
  readonly store: Store;
  readonly db: Kysely<ComputeDatabase>;

  constructor(store: Store) {
    this.store = store;
    this.db = store.db as Kysely<ComputeDatabase>;
  }

  now() {
    return currentTimestamp(this.store.dialect);
  }

  /** Apply `set` (and `updated_at`) when the live row `id` passes `guard`; whether it did. */
  update(id: string, guard: InstanceGuard, set: InstanceUpdate): Promise<boolean> {
    return this.run(`update instance ${id}`, async () => {
      let query = this.db
        .updateTable('instances')
        .set({ ...set, updated_at: this.now() })
        .where('id', '=', id)
        .where('deleted', '=', false);
      if (guard.vmStates) query = query.where('vm_state', 'in', [...guard.vmStates]);
      if (guard.taskStates) {
        const states = guard.taskStates.filter((s): s is TaskState => s !== null);
        const idle = guard.taskStates.includes(null);
        query = query.where((eb) => {
          const alternatives = [];
          if (states.length) alternatives.push(eb('task_state', 'in', states));
          if (idle) alternatives.push(eb('task_state', 'is', null));
          return alternatives.length ? eb.or(alternatives) : eb.lit(false);
        });
      }
      if (guard.notTaskState !== undefined) {
        const not = guard.notTaskState;
        query = query.where((eb) => eb.or([eb('task_state', 'is', null), eb('task_state', '!=', not)]));
      }
      if (guard.host !== undefined) query = query.where('host', '=', guard.host);
      if (guard.unlocked) query = query.where('locked', '=', false);
      const result = await query.executeTakeFirst();
      return result.numUpdatedRows === 1n;
    });
  }

  /** The row, deleted ones included when asked. */
  get(id: string, options: { withDeleted?: boolean } = {}): Promise<InstanceRow | undefined> {
    return this.run(`read instance ${id}`, () => {
      let query = this.db.selectFrom('instances').selectAll().where('id', '=', id);
      if (!options.withDeleted) query = query.where('deleted', '=', false);
      return query.executeTakeFirst();
    });
  }

  run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withStoreErrors({ operation, url: this.store.url }, fn);
  }
}

import { type Kysely, type RawBuilder, type Selectable, sql } from 'kysely';
import { InvalidInputError, NotFoundError } from '../errors.js';
import type { CoreDatabase, ServicesTable } from './core-migrations.js';
import type { Store } from './database.js';
import { currentTimestamp, toBoolean, toDate, toDateOrNull } from './dialect.js';
import { withStoreErrors } from './store-errors.js';

/** A service record as the registry returns it, liveness included. */
export interface ServiceRecord {
  readonly id: number;
  readonly host: string;
  readonly binary: string;
  readonly topic: string;
  readonly availabilityZone: string;
  readonly version: string;
  readonly reportCount: number;
  readonly disabled: boolean;
  readonly disabledReason: string | null;
  readonly capabilities: Record<string, unknown>;
  readonly createdAt: Date;
  /** Last heartbeat or registration, on the database clock. */
  readonly updatedAt: Date;
  readonly lastSeenUp: Date | null;
  /** Heartbeat no older than `serviceDownTimeSec`, both times read on the database clock. */
  readonly up: boolean;
  /** Seconds since the last heartbeat, on the database clock (never negative). */
  readonly lastHeartbeatAgeSec: number;
}

export interface RegisterServiceInput {
  readonly host: string;
  readonly binary: string;
  readonly topic: string;
  /** Default `nova`, as in OpenStack. */
  readonly availabilityZone?: string;
  readonly version: string;
}

export interface ListServicesFilter {
  readonly binary?: string;
  readonly topic?: string;
  readonly host?: string;
  /** Include disabled services too; default false (only enabled ones). */
  readonly includeDisabled?: boolean;
}

export interface ServiceRegistryOptions {
  /** A service is down when its last heartbeat is older than this; default 60 s. */
  readonly serviceDownTimeSec?: number;
}

/** Identifies a service row: its id, or its (host, binary) pair. */
export type ServiceRef = number | { readonly host: string; readonly binary: string };

/** Result of one heartbeat. */
export interface HeartbeatResult {
  readonly reportCount: number;
  readonly updatedAt: Date;
}

type ServiceRow = Selectable<ServicesTable> & { db_now: unknown };

/**
 * The `services` table: which (host, binary) runs where, and whether it is alive.
 * Liveness is judged on the database clock only, so hosts with skewed clocks agree.
 * Every failure is typed: an unreachable database is a retryable `STORE_UNAVAILABLE`.
 */
export class ServiceRegistry {
  readonly serviceDownTimeSec: number;
  readonly #store: Store;
  readonly #db: Kysely<CoreDatabase>;

  constructor(store: Store, options: ServiceRegistryOptions = {}) {
    this.#store = store;
    this.#db = store.db as Kysely<CoreDatabase>;
    this.serviceDownTimeSec = options.serviceDownTimeSec ?? 60;
  }

  /**
   * Creates the record, or updates topic, zone and version of an existing one (its
   * report count and disabled flag are kept). Stamps `updated_at`: registering is alive.
   */
  async register(input: RegisterServiceInput): Promise<ServiceRecord> {
    for (const field of ['host', 'binary', 'topic', 'version'] as const) {
      if (typeof input[field] !== 'string' || input[field] === '') {
        throw new InvalidInputError('Cannot register service', [
          { path: `/${field}`, message: 'must be a non-empty string' },
        ]);
      }
    }
    const now = currentTimestamp(this.#store.dialect);
    const zone = input.availabilityZone ?? 'nova';
    return this.#run(`register service ${input.host}/${input.binary}`, async () => {
      await this.#db
        .insertInto('services')
        .values({
          host: input.host,
          binary: input.binary,
          topic: input.topic,
          availability_zone: zone,
          version: input.version,
          created_at: now,
          updated_at: now,
          last_seen_up: now,
        })
        .onConflict((oc) =>
          oc.columns(['host', 'binary']).doUpdateSet({
            topic: input.topic,
            availability_zone: zone,
            version: input.version,
            updated_at: now,
            last_seen_up: now,
            deleted_at: null,
          }),
        )
        .execute();
      const record = await this.#select()
        .where('host', '=', input.host)
        .where('binary', '=', input.binary)
        .executeTakeFirst();
      if (!record) throw new NotFoundError('Service', `${input.host}/${input.binary}`);
      return this.#toRecord(record);
    });
  }

  /**
   * One heartbeat, in a single UPDATE: `report_count + 1`, `updated_at` = the database
   * clock, and the capabilities when given. Throws `NOT_FOUND` when the record is gone
   * (the caller re-registers), `STORE_UNAVAILABLE` when the database cannot be reached.
   */
  async reportState(ref: ServiceRef, capabilities?: Record<string, unknown>): Promise<HeartbeatResult> {
    const now = currentTimestamp(this.#store.dialect);
    const label = typeof ref === 'number' ? `#${ref}` : `${ref.host}/${ref.binary}`;
    return this.#run(`report state of service ${label}`, async () => {
      let query = this.#db.updateTable('services').set((eb) => ({
        report_count: eb('report_count', '+', 1),
        updated_at: now,
        last_seen_up: now,
        ...(capabilities === undefined ? {} : { capabilities: JSON.stringify(capabilities) }),
      }));
      query =
        typeof ref === 'number'
          ? query.where('id', '=', ref)
          : query.where('host', '=', ref.host).where('binary', '=', ref.binary);
      const row = await query.returning(['report_count', 'updated_at']).executeTakeFirst();
      if (!row) throw new NotFoundError('Service', label);
      return { reportCount: row.report_count, updatedAt: toDate(row.updated_at) };
    });
  }

  /** Services matching every given filter, each with its liveness, ordered by host then binary. */
  async list(filter: ListServicesFilter = {}): Promise<ServiceRecord[]> {
    return this.#run('list services', async () => {
      let query = this.#select();
      if (filter.binary !== undefined) query = query.where('binary', '=', filter.binary);
      if (filter.topic !== undefined) query = query.where('topic', '=', filter.topic);
      if (filter.host !== undefined) query = query.where('host', '=', filter.host);
      if (!filter.includeDisabled) query = query.where('disabled', '=', false);
      const rows = await query.orderBy('host').orderBy('binary').execute();
      return rows.map((row) => this.#toRecord(row));
    });
  }

  /** The record of (host, binary), or `undefined` when none is registered. */
  async get(host: string, binary: string): Promise<ServiceRecord | undefined> {
    return this.#run(`read service ${host}/${binary}`, async () => {
      const row = await this.#select()
        .where('host', '=', host)
        .where('binary', '=', binary)
        .executeTakeFirst();
      return row ? this.#toRecord(row) : undefined;
    });
  }

  /**
   * Disables (with an optional reason) or enables a service; enabling clears the reason.
   * Does not touch `updated_at`: an admin action is not a heartbeat.
   */
  async setDisabled(
    host: string,
    binary: string,
    disabled: boolean,
    reason?: string,
  ): Promise<ServiceRecord> {
    return this.#run(`${disabled ? 'disable' : 'enable'} service ${host}/${binary}`, async () => {
      const result = await this.#db
        .updateTable('services')
        .set({ disabled, disabled_reason: disabled ? (reason ?? null) : null })
        .where('host', '=', host)
        .where('binary', '=', binary)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new NotFoundError('Service', `${host}/${binary}`);
      const row = await this.#select()
        .where('host', '=', host)
        .where('binary', '=', binary)
        .executeTakeFirst();
      if (!row) throw new NotFoundError('Service', `${host}/${binary}`);
      return this.#toRecord(row);
    });
  }

  /** Removes the record (a killed service). @returns whether one existed. */
  async delete(host: string, binary: string): Promise<boolean> {
    return this.#run(`delete service ${host}/${binary}`, async () => {
      const result = await this.#db
        .deleteFrom('services')
        .where('host', '=', host)
        .where('binary', '=', binary)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  /** Whether a heartbeat at `record.updatedAt` is recent at `dbNow` (a time read from the database). */
  isUp(record: Pick<ServiceRecord, 'updatedAt'>, dbNow: Date): boolean {
    return dbNow.getTime() - record.updatedAt.getTime() <= this.serviceDownTimeSec * 1000;
  }

  /** Rows with the database clock read in the same statement. */
  #select() {
    const query = this.#db.selectFrom('services').where('deleted_at', 'is', null);
    if (this.#store.dialect !== 'postgres') {
      return query.selectAll().select(sql<unknown>`${currentTimestamp(this.#store.dialect)}`.as('db_now'));
    }
    // Timestamps as epoch milliseconds: node-postgres parses each timestamptz with a regex
    // (postgres-date), which made listing 10,000 services take ~0.5 s; a float8 is a plain number.
    return query
      .select([
        'id',
        'host',
        'binary',
        'topic',
        'availability_zone',
        'version',
        'report_count',
        'disabled',
        'disabled_reason',
        'capabilities',
        epochMs('created_at').as('created_at'),
        epochMs('updated_at').as('updated_at'),
        epochMs('last_seen_up').as('last_seen_up'),
        epochMs('deleted_at').as('deleted_at'),
        epochMs(sql`CURRENT_TIMESTAMP`).as('db_now'),
      ])
      .$castTo<ServiceRow>();
  }

  #toRecord(row: ServiceRow): ServiceRecord {
    const dbNow = toDate(row.db_now);
    const updatedAt = toDate(row.updated_at);
    return {
      id: Number(row.id),
      host: row.host,
      binary: row.binary,
      topic: row.topic,
      availabilityZone: row.availability_zone,
      version: row.version,
      reportCount: Number(row.report_count),
      disabled: toBoolean(row.disabled),
      disabledReason: row.disabled_reason,
      capabilities: parseCapabilities(row.capabilities),
      createdAt: toDate(row.created_at),
      updatedAt,
      lastSeenUp: toDateOrNull(row.last_seen_up),
      up: this.isUp({ updatedAt }, dbNow),
      lastHeartbeatAgeSec: Math.max(0, (dbNow.getTime() - updatedAt.getTime()) / 1000),
    };
  }

  #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withStoreErrors({ operation, url: this.#store.url }, fn);
  }
}

/**
 * A PostgreSQL timestamptz as whole epoch milliseconds (float8; NULL stays NULL), truncated as
 * node-postgres truncates microseconds; {@link toDate} reads it. `date_part` computes in float8
 * (`extract` in numeric cost ~1 µs more per value); float8 seconds are off by < 0.3 µs, so
 * adding 0.5 µs before `floor` keeps an exact `.123000` from landing on `.122999…`.
 */
function epochMs(value: (keyof ServicesTable & string) | RawBuilder<unknown>) {
  const expression = typeof value === 'string' ? sql.ref(value) : value;
  return sql<Date | string>`floor(date_part('epoch', ${expression}) * 1000 + 0.0005)`;
}

function parseCapabilities(text: string | null): Record<string, unknown> {
  if (!text) return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { type Store, toDate, toDateOrNull, withStoreErrors } from '@stratus/core';
import type { Kysely } from 'kysely';
import type { ApiDatabase } from '../migrations.js';

/** What a token stands for. The token string itself is only known to its holder. */
export interface TokenRecord {
  readonly userId: string;
  /** Null for an unscoped token. */
  readonly projectId: string | null;
  readonly methods: readonly string[];
  readonly auditId: string;
  readonly parentAuditId: string | null;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

export interface IssueTokenInput {
  readonly userId: string;
  readonly projectId: string | null;
  readonly methods: readonly string[];
  readonly expiresAt: Date;
  readonly parentAuditId?: string | null;
}

/** SHA-256 of a token, hex: the only form stored. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Opaque bearer tokens: 32 random bytes (base64url) handed to the client, stored as their SHA-256
 * with scope, expiry and revocation time (table `tokens`).
 */
export class TokenStore {
  readonly #store: Store;
  readonly #db: Kysely<ApiDatabase>;

  constructor(store: Store) {
    this.#store = store;
    this.#db = store.db as Kysely<ApiDatabase>;
  }

  /** Issue a token; the returned string is shown once and never stored. */
  async issue(input: IssueTokenInput): Promise<{ token: string; record: TokenRecord }> {
    const token = randomBytes(32).toString('base64url');
    const record: TokenRecord = {
      userId: input.userId,
      projectId: input.projectId,
      methods: [...input.methods],
      auditId: randomBytes(16).toString('base64url').slice(0, 22),
      parentAuditId: input.parentAuditId ?? null,
      issuedAt: new Date(),
      expiresAt: input.expiresAt,
    };
    await this.#run('issue a token', () =>
      this.#db
        .insertInto('tokens')
        .values({
          id_hash: tokenHash(token),
          user_id: record.userId,
          project_id: record.projectId,
          methods: JSON.stringify(record.methods),
          audit_id: record.auditId,
          parent_audit_id: record.parentAuditId,
          issued_at: record.issuedAt,
          expires_at: record.expiresAt,
          revoked_at: null,
        })
        .execute(),
    );
    return { token, record };
  }

  /** The token's record when it exists, is not revoked and has not expired; else undefined. */
  async validate(token: string): Promise<TokenRecord | undefined> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 512) return undefined;
    const row = await this.#run('validate a token', () =>
      this.#db.selectFrom('tokens').selectAll().where('id_hash', '=', tokenHash(token)).executeTakeFirst(),
    );
    if (!row || toDateOrNull(row.revoked_at) !== null) return undefined;
    const expiresAt = toDate(row.expires_at);
    if (expiresAt.getTime() <= Date.now()) return undefined;
    return {
      userId: row.user_id,
      projectId: row.project_id,
      methods: parseMethods(row.methods),
      auditId: row.audit_id,
      parentAuditId: row.parent_audit_id,
      issuedAt: toDate(row.issued_at),
      expiresAt,
    };
  }

  /** Revoke a token. @returns false when it was unknown, already revoked or expired. */
  async revoke(token: string): Promise<boolean> {
    const result = await this.#run('revoke a token', () =>
      this.#db
        .updateTable('tokens')
        .set({ revoked_at: new Date() })
        .where('id_hash', '=', tokenHash(token))
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', new Date())
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /** Delete tokens that expired more than `graceSec` ago. @returns how many. */
  async purgeExpired(graceSec = 3600): Promise<number> {
    const before = new Date(Date.now() - graceSec * 1000);
    const result = await this.#run('purge expired tokens', () =>
      this.#db.deleteFrom('tokens').where('expires_at', '<', before).executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return withStoreErrors({ operation, url: this.#store.url }, fn);
  }
}

function parseMethods(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((m): m is string => typeof m === 'string') : [];
  } catch {
    return [];
  }
}

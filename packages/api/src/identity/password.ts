import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';
import { InvalidInputError } from '@stratus/core';

/** scrypt cost parameters. The defaults (N=2^15, r=8, p=1) take ~50-100 ms and 32 MiB. */
export interface PasswordHashOptions {
  /** CPU/memory cost, a power of two from 2^10 to 2^20. */
  readonly N?: number;
  readonly r?: number;
  readonly p?: number;
}

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const DEFAULTS = { N: 2 ** 15, r: 8, p: 1 } as const;
/** Bounds for parameters read back from a stored hash, so a crafted hash cannot exhaust memory. */
const MAX_N = 2 ** 20;
const MAX_RP = 32;

function derive(
  password: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  keyLength = KEY_LENGTH,
): Promise<Buffer> {
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLength, options, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

function checkParams(N: number, r: number, p: number): string | undefined {
  if (!Number.isInteger(N) || N < 2 ** 10 || N > MAX_N || (N & (N - 1)) !== 0) {
    return `N must be a power of two from 1024 to ${MAX_N}`;
  }
  if (!Number.isInteger(r) || r < 1 || r > MAX_RP) return `r must be an integer from 1 to ${MAX_RP}`;
  if (!Number.isInteger(p) || p < 1 || p > MAX_RP) return `p must be an integer from 1 to ${MAX_RP}`;
  return undefined;
}

/**
 * Hash a password for storage (config `passwordHash`, the `identity_users` table):
 * a self-describing `scrypt$N$r$p$salt$hash` string, salt and hash in base64url.
 * @throws InvalidInputError for an empty password or out-of-range parameters.
 */
export async function hashPassword(plain: string, options: PasswordHashOptions = {}): Promise<string> {
  if (typeof plain !== 'string' || plain.length === 0) {
    throw new InvalidInputError('Invalid password', [{ path: '/password', message: 'must not be empty' }]);
  }
  const { N, r, p } = { ...DEFAULTS, ...options };
  const bad = checkParams(N, r, p);
  if (bad) throw new InvalidInputError('Invalid password hash options', [{ path: '/options', message: bad }]);
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(plain, salt, N, r, p);
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** True when `encoded` looks like a hash made by {@link hashPassword} (for config checks). */
export function isPasswordHash(encoded: string): boolean {
  return parseHash(encoded) !== undefined;
}

function parseHash(encoded: string) {
  const parts = typeof encoded === 'string' ? encoded.split('$') : [];
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map((x) => Number(x)) as [number, number, number];
  if (checkParams(N, r, p)) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const hash = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < 8 || hash.length < 16 || hash.length > 128) return undefined;
  return { N, r, p, salt, hash };
}

/**
 * Check `plain` against a hash from {@link hashPassword}, in constant time. A malformed hash
 * never matches (it does not throw), so a corrupt row locks that user out instead of failing
 * every login.
 */
export async function verifyPassword(plain: string, encoded: string): Promise<boolean> {
  const parsed = parseHash(encoded);
  if (!parsed || typeof plain !== 'string') return false;
  const key = await derive(plain, parsed.salt, parsed.N, parsed.r, parsed.p, parsed.hash.length);
  return key.length === parsed.hash.length && timingSafeEqual(key, parsed.hash);
}

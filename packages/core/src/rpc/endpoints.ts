import type { Static, TSchema } from 'typebox';
import type { RequestContext } from '../context.js';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { parseVersion } from './envelope.js';

/** What a handler learns about the call besides context and args. */
export interface CallInfo {
  /** Child logger bound to `requestId`, `method` and `messageId`. */
  readonly logger: Logger;
  /** The envelope's message id. */
  readonly messageId: string;
  readonly method: string;
  /** The API version the caller asked for. */
  readonly version: string;
  /** Epoch ms after which the caller stops waiting; absent for casts. */
  readonly deadline?: number;
}

/** One callable method: the schema its args must pass and the code that serves it. */
export interface Endpoint<S extends TSchema = TSchema, R = unknown> {
  /** typebox schema of the keyword args; checked before `handler` runs. */
  readonly args: S;
  /**
   * Serves the call. Throw a `StratusError` subclass for outcomes the caller should branch on;
   * the return value must be JSON-serialisable (it is the reply).
   */
  handler(ctx: RequestContext, args: Static<S>, call: CallInfo): Promise<R> | R;
  /** The API version (`major.minor`) that introduced this method; documentation and a start-up check. */
  readonly version?: string;
}

/** Wire name (`create_volume`) → endpoint. Only declared methods are callable. */
export type EndpointTable = Readonly<Record<string, Endpoint>>;

/** The static type of an endpoint's args. */
export type EndpointArgs<E> = E extends Endpoint<infer S, unknown> ? Static<S> : never;
/** What an endpoint's handler resolves to. */
export type EndpointResult<E> = E extends Endpoint<TSchema, infer R> ? Awaited<R> : never;

/** Declare an endpoint; `handler`'s args are typed from `args` (the schema). */
export function endpoint<S extends TSchema, R>(
  args: S,
  handler: (ctx: RequestContext, args: Static<S>, call: CallInfo) => Promise<R> | R,
  options: { version?: string } = {},
): Endpoint<S, R> {
  return Object.freeze({
    args,
    handler,
    ...(options.version === undefined ? {} : { version: options.version }),
  });
}

const WIRE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Declare a table of endpoints, keeping each entry's precise type (for typed client stubs via
 * `EndpointArgs`/`EndpointResult`). Checks wire names and versions; freezes a null-prototype copy
 * so a lookup by wire name can never reach `Object.prototype`.
 * @throws InvalidInputError naming each bad wire name or version.
 */
export function defineEndpoints<const T extends Record<string, Endpoint<TSchema, unknown>>>(
  table: T,
): Readonly<T> {
  const issues: { path: string; message: string }[] = [];
  const copy = Object.create(null) as Record<string, Endpoint<TSchema, unknown>>;
  for (const [name, entry] of Object.entries(table)) {
    if (!WIRE_NAME.test(name))
      issues.push({ path: `/${name}`, message: 'wire names are identifiers (create_volume)' });
    if (typeof entry?.handler !== 'function')
      issues.push({ path: `/${name}/handler`, message: 'must be a function' });
    if (entry?.version !== undefined) {
      try {
        parseVersion(entry.version);
      } catch {
        issues.push({ path: `/${name}/version`, message: 'must be major.minor' });
      }
    }
    copy[name] = entry;
  }
  if (issues.length > 0) throw new InvalidInputError('Invalid endpoint table', issues);
  return Object.freeze(copy) as Readonly<T>;
}

const BRAND = Symbol.for('@stratus/core:error');

/** Stable, machine-readable error codes. Callers branch on these, never on messages. */
export type StratusErrorCode =
  | 'NOT_FOUND'
  | 'INVALID_INPUT'
  | 'INVALID_STATE'
  | 'CONFLICT'
  | 'QUOTA_EXCEEDED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'TIMEOUT'
  | 'UNSUPPORTED_VERSION'
  | 'NOT_SUPPORTED'
  | 'PLUGIN_NOT_FOUND'
  | 'PLUGIN_INVALID'
  | 'PLUGIN_KIND_MISMATCH'
  | 'CONTRACT_MISMATCH'
  | 'CONFIG_INVALID'
  | 'COMMAND_FAILED'
  | 'COMMAND_NOT_ALLOWED'
  | 'DRIVER_FAILURE'
  | 'STORE_UNAVAILABLE'
  | 'STORE_FAILURE'
  | 'TRANSPORT_UNAVAILABLE'
  | 'REMOTE_ERROR'
  | 'INTERNAL'
  | 'RATE_LIMITED';

export interface StratusErrorOptions {
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly retryable?: boolean;
  readonly httpStatus?: number;
}

/** Plain form of an error, as it crosses a process boundary. */
export interface SerializedError {
  readonly name: string;
  readonly code: string;
  readonly message: string;
  readonly httpStatus: number;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;
}

const DEFAULT_HTTP_STATUS: Record<StratusErrorCode, number> = {
  NOT_FOUND: 404,
  INVALID_INPUT: 400,
  INVALID_STATE: 409,
  CONFLICT: 409,
  QUOTA_EXCEEDED: 413,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  TIMEOUT: 504,
  UNSUPPORTED_VERSION: 400,
  NOT_SUPPORTED: 501,
  PLUGIN_NOT_FOUND: 500,
  PLUGIN_INVALID: 500,
  PLUGIN_KIND_MISMATCH: 500,
  CONTRACT_MISMATCH: 500,
  CONFIG_INVALID: 500,
  COMMAND_FAILED: 500,
  COMMAND_NOT_ALLOWED: 500,
  DRIVER_FAILURE: 500,
  STORE_UNAVAILABLE: 503,
  STORE_FAILURE: 500,
  TRANSPORT_UNAVAILABLE: 503,
  REMOTE_ERROR: 500,
  INTERNAL: 500,
  RATE_LIMITED: 429,
};

/**
 * Base of every error Stratus throws on purpose. Check with `StratusError.is(e, code)`:
 * `instanceof` fails when two copies of @stratus/core are installed.
 */
export class StratusError extends Error {
  declare readonly [BRAND]: true;
  override readonly name: string = 'StratusError';
  readonly code: StratusErrorCode;
  readonly httpStatus: number;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: StratusErrorCode, message: string, options: StratusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    Object.defineProperty(this, BRAND, { value: true });
    this.code = code;
    this.httpStatus = options.httpStatus ?? DEFAULT_HTTP_STATUS[code];
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }

  /** Brand check that survives duplicated installs of @stratus/core. */
  static is(value: unknown, code?: StratusErrorCode): value is StratusError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[BRAND] === true &&
      (code === undefined || (value as StratusError).code === code)
    );
  }

  /** Expected errors are a caller's mistake or a normal outcome; they are logged without a stack. */
  get expected(): boolean {
    return EXPECTED_CODES.has(this.code);
  }

  toJSON(): SerializedError {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      httpStatus: this.httpStatus,
      retryable: this.retryable,
      details: this.details,
    };
  }
}

const EXPECTED_CODES: ReadonlySet<StratusErrorCode> = new Set([
  'NOT_FOUND',
  'INVALID_INPUT',
  'INVALID_STATE',
  'CONFLICT',
  'QUOTA_EXCEEDED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'UNSUPPORTED_VERSION',
  'RATE_LIMITED',
]);

export class NotFoundError extends StratusError {
  override readonly name = 'NotFound';
  constructor(kind: string, id: string, options: StratusErrorOptions = {}) {
    super('NOT_FOUND', `${kind} ${id} could not be found`, {
      ...options,
      details: { kind, id, ...options.details },
    });
  }
}

export interface InvalidField {
  /** JSON pointer of the offending value, e.g. `/size`. */
  readonly path: string;
  readonly message: string;
}

export class InvalidInputError extends StratusError {
  override readonly name = 'InvalidInput';
  readonly fields: readonly InvalidField[];
  constructor(message: string, fields: readonly InvalidField[] = [], options: StratusErrorOptions = {}) {
    const listed = fields.length ? `: ${fields.map((f) => `${f.path || '/'} ${f.message}`).join('; ')}` : '';
    super('INVALID_INPUT', `${message}${listed}`, { ...options, details: { fields, ...options.details } });
    this.fields = fields;
  }
}

export class InvalidStateError extends StratusError {
  override readonly name = 'InvalidState';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('INVALID_STATE', message, options);
  }
}

export class ConflictError extends StratusError {
  override readonly name = 'Conflict';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('CONFLICT', message, options);
  }
}

export class QuotaExceededError extends StratusError {
  override readonly name = 'QuotaExceeded';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('QUOTA_EXCEEDED', message, options);
  }
}

/** Missing, malformed, expired or revoked credentials (HTTP 401): log in again. */
export class UnauthenticatedError extends StratusError {
  override readonly name = 'Unauthenticated';
  constructor(
    message = 'The request you have made requires authentication.',
    options: StratusErrorOptions = {},
  ) {
    super('UNAUTHENTICATED', message, options);
  }
}

export class ForbiddenError extends StratusError {
  override readonly name = 'Forbidden';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('FORBIDDEN', message, options);
  }
}

export class TimeoutError extends StratusError {
  override readonly name = 'Timeout';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('TIMEOUT', message, { retryable: true, ...options });
  }
}

export class UnsupportedVersionError extends StratusError {
  override readonly name = 'UnsupportedVersion';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('UNSUPPORTED_VERSION', message, options);
  }
}

export class NotSupportedError extends StratusError {
  override readonly name = 'NotSupported';
  constructor(subject: string, capability: string, options: StratusErrorOptions = {}) {
    super('NOT_SUPPORTED', `${subject} does not support "${capability}"`, {
      ...options,
      details: { subject, capability, ...options.details },
    });
  }
}

export class DriverFailureError extends StratusError {
  override readonly name = 'DriverFailure';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('DRIVER_FAILURE', message, options);
  }
}

export class InternalError extends StratusError {
  override readonly name = 'InternalError';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('INTERNAL', message, options);
  }
}

/** Base of the plugin-resolution family; `details.spec` names what was asked for. */
export class PluginError extends StratusError {
  override readonly name: string = 'PluginError';
}

export class PluginNotFoundError extends PluginError {
  override readonly name = 'PluginNotFound';
  /** `file` is set for a path spec that points nowhere. */
  constructor(spec: string, root: string, options: StratusErrorOptions & { file?: string } = {}) {
    super(
      'PLUGIN_NOT_FOUND',
      options.file
        ? `Plugin "${spec}" was not found: ${options.file} does not exist. Paths are relative to ${root}.`
        : `Plugin "${spec}" is not installed in ${root}. Add it to the application: pnpm add ${packageOf(spec)}`,
      {
        ...options,
        details: { spec, root, ...(options.file ? { file: options.file } : {}), ...options.details },
      },
    );
  }
}

export class PluginInvalidError extends PluginError {
  override readonly name = 'PluginInvalid';
  constructor(spec: string, reason: string, options: StratusErrorOptions = {}) {
    super(
      'PLUGIN_INVALID',
      `"${spec}" is not a Stratus plugin: ${reason}. A plugin default-exports definePlugin({ name, kind, contract, config, create }).`,
      { ...options, details: { spec, reason, ...options.details } },
    );
  }
}

export class PluginKindMismatchError extends PluginError {
  override readonly name = 'PluginKindMismatch';
  constructor(spec: string, expected: string, actual: string, options: StratusErrorOptions = {}) {
    super(
      'PLUGIN_KIND_MISMATCH',
      `Plugin "${spec}" is a ${actual}, but a ${expected} was expected here. Name a ${expected} package in this place of the config.`,
      { ...options, details: { spec, expected, actual, ...options.details } },
    );
  }
}

export class ContractMismatchError extends PluginError {
  override readonly name = 'ContractMismatch';
  constructor(
    spec: string,
    kind: string,
    range: string,
    coreVersion: string,
    options: StratusErrorOptions = {},
  ) {
    super(
      'CONTRACT_MISMATCH',
      `Plugin "${spec}" supports the ${kind} contract ${range}, but this @stratus/core provides ${kind} ${coreVersion}. Install a version of the plugin built for ${kind} ${coreVersion}, or a @stratus/core whose ${kind} contract satisfies ${range}.`,
      { ...options, details: { spec, kind, range, coreVersion, ...options.details } },
    );
  }
}

export class ConfigInvalidError extends StratusError {
  override readonly name = 'ConfigInvalid';
  readonly issues: readonly InvalidField[];
  constructor(subject: string, issues: readonly InvalidField[], options: StratusErrorOptions = {}) {
    const listed = issues.map((i) => `  ${i.path || '/'}: ${i.message}`).join('\n');
    super('CONFIG_INVALID', `Invalid configuration for ${subject}:\n${listed}`, {
      ...options,
      details: { subject, issues, ...options.details },
    });
    this.issues = issues;
  }
}

export class CommandNotAllowedError extends StratusError {
  override readonly name = 'CommandNotAllowed';
  constructor(argv: readonly string[], reason: string, options: StratusErrorOptions = {}) {
    super(
      'COMMAND_NOT_ALLOWED',
      `Refused to run ${JSON.stringify(argv)}: ${reason}. Declare it in the driver's command filters.`,
      { ...options, details: { argv, reason, ...options.details } },
    );
  }
}

export class CommandFailedError extends StratusError {
  override readonly name = 'CommandFailed';
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(
    argv: readonly string[],
    result: { exitCode: number | null; signal?: string | null; stdout: string; stderr: string },
    options: StratusErrorOptions = {},
  ) {
    const how =
      result.exitCode === null
        ? `was killed by ${result.signal ?? 'a signal'}`
        : `exited with ${result.exitCode}`;
    const tail = result.stderr.trim().split('\n').slice(-3).join(' | ');
    super('COMMAND_FAILED', `Command ${argv.join(' ')} ${how}${tail ? `: ${tail}` : ''}`, {
      ...options,
      details: {
        argv,
        exitCode: result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        ...options.details,
      },
    });
    this.argv = argv;
    this.exitCode = result.exitCode;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
  }
}

export class StoreUnavailableError extends StratusError {
  override readonly name = 'StoreUnavailable';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('STORE_UNAVAILABLE', message, { retryable: true, ...options });
  }
}

export class TransportUnavailableError extends StratusError {
  override readonly name = 'TransportUnavailable';
  constructor(message: string, options: StratusErrorOptions = {}) {
    super('TRANSPORT_UNAVAILABLE', message, { retryable: true, ...options });
  }
}

/** `@scope/name#export` or `name/sub` → the installable package name. */
function packageOf(spec: string): string {
  const bare = spec.split('#')[0] ?? spec;
  const parts = bare.split('/');
  return bare.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? bare);
}

/**
 * A command that ran past its time limit and was killed. A `CommandFailedError` with
 * `details.timedOut === true` and `retryable: true`; check it with `isCommandTimeout(e)`.
 */
export class CommandTimeoutError extends CommandFailedError {
  constructor(
    argv: readonly string[],
    timeoutMs: number,
    result: { signal: string | null; stdout: string; stderr: string },
    options: StratusErrorOptions = {},
  ) {
    super(
      argv,
      { exitCode: null, ...result },
      {
        retryable: true,
        ...options,
        details: { timedOut: true, timeoutMs, signal: result.signal, ...options.details },
      },
    );
    this.message = `Command ${argv.join(' ')} did not finish within ${timeoutMs} ms and was killed with ${result.signal ?? 'a signal'}. Raise timeoutMs if it is only slow, or find out why it hangs.`;
  }
}

/** The executable could not be started because it does not exist: exit code 127, as a shell reports it. */
export class CommandNotFoundError extends CommandFailedError {
  constructor(argv: readonly string[], executable: string, options: StratusErrorOptions = {}) {
    super(
      argv,
      { exitCode: 127, stdout: '', stderr: '' },
      { ...options, details: { notFound: true, executable, ...options.details } },
    );
    const where = executable.startsWith('/') ? 'does not exist' : 'was not found on PATH';
    this.message = `Cannot run ${argv.join(' ')}: the executable "${executable}" ${where}. Install the package that provides it, or fix PATH or the path in the command filter.`;
  }
}

/** True for a command killed by the Executor's timeout (works across copies of @stratus/core). */
export function isCommandTimeout(value: unknown): value is CommandFailedError {
  return StratusError.is(value, 'COMMAND_FAILED') && value.details.timedOut === true;
}

/** Too many attempts from one client or at one account (HTTP 429): wait `details.retryAfterSec`. */
export class RateLimitedError extends StratusError {
  override readonly name = 'RateLimited';
  constructor(message: string, retryAfterSec: number, options: StratusErrorOptions = {}) {
    super('RATE_LIMITED', message, {
      retryable: true,
      ...options,
      details: { retryAfterSec, ...options.details },
    });
  }
}

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  checkManifest,
  Executor,
  type PluginEnv,
  type PluginKind,
  type PluginManifest,
  parsePluginConfig,
  StratusError,
  type StratusErrorCode,
  schemaIssues,
  silentLogger,
} from '@stratus/core';
import { expect } from 'chai';
import { defaultRunner, type SuiteRunner } from './runner.js';

/**
 * The structural shape of a manifest as a suite accepts it. Loose on purpose: a third-party
 * plugin built against another copy of @stratus/core still fits.
 */
export interface ManifestLike {
  readonly name: string;
  readonly kind: string;
  readonly contract: string;
  readonly config?: object;
  readonly create: (config: never, env: PluginEnv) => unknown;
}

/** Options every driver suite takes. */
export interface DriverSuiteOptions<Key extends string> {
  /** Suite title suffix; defaults to the manifest's name. */
  readonly name?: string;
  /** The plugin's manifest (what `definePlugin` returned), e.g. `import { volume } from '@acme/x'`. */
  readonly manifest: ManifestLike;
  /** The plugin's raw config section; defaults are applied and it is validated like core does. */
  readonly config?: unknown;
  /**
   * Replaces parts of the env handed to `create()`. Default: host `conformance-host`, a silent
   * logger, a fresh temporary `dataDir`, and an executor that refuses every command (pass a real
   * one to test a driver that runs commands).
   */
  readonly env?: Partial<PluginEnv>;
  /** describe/it/hooks to register with; mocha's globals by default. */
  readonly runner?: SuiteRunner;
  /**
   * Tests or groups the backend cannot run, by key, each shown as pending with the reason in its
   * title. An array skips with a generic reason; a record gives each reason.
   */
  readonly skip?: readonly Key[] | Partial<Record<Key, string>>;
}

/** The reason `key` (or any of its enclosing group keys) is skipped, or undefined. */
export function skipReason<Key extends string>(
  skip: DriverSuiteOptions<Key>['skip'],
  ...keys: readonly Key[]
): string | undefined {
  if (!skip) return undefined;
  for (const key of keys) {
    if (Array.isArray(skip)) {
      if ((skip as readonly Key[]).includes(key)) return `skipped by the suite's skip option (${key})`;
    } else {
      const reason = (skip as Partial<Record<Key, string>>)[key];
      if (reason !== undefined) return `${reason} (${key})`;
    }
  }
  return undefined;
}

/**
 * Check that `manifest` is a plugin of `kind` whose contract range this @stratus/core satisfies.
 * The one place the suites validate a manifest: core's own `checkManifest`, as resolution does.
 */
export function checkPluginManifest<K extends PluginKind>(manifest: unknown, kind: K): PluginManifest<K> {
  const name = (manifest as { name?: unknown } | null)?.name;
  return checkManifest(manifest, kind, typeof name === 'string' ? name : '<manifest>');
}

/** A temporary data folder and the env handed to each driver a suite creates. */
export class DriverWorkspace {
  #dataDir: string | undefined;
  readonly #overrides: Partial<PluginEnv>;

  constructor(overrides: Partial<PluginEnv> = {}) {
    this.#overrides = overrides;
  }

  /** The env for one driver; the temporary folder is made on first use. */
  env(): PluginEnv {
    this.#dataDir ??= this.#overrides.dataDir ?? mkdtempSync(path.join(tmpdir(), 'stratus-conformance-'));
    return {
      host: this.#overrides.host ?? 'conformance-host',
      logger: this.#overrides.logger ?? silentLogger(),
      // No filters: a driver that runs a command under the default env fails with CommandNotAllowed.
      executor: this.#overrides.executor ?? new Executor({ filters: [] }),
      dataDir: this.#dataDir,
    };
  }

  /** Create a driver the way core does: config defaults and validation first, then `create()`. */
  async create<T>(manifest: ManifestLike, kind: PluginKind, rawConfig: unknown): Promise<T> {
    const checked = checkPluginManifest(manifest, kind);
    const config = parsePluginConfig(checked, rawConfig ?? {});
    return (await checked.create(config as never, this.env())) as T;
  }

  /** Remove the temporary folder (never a folder the caller passed in). */
  dispose(): void {
    if (this.#dataDir && this.#dataDir !== this.#overrides.dataDir) {
      rmSync(this.#dataDir, { recursive: true, force: true });
    }
    this.#dataDir = undefined;
  }
}

/** Await `promise`, expecting it to reject with a StratusError of `code`; returns the error. */
export async function expectRejection(
  promise: Promise<unknown>,
  code: StratusErrorCode,
  what: string,
): Promise<StratusError> {
  let outcome: unknown;
  try {
    await promise;
  } catch (error) {
    outcome = error;
    if (StratusError.is(error, code)) return error;
  }
  const got =
    outcome === undefined
      ? 'it resolved'
      : StratusError.is(outcome)
        ? `it rejected with ${outcome.code}: ${outcome.message}`
        : `it rejected with a non-Stratus error: ${String((outcome as Error)?.stack ?? outcome)}`;
  expect.fail(`${what} should reject with ${code}, but ${got}`);
}

/** Assert `value` matches the typebox `schema`, listing every issue on failure. */
export function expectSchema(schema: Parameters<typeof schemaIssues>[0], value: unknown, what: string): void {
  const issues = schemaIssues(schema, value);
  expect(issues, `${what} does not match its schema: ${JSON.stringify(value)}`).to.deep.equal([]);
}

/** Awaits `fn`, swallowing any error: best-effort cleanup on a real backend. */
export async function quietly(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch {
    // Cleanup after a failed test must not hide the test's own failure.
  }
}

/** What a suite's tests receive: the driver under test, and a cleanup of what the test made. */
export interface SuiteHarness<D> {
  readonly driver: D;
  /** Best-effort removal of everything the test created on the backend. */
  cleanup(): Promise<void>;
}

/** Registers one test of a driver suite: pending with the reason when one of `keys` is skipped. */
export type SuiteTest<Key extends string, H> = (
  keys: readonly Key[],
  title: string,
  body: (h: H) => Promise<void>,
) => void;

interface LifecycleDriver {
  setup(): Promise<void>;
  checkForSetupError(): Promise<void>;
  close(): Promise<void>;
}

/** What differs between the volume and compute suites; everything else is `describeDriverSuite`'s. */
export interface DriverSuiteSpec<Key extends string, D extends LifecycleDriver, H extends SuiteHarness<D>> {
  readonly kind: 'volume-driver' | 'compute-driver';
  /** The contract's interface name, for messages (`VolumeDriver`). */
  readonly contract: string;
  readonly contractMethods: readonly string[];
  readonly options: DriverSuiteOptions<Key>;
  /** The group key of the manifest tests. */
  readonly manifestKey: Key;
  /** A harness around a fresh driver; `runId` keeps this run's backend names apart from others'. */
  readonly harness: (driver: D, runId: string) => H;
}

/**
 * The frame every driver suite shares: a fresh driver per test (created the way core does, then
 * `setup()` and `checkForSetupError()`), cleaned up and closed afterwards, and the manifest and
 * lifecycle tests. `groups` registers the contract's own tests with the `test` it is given.
 */
export function describeDriverSuite<Key extends string, D extends LifecycleDriver, H extends SuiteHarness<D>>(
  spec: DriverSuiteSpec<Key, D, H>,
  groups: (test: SuiteTest<Key, H>, runner: SuiteRunner) => void,
): void {
  const { options, kind } = spec;
  const runner = options.runner ?? defaultRunner();
  const workspace = new DriverWorkspace(options.env);
  let harness: H | undefined;

  const create = () => workspace.create<D>(options.manifest, kind, options.config);
  const test: SuiteTest<Key, H> = (keys, title, body) => {
    const reason = skipReason(options.skip, ...keys);
    if (reason !== undefined) {
      runner.it(`${title} [skipped: ${reason}]`);
      return;
    }
    runner.it(title, async () => {
      if (!harness) throw new Error('The driver was not created; see the failing beforeEach hook.');
      await body(harness);
    });
  };

  runner.describe(`${kind} conformance: ${options.name ?? options.manifest.name}`, () => {
    runner.beforeEach(async () => {
      harness = undefined;
      const driver = await create();
      await driver.setup();
      await driver.checkForSetupError();
      harness = spec.harness(driver, randomBytes(4).toString('hex'));
    });

    runner.afterEach(async () => {
      if (!harness) return;
      const { driver } = harness;
      await harness.cleanup();
      harness = undefined;
      await driver.close();
    });

    runner.after(() => workspace.dispose());

    runner.describe('manifest and lifecycle', () => {
      const manifest = [spec.manifestKey];
      test(
        manifest,
        `the manifest is a ${kind} whose contract range this @stratus/core satisfies`,
        async () => {
          const checked = checkPluginManifest(options.manifest, kind);
          expect(checked.kind).to.equal(kind);
        },
      );

      test(manifest, `create() returns an object with every ${spec.contract} method`, async ({ driver }) => {
        for (const method of spec.contractMethods) {
          expect((driver as unknown as Record<string, unknown>)[method], method).to.be.a('function');
        }
      });

      test(manifest, 'a config key the driver does not know is refused with CONFIG_INVALID', async () => {
        const config = { ...(options.config as object | undefined), conformanceUnknownKey: true };
        await expectRejection(
          workspace.create(options.manifest, kind, config),
          'CONFIG_INVALID',
          'create() with an unknown config key',
        );
      });

      test(
        manifest,
        'setup() and checkForSetupError() succeed again on a second driver (idempotent across restarts)',
        async () => {
          const again = await create();
          try {
            await again.setup();
            await again.checkForSetupError();
          } finally {
            await again.close();
          }
        },
      );
    });

    groups(test, runner);
  });
}

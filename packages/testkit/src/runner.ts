/**
 * The test-framework surface a conformance suite needs. Suites take an optional `runner` so they can be
 * driven by something other than mocha's globals (another BDD runner, or a recorder in the testkit's own
 * tests); by default they use mocha's globals, read lazily so importing the testkit never requires mocha.
 */

/** A test or hook body: synchronous or returning a promise, with `this` being the runner's context. */
// biome-ignore lint/suspicious/noExplicitAny: the runner's `this` context is framework specific.
export type SuiteFn = (this: any) => unknown;

/** The BDD functions a suite registers its groups, tests and hooks with (mocha's shape). */
export interface SuiteRunner {
  /** Registers a group of tests; `fn` runs synchronously to declare them. */
  describe(title: string, fn: () => void): unknown;
  /** Registers one test; without `fn` the test is pending (reported as skipped). */
  it(title: string, fn?: SuiteFn): unknown;
  /** Runs once before all tests of the enclosing group. */
  before(fn: SuiteFn): unknown;
  /** Runs once after all tests of the enclosing group. */
  after(fn: SuiteFn): unknown;
  /** Runs before each test of the enclosing group. */
  beforeEach(fn: SuiteFn): unknown;
  /** Runs after each test of the enclosing group. */
  afterEach(fn: SuiteFn): unknown;
}

const NAMES = ['describe', 'it', 'before', 'after', 'beforeEach', 'afterEach'] as const;

/**
 * The runner backed by mocha's globals. Each global is looked up when called, not when this runs, so a
 * suite module can be imported before mocha has installed them.
 *
 * @throws Error when a function is called and the global is missing (the suite is not running under mocha).
 */
export function defaultRunner(): SuiteRunner {
  const lookup = (name: (typeof NAMES)[number]) =>
    ((...args: unknown[]) => {
      const fn = (globalThis as Record<string, unknown>)[name];
      if (typeof fn !== 'function') {
        throw new Error(
          `The global '${name}' is missing: run this conformance suite under mocha, or pass a 'runner' option with describe/it/before/after/beforeEach/afterEach.`,
        );
      }
      return (fn as (...a: unknown[]) => unknown)(...args);
    }) as never;
  return {
    describe: lookup('describe'),
    it: lookup('it'),
    before: lookup('before'),
    after: lookup('after'),
    beforeEach: lookup('beforeEach'),
    afterEach: lookup('afterEach'),
  };
}

import type { SuiteFn, SuiteRunner } from '../../src/runner.js';

/** The outcome of one test registered with a MiniRunner. */
export interface TestOutcome {
  /** Suite titles and the test title, joined with ' > '. */
  readonly title: string;
  readonly state: 'passed' | 'failed' | 'pending';
  readonly error?: unknown;
}

interface Group {
  readonly title: string;
  readonly tests: Array<{ title: string; fn: SuiteFn | undefined }>;
  readonly children: Group[];
  readonly before: SuiteFn[];
  readonly after: SuiteFn[];
  readonly beforeEach: SuiteFn[];
  readonly afterEach: SuiteFn[];
}

const group = (title: string): Group => ({
  title,
  tests: [],
  children: [],
  before: [],
  after: [],
  beforeEach: [],
  afterEach: [],
});

/**
 * A small BDD runner that records what a suite registers and runs it on demand, so the testkit's
 * own tests can run a conformance suite inside one mocha test and inspect every outcome.
 */
export class MiniRunner implements SuiteRunner {
  readonly #root = group('');
  #current = this.#root;

  describe(title: string, fn: () => void): void {
    const child = group(title);
    this.#current.children.push(child);
    const parent = this.#current;
    this.#current = child;
    try {
      fn();
    } finally {
      this.#current = parent;
    }
  }

  it(title: string, fn?: SuiteFn): void {
    this.#current.tests.push({ title, fn });
  }

  before(fn: SuiteFn): void {
    this.#current.before.push(fn);
  }

  after(fn: SuiteFn): void {
    this.#current.after.push(fn);
  }

  beforeEach(fn: SuiteFn): void {
    this.#current.beforeEach.push(fn);
  }

  afterEach(fn: SuiteFn): void {
    this.#current.afterEach.push(fn);
  }

  /** Run everything registered, sequentially, and report each test. */
  async run(): Promise<TestOutcome[]> {
    const outcomes: TestOutcome[] = [];
    await this.#run(this.#root, [], [], outcomes);
    return outcomes;
  }

  async #run(g: Group, path: string[], parents: Group[], out: TestOutcome[]): Promise<void> {
    const chain = [...parents, g];
    const titles = g.title ? [...path, g.title] : path;
    for (const hook of g.before) await hook.call({});
    for (const t of g.tests) {
      const title = [...titles, t.title].join(' > ');
      if (!t.fn) {
        out.push({ title, state: 'pending' });
        continue;
      }
      let error: unknown;
      let failed = false;
      try {
        for (const p of chain) for (const hook of p.beforeEach) await hook.call({});
        await t.fn.call({});
      } catch (e) {
        failed = true;
        error = e;
      }
      for (const p of [...chain].reverse()) {
        for (const hook of p.afterEach) {
          try {
            await hook.call({});
          } catch (e) {
            if (!failed) {
              failed = true;
              error = e;
            }
          }
        }
      }
      out.push(failed ? { title, state: 'failed', error } : { title, state: 'passed' });
    }
    for (const child of g.children) await this.#run(child, titles, chain, out);
    for (const hook of g.after) await hook.call({});
  }
}

/** Outcomes whose title contains `fragment`; throws when none match, so a renamed test is noticed. */
export function outcomesOf(outcomes: readonly TestOutcome[], fragment: string): TestOutcome[] {
  const found = outcomes.filter((o) => o.title.includes(fragment));
  if (!found.length) throw new Error(`no test title contains ${JSON.stringify(fragment)}`);
  return found;
}

/** Titles of the failed tests, with their error messages, for assertion messages. */
export function failures(outcomes: readonly TestOutcome[]): string[] {
  return outcomes
    .filter((o) => o.state === 'failed')
    .map((o) => `${o.title}: ${(o.error as Error)?.message ?? String(o.error)}`);
}

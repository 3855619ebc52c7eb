import { DriverFailureError, InvalidInputError, InvalidStateError } from '@stratus/core';

/** One call a fake driver received, in arrival order. */
export interface RecordedCall<M extends string = string> {
  readonly method: M;
  /** Deep copies of the arguments, so later mutation by the caller does not rewrite history. */
  readonly args: readonly unknown[];
  readonly at: Date;
}

interface Hung {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Failure injection for a fake driver. Injections are consumed per call, in the order they were
 * queued: `failNext('createVolume', 2)` makes the next two `createVolume` calls throw, then calls
 * behave normally again. An injected failure or hang happens before the fake touches its state, so
 * a failed call leaves the backend exactly as it was.
 */
export class Faults<M extends string = string> {
  readonly #methods: ReadonlySet<string>;
  readonly #owner: string;
  readonly #queued = new Map<
    string,
    Array<{ kind: 'fail'; error: (() => Error) | undefined } | { kind: 'hang' }>
  >();
  readonly #hung = new Set<Hung>();

  /** @param methods the method names that can be targeted; anything else is refused, so a typo fails loudly. */
  constructor(owner: string, methods: readonly M[]) {
    this.#owner = owner;
    this.#methods = new Set(methods);
  }

  /**
   * Make the next `count` calls of `method` throw `error` (default: a DriverFailureError saying it
   * was injected, `details.reason = 'injected'`). The same error object is thrown each time when given.
   */
  failNext(method: M, count = 1, error?: Error): this {
    this.#queue(method, count, () => ({
      kind: 'fail' as const,
      error: error ? () => error : undefined,
    }));
    return this;
  }

  /**
   * Make the next `count` calls of `method` hang: their promises settle only when `releaseHangs()`
   * lets them proceed, or reject when the driver is closed.
   */
  hangNext(method: M, count = 1): this {
    this.#queue(method, count, () => ({ kind: 'hang' as const }));
    return this;
  }

  /**
   * Settle every call currently hung. Without `error` they proceed and do their work as if they had
   * never hung; with it they reject with `error` and change nothing. Returns how many were released.
   */
  releaseHangs(error?: Error): number {
    const hung = [...this.#hung];
    this.#hung.clear();
    for (const h of hung) {
      if (error) h.reject(error);
      else h.resolve();
    }
    return hung.length;
  }

  /** Number of calls hung right now. */
  get hangingCount(): number {
    return this.#hung.size;
  }

  /** Injections still waiting for a call, for `method` or in total. */
  pending(method?: M): number {
    if (method !== undefined) return this.#queued.get(method)?.length ?? 0;
    let total = 0;
    for (const q of this.#queued.values()) total += q.length;
    return total;
  }

  /** Forget every queued injection and let hung calls proceed. */
  clear(): void {
    this.#queued.clear();
    this.releaseHangs();
  }

  /**
   * Apply the next injection queued for `method`, if any: throws for a failure, waits for a hang.
   * Called by the fake at the top of each method, before it reads or writes state.
   */
  async intercept(method: M): Promise<void> {
    const queue = this.#queued.get(method);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.#queued.delete(method);
    if (!next) return;
    if (next.kind === 'fail') {
      throw (
        next.error?.() ??
        new DriverFailureError(
          `${this.#owner}.${method} failed because a failure was injected with faults.failNext('${method}'); call faults.clear() to stop injecting.`,
          { details: { reason: 'injected', method } },
        )
      );
    }
    await new Promise<void>((resolve, reject) => {
      this.#hung.add({ resolve, reject });
    });
  }

  #queue(
    method: M,
    count: number,
    make: () => { kind: 'fail'; error: (() => Error) | undefined } | { kind: 'hang' },
  ) {
    if (!this.#methods.has(method)) {
      throw new InvalidInputError(`${this.#owner} has no method to inject into`, [
        { path: '/method', message: `"${method}" is not one of ${[...this.#methods].join(', ')}` },
      ]);
    }
    if (!Number.isInteger(count) || count < 1) {
      throw new InvalidInputError('An injection count must be a positive integer', [
        { path: '/count', message: `${count} is not a positive integer` },
      ]);
    }
    let queue = this.#queued.get(method);
    if (!queue) {
      queue = [];
      this.#queued.set(method, queue);
    }
    for (let i = 0; i < count; i++) queue.push(make());
  }
}

/**
 * Calls the log keeps: the most recent ones. Unbounded, a fake behind `stratus serve` held every call
 * it ever received (~1 KB each: 200,000 RPCs grew the heap by ~150 MiB in the soak benchmark).
 */
export const CALL_LOG_LIMIT = 1000;

/** How a fake with a `stateFile` keeps its state: which methods leave it alone, and how to write it out. */
export interface Persistence<M extends string> {
  /** Methods that only read the backend; every other one is saved after it succeeds. */
  readonly readOnly: readonly M[];
  /** Write the fake's whole current state (see `StateFile`). */
  save(): void;
}

/**
 * What both fakes share: the call log (the last {@link CALL_LOG_LIMIT} calls), the fault injector,
 * refusing calls after `close()`, and saving the state after each change when the fake has a
 * `stateFile`. `invoke` is the single entry every public driver method goes through.
 */
export class FakeInstrument<M extends string> {
  readonly faults: Faults<M>;
  readonly #owner: string;
  /** A ring of the last calls: `#calls[#oldest]` is the oldest once it is full (a shift per call moved 1,000 slots). */
  readonly #calls: Array<RecordedCall<M>> = [];
  #oldest = 0;
  #closed = false;
  readonly #persist: Persistence<M> | undefined;
  readonly #readOnly: ReadonlySet<M>;

  /** @param persist given when the fake keeps its state in a file: each successful change is saved before the call returns. */
  constructor(owner: string, methods: readonly M[], persist?: Persistence<M>) {
    this.#owner = owner;
    this.faults = new Faults(owner, methods);
    this.#persist = persist;
    this.#readOnly = new Set(persist?.readOnly);
  }

  /** Copies of the calls received so far (the last {@link CALL_LOG_LIMIT}), oldest first. */
  get calls(): Array<RecordedCall<M>> {
    const ordered = [...this.#calls.slice(this.#oldest), ...this.#calls.slice(0, this.#oldest)];
    return ordered.map((c) => ({ method: c.method, args: structuredClone(c.args), at: new Date(c.at) }));
  }

  /** Forget the recorded calls (injections stay queued). */
  clearCalls(): void {
    this.#calls.length = 0;
    this.#oldest = 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Record the call, apply any injection, then run `body` against the fake's state and save it when
   * `method` changes it. A call that fails or hangs saves nothing, so the file never holds half a change.
   */
  async invoke<T>(method: M, args: readonly unknown[], body: () => T | Promise<T>): Promise<T> {
    const call = { method, args: structuredClone(args), at: new Date() };
    if (this.#calls.length < CALL_LOG_LIMIT) {
      this.#calls.push(call);
    } else {
      this.#calls[this.#oldest] = call;
      this.#oldest = (this.#oldest + 1) % CALL_LOG_LIMIT;
    }
    this.#assertOpen(method);
    await this.faults.intercept(method);
    // The driver may have been closed while the call hung.
    this.#assertOpen(method);
    const result = await body();
    if (this.#persist && !this.#readOnly.has(method)) this.#persist.save();
    return result;
  }

  /** Refuse further calls and reject the hung ones. */
  close(): void {
    this.#closed = true;
    this.faults.releaseHangs(
      new DriverFailureError(`${this.#owner} was closed while this call was hung by faults.hangNext()`, {
        details: { reason: 'closed' },
      }),
    );
  }

  #assertOpen(method: string): void {
    if (this.#closed) {
      throw new InvalidStateError(
        `${this.#owner}.${method} was called after close(); create a new driver instead of reusing a closed one.`,
      );
    }
  }
}

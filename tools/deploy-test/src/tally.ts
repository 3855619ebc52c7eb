import { StratusError } from '@stratus/core';

/**
 * What one fault case did with the operations it sent: attempted, completed, failed (counted by
 * reason) and lost. An operation is lost when it was accepted and then neither completed nor
 * failed with a reason: a cast nobody processed, a volume stuck in a transitional state.
 */
export class Tally {
  readonly name: string;
  attempted = 0;
  completed = 0;
  lost = 0;
  readonly #failed = new Map<string, number>();

  constructor(name: string) {
    this.name = name;
  }

  get failed(): number {
    let total = 0;
    for (const n of this.#failed.values()) total += n;
    return total;
  }

  fail(reason: string, count = 1): void {
    if (count > 0) this.#failed.set(reason, (this.#failed.get(reason) ?? 0) + count);
  }

  /** `faults: <case>: attempted N, completed N, failed N (<reasons>), lost N` */
  line(): string {
    const reasons = [...this.#failed.entries()].map(([reason, n]) => `${n} ${reason}`).join('; ');
    return `faults: ${this.name}: attempted ${this.attempted}, completed ${this.completed}, failed ${this.failed} (${reasons || 'none'}), lost ${this.lost}`;
  }
}

/** A short reason for an error: `CODE retryable` for a typed error, else the message. */
export function reasonOf(error: unknown): string {
  if (StratusError.is(error)) return `${error.code}${error.retryable ? ' retryable' : ''}`;
  return `untyped: ${(error as Error)?.message ?? String(error)}`;
}

/**
 * Run `task(i)` for i in [0, count) with at most `width` running at once; resolves when all have
 * settled (a task's failure is its own business: `task` records it).
 */
export async function pool(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(width, count) }, async () => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  });
  await Promise.all(lanes);
}

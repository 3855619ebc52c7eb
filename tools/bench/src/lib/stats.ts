import { monitorEventLoopDelay } from 'node:perf_hooks';

/** One closed-loop measurement window. */
export interface Measurement {
  /** Operations completed. */
  readonly ops: number;
  /** Wall time from the first start to the last completion, in seconds. */
  readonly seconds: number;
  /** ops / seconds. */
  readonly rate: number;
  /** Latency percentiles in ms. */
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** The `q` quantile (0..1) of ascending `sorted` values; 0 for an empty list. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] ?? 0;
}

/** min, median and max of repeated runs. */
export function spread(values: readonly number[]): { min: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0] ?? Number.NaN, median: quantile(sorted, 0.5), max: sorted.at(-1) ?? Number.NaN };
}

/**
 * Closed-loop load: `concurrency` callers, each starting its next operation as soon as the previous
 * one settled, until `seconds` have passed; operations in flight at the deadline still count.
 * A failed operation counts as an error, not as a completion.
 */
export async function closedLoop(
  concurrency: number,
  seconds: number,
  op: (caller: number) => Promise<unknown>,
): Promise<Measurement> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: unknown;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, caller) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await op(caller);
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors++;
          firstError ??= error;
          // A failing system must not spin: back off briefly.
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  if (errors > 0 && latencies.length === 0) throw firstError;
  const sorted = Float64Array.from(latencies).sort();
  return {
    ops: latencies.length,
    seconds: elapsed,
    rate: latencies.length / elapsed,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    errors,
  };
}

/** Event-loop delay of this process while `run` runs: p99 and max in ms. */
export async function withLoopDelay<T>(
  run: () => Promise<T>,
): Promise<{ value: T; p99: number; max: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  try {
    const value = await run();
    return { value, p99: histogram.percentile(99) / 1e6, max: histogram.max / 1e6 };
  } finally {
    histogram.disable();
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

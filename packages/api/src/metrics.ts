/** Upper bounds (seconds) of the latency histogram buckets. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface Histogram {
  readonly counts: number[];
  sum: number;
  count: number;
}

/**
 * Request counters and latency histograms by method, route pattern and status, rendered in the
 * Prometheus text exposition format (0.0.4). Routes are patterns (`/v2.1/servers/:server_id`),
 * never raw URLs, so label cardinality stays bounded.
 */
export class ApiMetrics {
  readonly #requests = new Map<string, number>();
  readonly #latency = new Map<string, Histogram>();
  readonly #started = Date.now();

  /** Record one finished request. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const counterKey = labels({ method, route, status: String(status) });
    this.#requests.set(counterKey, (this.#requests.get(counterKey) ?? 0) + 1);
    const histogramKey = labels({ method, route });
    let histogram = this.#latency.get(histogramKey);
    if (!histogram) {
      histogram = { counts: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#latency.set(histogramKey, histogram);
    }
    LATENCY_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) (histogram.counts[i] as number)++;
    });
    histogram.sum += seconds;
    histogram.count++;
  }

  /** The count recorded for one (method, route, status), for tests and health checks. */
  requestCount(method: string, route: string, status: number): number {
    return this.#requests.get(labels({ method, route, status: String(status) })) ?? 0;
  }

  /** Everything, in Prometheus text format. */
  render(): string {
    const lines: string[] = [
      '# HELP stratus_api_requests_total HTTP requests handled, by method, route and status.',
      '# TYPE stratus_api_requests_total counter',
    ];
    for (const [key, value] of [...this.#requests].sort()) {
      lines.push(`stratus_api_requests_total{${key}} ${value}`);
    }
    lines.push(
      '# HELP stratus_api_request_duration_seconds HTTP request latency, by method and route.',
      '# TYPE stratus_api_request_duration_seconds histogram',
    );
    for (const [key, histogram] of [...this.#latency].sort(([a], [b]) => a.localeCompare(b))) {
      LATENCY_BUCKETS.forEach((bound, i) => {
        lines.push(
          `stratus_api_request_duration_seconds_bucket{${key},le="${bound}"} ${histogram.counts[i]}`,
        );
      });
      lines.push(`stratus_api_request_duration_seconds_bucket{${key},le="+Inf"} ${histogram.count}`);
      lines.push(`stratus_api_request_duration_seconds_sum{${key}} ${histogram.sum}`);
      lines.push(`stratus_api_request_duration_seconds_count{${key}} ${histogram.count}`);
    }
    lines.push(
      '# HELP stratus_api_uptime_seconds Seconds since this API process started.',
      '# TYPE stratus_api_uptime_seconds gauge',
      `stratus_api_uptime_seconds ${(Date.now() - this.#started) / 1000}`,
    );
    return `${lines.join('\n')}\n`;
  }
}

function labels(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([name, value]) => `${name}="${escapeLabel(value)}"`)
    .join(',');
}

/** Label values escape backslash, double quote and newline. */
export function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

// Preloaded (`node --expose-gc --import …/loop-monitor.mjs`) into a service under test: on SIGUSR2
// writes event-loop delay (since the last signal), RSS and heap before/after a full GC to
// $BENCH_LOOP_FILE, then resets the histogram. The service itself is not modified.
import { renameSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.BENCH_LOOP_FILE;
const histogram = monitorEventLoopDelay({ resolution: 10 });
histogram.enable();
const mib = (bytes) => bytes / 2 ** 20;
process.on('SIGUSR2', () => {
  const before = process.memoryUsage();
  globalThis.gc?.();
  const after = process.memoryUsage();
  const report = {
    p99: histogram.percentile(99) / 1e6,
    max: histogram.max / 1e6,
    rss: mib(before.rss),
    heapUsed: mib(before.heapUsed),
    rssAfterGc: mib(after.rss),
    heapUsedAfterGc: mib(after.heapUsed),
    external: mib(after.external),
    at: Date.now(),
  };
  histogram.reset();
  if (!file) return;
  // Written aside and renamed, so the reader, which polls for the file, never sees it half-written.
  writeFileSync(`${file}.tmp`, JSON.stringify(report));
  renameSync(`${file}.tmp`, file);
});

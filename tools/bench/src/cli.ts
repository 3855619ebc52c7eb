/**
 * `pnpm bench [scenario…] [--smoke] [--reps N] [--seconds S] [--dry-run]`: runs the scenarios (all by default),
 * merges their figures into bench/results.json and regenerates the table section of BENCHMARKS.md.
 * Scenarios: inproc, amqp, e2e, startup, registry, soak.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadAverage, type Mode, machineInfo, REPO_DIR, RUN_DIR } from './lib/env.js';
import { loadResults, Recorder, type ScenarioResult, saveResults, writeMarkdown } from './lib/report.js';
import { runAmqp } from './scenarios/amqp.js';
import { runE2e } from './scenarios/e2e.js';
import { runInproc } from './scenarios/inproc.js';
import { runRegistry } from './scenarios/registry.js';
import { runSoak } from './scenarios/soak.js';
import { runStartup } from './scenarios/startup.js';

type Runner = (mode: Mode, rec: Recorder) => Promise<string | undefined>;

const SCENARIOS: Record<
  string,
  { title: string; run: Runner; full: Omit<Mode, 'smoke'>; smoke: Omit<Mode, 'smoke'> }
> = {
  inproc: {
    title: '1. In-process RPC',
    run: runInproc,
    full: { reps: 3, seconds: 3, warmupSeconds: 1 },
    smoke: { reps: 1, seconds: 0.3, warmupSeconds: 0 },
  },
  amqp: {
    title: '2. RPC over RabbitMQ',
    run: runAmqp,
    full: { reps: 3, seconds: 5, warmupSeconds: 1 },
    smoke: { reps: 1, seconds: 0.5, warmupSeconds: 0 },
  },
  e2e: {
    title: '3. End-to-end volume lifecycle',
    run: runE2e,
    full: { reps: 3, seconds: 10, warmupSeconds: 2 },
    smoke: { reps: 1, seconds: 1, warmupSeconds: 0 },
  },
  startup: {
    title: '4. Start-up of `stratus serve volume`',
    run: runStartup,
    full: { reps: 10, seconds: 0, warmupSeconds: 0 },
    smoke: { reps: 2, seconds: 0, warmupSeconds: 0 },
  },
  registry: {
    title: '5. Service registry at scale',
    run: runRegistry,
    full: { reps: 1, seconds: 120, warmupSeconds: 0 },
    smoke: { reps: 1, seconds: 4, warmupSeconds: 0 },
  },
  soak: {
    title: '6. Soak: one volume service, 200,000 RPCs',
    run: runSoak,
    full: { reps: 1, seconds: 0, warmupSeconds: 0 },
    smoke: { reps: 1, seconds: 0, warmupSeconds: 0 },
  },
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    smoke: { type: 'boolean', default: false },
    reps: { type: 'string' },
    seconds: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
  },
});
const order = Object.keys(SCENARIOS);
const wanted = positionals.length === 0 || positionals.includes('all') ? order : positionals;
const unknown = wanted.filter((id) => !SCENARIOS[id]);
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; choose from: ${order.join(', ')}, all`);
  process.exit(2);
}

const resultsFile = path.join(REPO_DIR, 'bench/results.json');
const results = loadResults(resultsFile);
results.machine = await machineInfo();
let failed = 0;
for (const id of wanted) {
  const scenario = SCENARIOS[id] as (typeof SCENARIOS)[string];
  const base = values.smoke ? scenario.smoke : scenario.full;
  const mode: Mode = {
    smoke: values.smoke === true,
    reps: values.reps ? Number(values.reps) : base.reps,
    seconds: values.seconds ? Number(values.seconds) : base.seconds,
    warmupSeconds: base.warmupSeconds,
  };
  const rec = new Recorder();
  const loadBefore = loadAverage();
  const started = Date.now();
  console.log(`\n== ${scenario.title} (${mode.smoke ? 'smoke' : 'full'}) — load ${loadBefore.toFixed(1)}`);
  let skipped: string | undefined;
  try {
    skipped = (await scenario.run(mode, rec)) ?? undefined;
  } catch (error) {
    failed++;
    console.error(`${id} failed:`, error);
    continue;
  }
  const result: ScenarioResult = {
    id,
    title: scenario.title,
    command: `pnpm bench ${id}${mode.smoke ? ' --smoke' : ''}`,
    date: new Date().toISOString(),
    smoke: mode.smoke,
    load: [loadBefore, loadAverage()],
    series: [...rec.series.values()],
    ratios: [...rec.ratios.values()],
    targets: rec.targets,
    notes: rec.notes,
    ...(skipped ? { skipped } : {}),
  };
  results.scenarios[id] = result;
  if (skipped) console.log(`skipped: ${skipped}`);
  for (const r of result.ratios) console.log(`  ${r.label}: ${r.runs.map((v) => v.toFixed(3)).join(' ')}`);
  for (const t of result.targets)
    console.log(
      `  target ${t.label}: ${t.value?.toFixed(3) ?? '–'} ${t.unit} ${t.op} ${t.threshold}: ${t.met === null ? 'not measured' : t.met ? 'met' : 'NOT MET'}`,
    );
  console.log(`  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (!values['dry-run']) {
    // Smoke figures never overwrite a full run's: they go to the bench's scratch folder.
    const target = mode.smoke ? path.join(RUN_DIR, 'results.smoke.json') : resultsFile;
    const file = mode.smoke ? loadResults(target) : results;
    file.machine = results.machine;
    file.scenarios[id] = result;
    saveResults(target, file);
    if (!mode.smoke) writeMarkdown(path.join(REPO_DIR, 'BENCHMARKS.md'), results, order);
  }
}
process.exit(failed > 0 ? 1 : 0);

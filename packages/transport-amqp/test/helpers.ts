import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { type ChannelModel, connect } from 'amqplib';
import type { AmqpTransport } from '../src/index.js';

const run = promisify(execFile);

/** The broker under test; override with STRATUS_TEST_AMQP_URL. */
export const AMQP_URL = process.env.STRATUS_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672/';

/** `stratus-test-<hex>`: unique per test run, so parallel runs never share an exchange. */
export function uniqueName(prefix = 'stratus-test'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** Why RabbitMQ cannot be used, or undefined when it can. */
export async function brokerProblem(url = AMQP_URL): Promise<string | undefined> {
  try {
    const model = await connect(url, { timeout: 2000 });
    await model.close();
    return undefined;
  } catch (error) {
    return `RabbitMQ is not reachable at ${url.replace(/:[^:@/]*@/, ':***@')} (${(error as Error).message})`;
  }
}

/**
 * In a mocha `before` hook: skip the suite with a one-line reason when `problem` is set, or fail
 * under CI, where every service must be present.
 */
export function skipUnless(ctx: Mocha.Context, problem: string | undefined): void {
  if (!problem) return;
  if (process.env.CI) throw new Error(`${problem} (CI is set, so this fails instead of skipping)`);
  console.log(`      skipped: ${problem}`);
  ctx.skip();
}

/** A plain amqplib connection for assertions and cleanup behind the transport's back. */
export async function adminConnection(url = AMQP_URL): Promise<ChannelModel> {
  return connect(url);
}

/** Delete every queue `transports` declared, and `exchanges`; errors (already gone) are ignored. */
export async function cleanup(
  admin: ChannelModel,
  transports: readonly AmqpTransport[],
  exchanges: readonly string[],
  extraQueues: readonly string[] = [],
): Promise<void> {
  const queues = new Set<string>(extraQueues);
  for (const t of transports) for (const q of t.declaredQueues()) queues.add(q);
  for (const queue of queues) {
    const ch = await admin.createChannel();
    ch.on('error', () => {});
    await ch.deleteQueue(queue).catch(() => {});
    await ch.close().catch(() => {});
  }
  for (const exchange of exchanges) {
    const ch = await admin.createChannel();
    ch.on('error', () => {});
    await ch.deleteExchange(exchange).catch(() => {});
    await ch.close().catch(() => {});
  }
}

/** rabbitmqctl with an argument array; throws with its stderr on failure. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', args, { timeout: 60_000 });
  return stdout;
}

/** Why rabbitmqctl cannot manage the local broker, or undefined when it can. */
export async function rabbitmqctlProblem(): Promise<string | undefined> {
  try {
    await rabbitmqctl('-q', 'list_vhosts');
    return undefined;
  } catch (error) {
    return `rabbitmqctl cannot manage the local RabbitMQ (${(error as Error).message.split('\n')[0]})`;
  }
}

/** A throw-away vhost guest may use; `rabbitmqctl close_all_connections -p` then hits only ours. */
export async function createVhost(name: string): Promise<string> {
  await rabbitmqctl('-q', 'add_vhost', name);
  await rabbitmqctl('-q', 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*');
  const base = new URL(AMQP_URL);
  base.pathname = `/${encodeURIComponent(name)}`;
  return base.toString();
}

export async function deleteVhost(name: string): Promise<void> {
  await rabbitmqctl('-q', 'delete_vhost', name).catch(() => {});
}

/** Poll `predicate` every 10 ms until true, or throw after `ms`. */
export async function waitFor(what: string, predicate: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

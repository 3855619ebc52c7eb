import { type RequestContext, StratusError } from '@stratus/core';
import type { Instance } from '@stratus/manager-compute/client';
import type { Volume } from '@stratus/manager-volume/client';
import type { DeploymentClient } from './client.js';
import { GiveUp, waitFor } from './deployment.js';

/** What the lifecycle scenario saw at each step, printed by `bin/client.ts` as JSON. */
export interface ScenarioReport {
  /** Each volume created, with the host that took it from the shared `volume` queue. */
  readonly volumes: ReadonlyArray<{ readonly id: string; readonly host: string }>;
  readonly instance: { readonly id: string; readonly host: string; readonly vmState: string };
  /** Volumes attached across processes: their host, status and mountpoint while attached. */
  readonly attached: ReadonlyArray<{
    readonly volumeId: string;
    readonly host: string;
    readonly status: string;
    readonly instanceId: string | null;
    readonly mountpoint: string;
  }>;
  /** Status of the first attached volume after its explicit detach. */
  readonly afterDetach: string;
  /** Every volume and the instance are gone (soft-deleted) at the end. */
  readonly tornDown: boolean;
}

export interface ScenarioOptions {
  /** Volumes to create; default 6. */
  readonly volumes?: number;
  /** Bound on each wait; default 30 s. */
  readonly timeoutMs?: number;
  /** Progress lines (to stderr in the script). */
  readonly log?: (line: string) => void;
}

/**
 * The deployment's happy path, from the client's side: create volumes (spread over the volume hosts
 * by the shared topic queue), boot an instance, attach one volume of each volume host to it (compute
 * calls the volume host), detach one, terminate the instance (which detaches the other) and delete
 * every volume.
 */
export async function runScenario(
  client: DeploymentClient,
  ctx: RequestContext,
  options: ScenarioOptions = {},
): Promise<ScenarioReport> {
  const count = options.volumes ?? 6;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const log = options.log ?? (() => {});

  const created: Volume[] = [];
  for (let i = 0; i < count; i++) {
    created.push(await client.volumes.create(ctx, { size: 1, name: `deploy-${i}` }));
  }
  log(`created ${count} volumes`);
  const ready = await Promise.all(
    created.map((v) => waitForVolume(client, ctx, v.id, ['available'], timeoutMs)),
  );
  const volumes = ready.map((v) => ({ id: v.id, host: v.host ?? '' }));
  log(`volumes available on ${[...new Set(volumes.map((v) => v.host))].sort().join(', ')}`);

  const booted = await client.compute.run(ctx, { name: 'deploy-vm', flavor: 'm1.tiny', imageRef: 'cirros' });
  const instance = await waitFor(
    `instance ${booted.id} active`,
    async () => {
      const vm = await client.compute.get(ctx, booted.id);
      if (vm.vmState === 'error') throw new GiveUp(`instance ${vm.id} failed: ${vm.errorReason}`);
      return vm.vmState === 'active' && vm.taskState === null ? vm : undefined;
    },
    { timeoutMs },
  );
  log(`instance ${instance.id} active on ${instance.host}`);

  // One volume from each volume host, so the attach crosses into both storage processes.
  const perHost = new Map<string, string>();
  for (const v of volumes) if (!perHost.has(v.host)) perHost.set(v.host, v.id);
  const attached: Array<ScenarioReport['attached'][number]> = [];
  let device = 'b';
  for (const [host, volumeId] of perHost) {
    const mountpoint = `/dev/vd${device}`;
    device = String.fromCharCode(device.charCodeAt(0) + 1);
    await client.compute.attachVolume(ctx, instance.id, { volumeId, mountpoint });
    const v = await client.volumes.get(ctx, volumeId);
    attached.push({ volumeId, host, status: v.status, instanceId: v.instanceId, mountpoint });
    log(`volume ${volumeId} (${host}) attached at ${mountpoint}`);
  }

  const first = attached[0];
  if (!first) throw new Error('no volume to attach');
  await client.compute.detachVolume(ctx, instance.id, first.volumeId);
  const afterDetach = (await client.volumes.get(ctx, first.volumeId)).status;
  log(`volume ${first.volumeId} detached: ${afterDetach}`);

  await client.compute.terminate(ctx, instance.id);
  await waitFor(`instance ${instance.id} deleted`, () => gone(() => client.compute.get(ctx, instance.id)), {
    timeoutMs,
  });
  log(`instance ${instance.id} terminated`);

  // Terminate detached the remaining volumes; wait for them before deleting.
  await Promise.all(volumes.map((v) => waitForVolume(client, ctx, v.id, ['available'], timeoutMs)));
  for (const v of volumes) await client.volumes.delete(ctx, v.id);
  await Promise.all(
    volumes.map((v) =>
      waitFor(`volume ${v.id} deleted`, () => gone(() => client.volumes.get(ctx, v.id)), { timeoutMs }),
    ),
  );
  log('all volumes deleted');

  return {
    volumes,
    instance: { id: instance.id, host: instance.host ?? '', vmState: instance.vmState },
    attached,
    afterDetach,
    tornDown: true,
  };
}

/** Wait until a volume reaches one of `statuses`; an unexpected `error*` status fails at once. */
export async function waitForVolume(
  client: DeploymentClient,
  ctx: RequestContext,
  id: string,
  statuses: readonly string[],
  timeoutMs = 30_000,
): Promise<Volume> {
  return waitFor(
    `volume ${id} ${statuses.join('|')}`,
    async () => {
      const v = await client.volumes.get(ctx, id);
      if (statuses.includes(v.status)) return v;
      if (v.status.startsWith('error')) {
        throw new GiveUp(`volume ${id} is ${v.status}: ${v.errorReason ?? 'no reason'}`);
      }
      return undefined;
    },
    { timeoutMs },
  );
}

/** True once `read` fails with NOT_FOUND (a deleted row is invisible without readDeleted). */
async function gone(read: () => Promise<Volume | Instance>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (error) {
    if (StratusError.is(error, 'NOT_FOUND')) return true;
    throw error;
  }
}

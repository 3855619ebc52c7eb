import { type RequestContext, StratusError } from '@stratus/core';
import type { VolumeApi } from '@stratus/manager-volume/client';
import { sleep } from './stats.js';

/** Poll interval while waiting for a status: short, the figure is the lifecycle's own latency. */
const POLL_MS = 1;

async function waitFor(
  api: VolumeApi,
  ctx: RequestContext,
  id: string,
  status: string | 'gone',
  timeoutMs: number,
) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const volume = await api.get(ctx, id);
      if (volume.status === status) return;
      if (volume.status === 'error' || volume.status === 'error_deleting')
        throw new Error(`volume ${id} went ${volume.status}: ${volume.errorReason ?? ''}`);
    } catch (error) {
      // A deleted volume is soft-deleted: invisible to a non-admin context.
      if (status === 'gone' && StratusError.is(error, 'NOT_FOUND')) return;
      throw error;
    }
    if (Date.now() > until) throw new Error(`volume ${id} not ${status} within ${timeoutMs} ms`);
    await sleep(POLL_MS);
  }
}

/** create → available → delete → gone, through the VolumeApi. */
export async function volumeCycle(api: VolumeApi, ctx: RequestContext, timeoutMs = 60_000): Promise<void> {
  const volume = await api.create(ctx, { size: 1, name: 'bench' });
  await waitFor(api, ctx, volume.id, 'available', timeoutMs);
  await api.delete(ctx, volume.id);
  await waitFor(api, ctx, volume.id, 'gone', timeoutMs);
}

/** Quotas no benchmark reaches. */
export const UNLIMITED = { volumes: 1_000_000_000, gigabytes: 1_000_000_000_000, snapshots: 1_000_000_000 };

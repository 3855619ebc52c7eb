import { definePlugin, type Logger, type PluginManifest, type Store } from '@stratus/core';
import type { FakeComputeDriver, FakeVolumeDriver } from '@stratus/driver-fake';
import type { ComputeDatabase } from '@stratus/manager-compute/client';
import type { VolumeDatabase } from '@stratus/manager-volume/client';
import { CliError, ExitCode } from './exit.js';

/**
 * Test hook for the fake drivers of `stratus up`, read from `STRATUS_FAKE_FAULTS` (JSON):
 * `{ "volume": { "createVolume": { "fail": 1 } }, "compute": { "spawn": { "delayMs": 2000 } } }`.
 * `fail: N` makes the next N calls fail (the fake's failNext); `delayMs` delays every call.
 */
export interface FakeFaults {
  readonly volume?: Readonly<Record<string, MethodFault>>;
  readonly compute?: Readonly<Record<string, MethodFault>>;
}
interface MethodFault {
  readonly fail?: number;
  readonly delayMs?: number;
}

/** Parses `STRATUS_FAKE_FAULTS`; a malformed value is a usage error rather than silently nothing. */
export function parseFakeFaults(text: string | undefined): FakeFaults {
  if (!text) return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as FakeFaults;
  } catch (error) {
    throw new CliError(`STRATUS_FAKE_FAULTS is not a JSON object (${(error as Error).message})`, {
      exitCode: ExitCode.USAGE,
      hint: 'Example: STRATUS_FAKE_FAULTS=\'{"volume":{"createVolume":{"fail":1}}}\'',
    });
  }
}

type FakeDriver = FakeVolumeDriver | FakeComputeDriver;

function applyFaults(driver: FakeDriver, faults: Readonly<Record<string, MethodFault>> | undefined): void {
  for (const [method, fault] of Object.entries(faults ?? {})) {
    const target = driver as unknown as Record<string, unknown>;
    const original = target[method];
    if (typeof original !== 'function') {
      throw new CliError(`STRATUS_FAKE_FAULTS names ${method}, which the fake driver does not have`, {
        exitCode: ExitCode.USAGE,
      });
    }
    if (fault.fail)
      (driver.faults as { failNext(m: string, n: number): unknown }).failNext(method, fault.fail);
    const delayMs = fault.delayMs;
    if (delayMs) {
      const call = original.bind(driver) as (...args: unknown[]) => Promise<unknown>;
      target[method] = async (...args: unknown[]) => {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        return call(...args);
      };
    }
  }
}

/** Volume statuses whose backend volume exists. */
const VOLUME_PRESENT = ['available', 'in-use', 'attaching', 'detaching', 'error_extending', 'error_deleting'];
const SNAPSHOT_PRESENT = ['available', 'error_deleting'];

/**
 * The fake volume driver of `stratus up`, made to survive restarts: the fake keeps its backend in
 * memory, so before the manager's `initHost` re-exports this host's volumes, the volumes and
 * snapshots the database says exist are re-created in it (as a real backend would still have them).
 */
export function persistentFakeVolume(
  base: PluginManifest<'volume-driver'>,
  store: Store,
  logger: Logger,
  faults: FakeFaults = {},
): PluginManifest<'volume-driver'> {
  return definePlugin({
    ...base,
    create: async (config, env) => {
      const driver = (await base.create(config as never, env)) as FakeVolumeDriver;
      // Imported here so that client commands, bundled in the same file, never load the managers.
      const { snapshotName, volumeName } = await import('@stratus/manager-volume/client');
      const db = (store as unknown as Store<VolumeDatabase>).db;
      const volumes = await db
        .selectFrom('volumes')
        .selectAll()
        .where('host', '=', env.host)
        .where('deleted', '=', false)
        .where('status', 'in', VOLUME_PRESENT as never[])
        .orderBy('created_at')
        .execute();
      for (const v of volumes) {
        await driver.createVolume({ id: v.id, name: volumeName(v.id), sizeGiB: Number(v.size_gib) });
      }
      const snapshots = await db
        .selectFrom('snapshots')
        .innerJoin('volumes', 'volumes.id', 'snapshots.volume_id')
        .select(['snapshots.id', 'snapshots.volume_id', 'snapshots.volume_size_gib'])
        .where('volumes.host', '=', env.host)
        .where('snapshots.deleted', '=', false)
        .where('snapshots.status', 'in', SNAPSHOT_PRESENT as never[])
        .execute();
      for (const s of snapshots) {
        await driver.createSnapshot({
          id: s.id,
          name: snapshotName(s.id),
          volumeId: s.volume_id,
          volumeName: volumeName(s.volume_id),
          volumeSizeGiB: Number(s.volume_size_gib),
        });
      }
      driver.clearCalls();
      if (volumes.length || snapshots.length) {
        logger.info(
          { volumes: volumes.length, snapshots: snapshots.length },
          'fake volume backend restored from the database',
        );
      }
      applyFaults(driver, faults.volume);
      return driver;
    },
  });
}

/** vm_states whose instance exists on the hypervisor. */
const INSTANCE_PRESENT = ['active', 'paused', 'suspended', 'stopped', 'rescued'];

/**
 * The fake hypervisor of `stratus up`, made to survive restarts: instances the database places on
 * this host are spawned again in their recorded power state with their volumes attached, as a
 * real hypervisor would still run them after the compute service restarts.
 */
export function persistentFakeCompute(
  base: PluginManifest<'compute-driver'>,
  store: Store,
  logger: Logger,
  faults: FakeFaults = {},
): PluginManifest<'compute-driver'> {
  return definePlugin({
    ...base,
    create: async (config, env) => {
      const driver = (await base.create(config as never, env)) as FakeComputeDriver;
      const { instanceSpec } = await import('@stratus/manager-compute/client');
      const db = (store as unknown as Store<ComputeDatabase>).db;
      const rows = await db
        .selectFrom('instances')
        .selectAll()
        .where('host', '=', env.host)
        .where('deleted', '=', false)
        .where('vm_state', 'in', INSTANCE_PRESENT as never[])
        .orderBy('created_at')
        .execute();
      for (const row of rows) {
        const spec = instanceSpec(row);
        await driver.spawn(spec);
        if (row.vm_state === 'rescued') await driver.rescue(spec, 'restored');
        else if (row.power_state === 'shutdown' || row.power_state === 'crashed') await driver.powerOff(spec);
        else if (row.power_state === 'paused') await driver.pause(spec);
        else if (row.power_state === 'suspended') await driver.suspend(spec);
        const attachments = await db
          .selectFrom('volume_attachments')
          .selectAll()
          .where('instance_id', '=', row.id)
          .where('status', '=', 'attached')
          .execute();
        for (const a of attachments) {
          if (!a.connection_info) continue;
          await driver.attachVolume(spec, JSON.parse(a.connection_info), a.mountpoint);
        }
      }
      driver.clearCalls();
      if (rows.length) logger.info({ instances: rows.length }, 'fake hypervisor restored from the database');
      applyFaults(driver, faults.compute);
      return driver;
    },
  });
}

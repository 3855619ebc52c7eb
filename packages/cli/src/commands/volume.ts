import type { Command } from 'commander';
import type { ApiClient } from '../api-client.js';
import { type CliContext, withJson } from '../context.js';
import { emit, renderRecord, renderTable } from '../output.js';
import {
  addDeleteCommand,
  addListCommand,
  addShowCommand,
  connect,
  deletionPhase,
  findByRef,
  positiveInt,
  type ResourcePath,
  type ResourceWatch,
  statusPhase,
  unlessGone,
  type WaitFlags,
  type WaitSpec,
  waitIfAsked,
  withConnection,
  withWait,
} from './common.js';

/** A volume as Block Storage v3 returns it (the fields the CLI uses). */
export interface VolumeBody {
  readonly id: string;
  readonly name: string | null;
  readonly description?: string | null;
  readonly size: number;
  readonly status: string;
  readonly attachments?: readonly { server_id?: string; device?: string }[];
  readonly snapshot_id?: string | null;
  readonly availability_zone?: string;
  readonly created_at?: string;
  readonly updated_at?: string | null;
  readonly 'os-vol-host-attr:host'?: string | null;
  readonly 'os-vol-tenant-attr:tenant_id'?: string;
  readonly error_reason?: string | null;
}

export interface SnapshotBody {
  readonly id: string;
  readonly name: string | null;
  readonly description?: string | null;
  readonly volume_id: string;
  readonly size: number;
  readonly status: string;
  readonly created_at?: string;
}

const VOLUMES: ResourcePath = { service: 'volume', collection: 'volumes', kind: 'volume' };

export function getVolume(client: ApiClient, ref: string): Promise<VolumeBody> {
  return findByRef(client, VOLUMES, ref);
}

const SNAPSHOTS: ResourcePath = { service: 'volume', collection: 'snapshots', kind: 'snapshot' };

function getSnapshot(client: ApiClient, ref: string): Promise<SnapshotBody> {
  return findByRef(client, SNAPSHOTS, ref);
}

/** `--wait` on a volume: its status, and why it went to error. */
function watchVolume(client: ApiClient, volume: VolumeBody): ResourceWatch<VolumeBody> {
  return {
    label: `volume ${volume.name ?? volume.id}`,
    poll: () => unlessGone(() => getVolume(client, volume.id)),
    describe: (v) => v?.status ?? 'gone',
    reason: (v) => v?.error_reason,
  };
}

/** Waits for a volume operation to end in `phase`; the final volume (undefined when gone). */
export function waitVolume(
  ctx: CliContext,
  client: ApiClient,
  flags: WaitFlags,
  volume: VolumeBody,
  phase: WaitSpec<VolumeBody>['phase'],
): Promise<VolumeBody | undefined> {
  return waitIfAsked(ctx, flags, { ...watchVolume(client, volume), phase });
}

function watchSnapshot(client: ApiClient, snapshot: SnapshotBody): ResourceWatch<SnapshotBody> {
  return {
    label: `snapshot ${snapshot.name ?? snapshot.id}`,
    poll: () => unlessGone(() => getSnapshot(client, snapshot.id)),
    describe: (s) => s?.status ?? 'gone',
  };
}

const attachedTo = (v: VolumeBody) =>
  (v.attachments ?? []).map((a) => `${a.server_id ?? '?'}${a.device ? ` on ${a.device}` : ''}`).join(', ');

function volumeTable(volumes: readonly VolumeBody[]): string {
  return renderTable(volumes, [
    { header: 'id', value: (v) => v.id },
    { header: 'name', value: (v) => v.name },
    { header: 'status', value: (v) => v.status },
    { header: 'size', value: (v) => `${v.size} GiB` },
    { header: 'attached to', value: attachedTo },
  ]);
}

function volumeRecord(v: VolumeBody): string {
  return renderRecord([
    ['id', v.id],
    ['name', v.name],
    ['description', v.description],
    ['status', v.status],
    ['size', `${v.size} GiB`],
    ['attached to', attachedTo(v)],
    ['snapshot', v.snapshot_id],
    ['host', v['os-vol-host-attr:host']],
    ['zone', v.availability_zone],
    ['created', v.created_at],
    ['updated', v.updated_at],
    ...(v.error_reason ? ([['error', v.error_reason]] as const) : []),
  ]);
}

function snapshotTable(snapshots: readonly SnapshotBody[]): string {
  return renderTable(snapshots, [
    { header: 'id', value: (s) => s.id },
    { header: 'name', value: (s) => s.name },
    { header: 'volume', value: (s) => s.volume_id },
    { header: 'status', value: (s) => s.status },
    { header: 'size', value: (s) => `${s.size} GiB` },
  ]);
}

function snapshotRecord(s: SnapshotBody): string {
  return renderRecord([
    ['id', s.id],
    ['name', s.name],
    ['description', s.description],
    ['volume', s.volume_id],
    ['status', s.status],
    ['size', `${s.size} GiB`],
    ['created', s.created_at],
  ]);
}

/** `stratus volume ...`. */
export function registerVolume(program: Command, ctx: CliContext): void {
  const group = withConnection(
    program.command('volume').description('block storage volumes and their snapshots'),
  );

  withJson(withWait(group.command('create')))
    .description('create a volume (status creating → available)')
    .option('-s, --size <gib>', 'size in GiB (default: the snapshot size with --snapshot)')
    .option('-n, --name <name>', 'name')
    .option('--description <text>', 'description')
    .option('--snapshot <snapshot>', 'create it from this snapshot (id or name)')
    .action(
      async (
        flags: WaitFlags & { size?: string; name?: string; description?: string; snapshot?: string },
        command: Command,
      ) => {
        // Check the command line before logging in.
        const given =
          flags.size === undefined && flags.snapshot ? undefined : positiveInt(flags.size, '--size');
        const client = await connect(ctx, command);
        const snapshot = flags.snapshot ? await getSnapshot(client, flags.snapshot) : undefined;
        const size = given ?? (snapshot as SnapshotBody).size;
        const { body } = await client.request<{ volume: VolumeBody }>('volume', 'POST', '/volumes', {
          body: {
            volume: {
              size,
              ...(flags.name ? { name: flags.name } : {}),
              ...(flags.description ? { description: flags.description } : {}),
              ...(snapshot ? { snapshot_id: snapshot.id } : {}),
            },
          },
        });
        let volume: VolumeBody | undefined = body.volume;
        if (flags.wait) {
          volume = await waitVolume(
            ctx,
            client,
            flags,
            body.volume,
            statusPhase(['creating', 'downloading'], ['available']),
          );
        }
        emit(ctx.io, Boolean(flags.json), volume, () => volumeRecord(volume as VolumeBody));
      },
    );

  addListCommand(group, ctx, {
    path: VOLUMES,
    description: 'list volumes of the project (all projects with --all-projects, admin only)',
    statusHelp: 'only volumes in this status',
    table: volumeTable,
  });

  addShowCommand(group, ctx, VOLUMES, volumeRecord);

  addDeleteCommand(group, ctx, {
    path: VOLUMES,
    description: 'delete volumes (status deleting → gone); it must have no snapshots and not be attached',
    watch: watchVolume,
    phase: deletionPhase(['deleting']),
  });

  withJson(withWait(group.command('extend')))
    .description('grow a volume (status extending → available)')
    .argument('<volume>', 'id or name')
    .requiredOption('-s, --size <gib>', 'new size in GiB (larger than the current one)')
    .action(async (ref: string, flags: WaitFlags & { size: string }, command: Command) => {
      const size = positiveInt(flags.size, '--size');
      const client = await connect(ctx, command);
      const current = await getVolume(client, ref);
      await client.request('volume', 'POST', `/volumes/${current.id}/action`, {
        body: { 'os-extend': { new_size: size } },
      });
      let volume: VolumeBody | undefined = await getVolume(client, current.id);
      if (flags.wait) {
        volume = await waitIfAsked(ctx, flags, {
          ...watchVolume(client, current),
          phase: (v) =>
            v?.status === 'available' && v.size < size
              ? 'pending'
              : statusPhase(['extending'], ['available', 'in-use'])(v),
          describe: (v) => (v ? `${v.status}, ${v.size} GiB` : 'gone'),
        });
      }
      emit(ctx.io, Boolean(flags.json), volume, () => volumeRecord(volume as VolumeBody));
    });

  withJson(group.command('set'))
    .description("change a volume's name or description")
    .argument('<volume>', 'id or name')
    .option('-n, --name <name>', 'new name')
    .option('--description <text>', 'new description')
    .action(
      async (
        ref: string,
        flags: { json?: boolean; name?: string; description?: string },
        command: Command,
      ) => {
        const client = await connect(ctx, command);
        const current = await getVolume(client, ref);
        const { body } = await client.request<{ volume: VolumeBody }>(
          'volume',
          'PUT',
          `/volumes/${current.id}`,
          {
            body: {
              volume: {
                ...(flags.name !== undefined ? { name: flags.name } : {}),
                ...(flags.description !== undefined ? { description: flags.description } : {}),
              },
            },
          },
        );
        emit(ctx.io, Boolean(flags.json), body.volume, () => volumeRecord(body.volume));
      },
    );

  const snapshots = group.command('snapshot').description("point-in-time copies of a volume's data");

  withJson(withWait(snapshots.command('create')))
    .description('snapshot a volume (status creating → available)')
    .argument('<volume>', 'id or name of the volume')
    .option('-n, --name <name>', 'name')
    .option('--description <text>', 'description')
    .option('--force', 'snapshot even while the volume is attached')
    .action(
      async (
        ref: string,
        flags: WaitFlags & { name?: string; description?: string; force?: boolean },
        command: Command,
      ) => {
        const client = await connect(ctx, command);
        const volume = await getVolume(client, ref);
        const { body } = await client.request<{ snapshot: SnapshotBody }>('volume', 'POST', '/snapshots', {
          body: {
            snapshot: {
              volume_id: volume.id,
              ...(flags.name ? { name: flags.name } : {}),
              ...(flags.description ? { description: flags.description } : {}),
              ...(flags.force ? { force: true } : {}),
            },
          },
        });
        let snapshot: SnapshotBody | undefined = body.snapshot;
        if (flags.wait) {
          snapshot = await waitIfAsked(ctx, flags, {
            ...watchSnapshot(client, body.snapshot),
            phase: statusPhase(['creating'], ['available']),
          });
        }
        emit(ctx.io, Boolean(flags.json), snapshot, () => snapshotRecord(snapshot as SnapshotBody));
      },
    );

  withJson(snapshots.command('list'))
    .description('list snapshots')
    .option('--volume <volume>', 'only snapshots of this volume (id or name)')
    .option('--all-projects', 'every project (admin)')
    .action(async (flags: { json?: boolean; volume?: string; allProjects?: boolean }, command: Command) => {
      const client = await connect(ctx, command);
      const volumeId = flags.volume ? (await getVolume(client, flags.volume)).id : undefined;
      const { body } = await client.request<{ snapshots: SnapshotBody[] }>(
        'volume',
        'GET',
        '/snapshots/detail',
        {
          query: { all_tenants: flags.allProjects ? 1 : undefined, volume_id: volumeId },
        },
      );
      const list = volumeId ? body.snapshots.filter((s) => s.volume_id === volumeId) : body.snapshots;
      emit(ctx.io, Boolean(flags.json), list, () => snapshotTable(list));
    });

  addShowCommand(snapshots, ctx, SNAPSHOTS, snapshotRecord);

  addDeleteCommand(snapshots, ctx, {
    path: SNAPSHOTS,
    description: 'delete snapshots',
    watch: watchSnapshot,
    phase: deletionPhase(['deleting']),
  });
}

import type { Command } from 'commander';
import type { ApiClient } from '../api-client.js';
import { type CliContext, withJson } from '../context.js';
import { emit, renderRecord, renderTable } from '../output.js';
import type { Phase } from '../wait.js';
import {
  addDeleteCommand,
  addListCommand,
  addShowCommand,
  connect,
  findByRef,
  looksLikeId,
  pickOne,
  positiveInt,
  type ResourcePath,
  type ResourceWatch,
  statusPhase,
  unlessGone,
  type WaitFlags,
  waitIfAsked,
  withConnection,
  withWait,
} from './common.js';
import { getVolume, waitVolume } from './volume.js';

/** A server as Compute v2.1 returns it (the fields the CLI uses). */
export interface ServerBody {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly 'OS-EXT-STS:vm_state'?: string;
  readonly 'OS-EXT-STS:task_state'?: string | null;
  readonly 'OS-EXT-STS:power_state'?: number;
  readonly 'OS-EXT-SRV-ATTR:host'?: string | null;
  readonly flavor?: { id?: string; original_name?: string; vcpus?: number; ram?: number; disk?: number };
  readonly image?: { id?: string } | string;
  readonly locked?: boolean;
  readonly fault?: { message?: string; code?: number };
  readonly created?: string;
  readonly updated?: string;
  readonly tenant_id?: string;
  readonly 'os-extended-volumes:volumes_attached'?: readonly { id: string }[];
}

interface FlavorBody {
  readonly id: string;
  readonly name: string;
  readonly vcpus: number;
  readonly ram: number;
  readonly disk: number;
}
interface ImageBody {
  readonly id: string;
  readonly name: string;
  readonly status?: string;
  readonly size?: number;
  readonly disk_format?: string;
}

/** Nova's numeric power states. */
const POWER_STATES: Record<number, string> = {
  0: 'NOSTATE',
  1: 'Running',
  3: 'Paused',
  4: 'Shutdown',
  6: 'Crashed',
  7: 'Suspended',
};

const SERVERS: ResourcePath = { service: 'compute', collection: 'servers', kind: 'server' };

function getServer(client: ApiClient, ref: string): Promise<ServerBody> {
  return findByRef(client, SERVERS, ref);
}

const taskState = (s: ServerBody) => s['OS-EXT-STS:task_state'] ?? null;
const power = (s: ServerBody) => {
  const p = s['OS-EXT-STS:power_state'];
  return p === undefined ? undefined : (POWER_STATES[p] ?? String(p));
};
const flavorName = (s: ServerBody) => s.flavor?.original_name ?? s.flavor?.id;
const imageId = (s: ServerBody) => (typeof s.image === 'string' ? s.image : s.image?.id);

function serverTable(servers: readonly ServerBody[]): string {
  return renderTable(servers, [
    { header: 'id', value: (s) => s.id },
    { header: 'name', value: (s) => s.name },
    { header: 'status', value: (s) => s.status },
    { header: 'task', value: taskState },
    { header: 'power', value: power },
    { header: 'flavor', value: flavorName },
  ]);
}

function serverRecord(s: ServerBody): string {
  return renderRecord([
    ['id', s.id],
    ['name', s.name],
    ['status', s.status],
    ['vm state', s['OS-EXT-STS:vm_state']],
    ['task state', taskState(s)],
    ['power state', power(s)],
    ['flavor', flavorName(s)],
    ['image', imageId(s)],
    ['host', s['OS-EXT-SRV-ATTR:host']],
    ['locked', s.locked],
    ['volumes', (s['os-extended-volumes:volumes_attached'] ?? []).map((v) => v.id).join(', ')],
    ['created', s.created],
    ['updated', s.updated],
    ...(s.fault?.message ? ([['fault', s.fault.message]] as const) : []),
  ]);
}

/**
 * Phase of a server operation: pending while a task runs (or while BUILD), an error when it ends in
 * ERROR or not in the status the action leads to.
 */
function serverPhase(expected: readonly string[] | undefined) {
  return (s: ServerBody | undefined): Phase => {
    if (!s) return 'error';
    if (taskState(s) || s.status === 'BUILD' || s.status === 'REBOOT' || s.status === 'HARD_REBOOT')
      return 'pending';
    if (s.status === 'ERROR') return 'error';
    return !expected || expected.includes(s.status) ? 'done' : 'error';
  };
}

/** `--wait` on a server: its status and task, and the fault it ended with. */
function watchServer(client: ApiClient, server: ServerBody): ResourceWatch<ServerBody> {
  return {
    label: `server ${server.name}`,
    poll: () => unlessGone(() => getServer(client, server.id)),
    describe: (s) => (s ? `${s.status.toLowerCase()}${taskState(s) ? ` (${taskState(s)})` : ''}` : 'gone'),
    reason: (s) => s?.fault?.message,
  };
}

async function waitServer(
  ctx: CliContext,
  client: ApiClient,
  flags: WaitFlags,
  server: ServerBody,
  expected?: readonly string[],
) {
  return waitIfAsked(ctx, flags, { ...watchServer(client, server), phase: serverPhase(expected) });
}

/** Simple actions: CLI name, request body, the status the server ends in, help text. */
const ACTIONS: readonly (readonly [
  string,
  (flags: Record<string, unknown>) => unknown,
  readonly string[],
  string,
])[] = [
  ['stop', () => ({ 'os-stop': null }), ['SHUTOFF'], 'power off (→ SHUTOFF)'],
  ['start', () => ({ 'os-start': null }), ['ACTIVE'], 'power on a stopped server (→ ACTIVE)'],
  ['pause', () => ({ pause: null }), ['PAUSED'], 'pause, keeping it in memory (→ PAUSED)'],
  ['unpause', () => ({ unpause: null }), ['ACTIVE'], 'unpause (→ ACTIVE)'],
  ['suspend', () => ({ suspend: null }), ['SUSPENDED'], 'suspend to disk (→ SUSPENDED)'],
  ['resume', () => ({ resume: null }), ['ACTIVE'], 'resume a suspended server (→ ACTIVE)'],
  [
    'rescue',
    () => ({ rescue: {} }),
    ['RESCUE'],
    'boot from a rescue image with its disk attached (→ RESCUE)',
  ],
  ['unrescue', () => ({ unrescue: null }), ['ACTIVE'], 'leave rescue mode (→ ACTIVE)'],
];

/** `stratus server ...`, plus `stratus flavor list` and `stratus image list`. */
export function registerServer(program: Command, ctx: CliContext): void {
  const group = withConnection(program.command('server').description('compute instances'));

  withJson(withWait(group.command('create')))
    .description('boot a server (BUILD → ACTIVE)')
    .argument('<name>', 'server name')
    .requiredOption('-f, --flavor <flavor>', 'flavor name or id (stratus flavor list), e.g. m1.tiny')
    .requiredOption('-i, --image <image>', 'image name or id (stratus image list), e.g. cirros')
    .action(async (name: string, flags: WaitFlags & { flavor: string; image: string }, command: Command) => {
      const client = await connect(ctx, command);
      const flavors = (await client.request<{ flavors: FlavorBody[] }>('compute', 'GET', '/flavors/detail'))
        .body.flavors;
      const flavor = pickOne(flavors, flags.flavor, 'flavor');
      const image = looksLikeId(flags.image)
        ? { id: flags.image }
        : pickOne(
            (await client.request<{ images: ImageBody[] }>('image', 'GET', '/v2/images')).body.images,
            flags.image,
            'image',
          );
      const { body } = await client.request<{ server: { id: string } }>('compute', 'POST', '/servers', {
        body: { server: { name, flavorRef: flavor.id, imageRef: image.id } },
      });
      let server: ServerBody | undefined = await getServer(client, body.server.id);
      if (flags.wait) server = await waitServer(ctx, client, flags, server, ['ACTIVE']);
      emit(ctx.io, Boolean(flags.json), server, () => serverRecord(server as ServerBody));
    });

  addListCommand(group, ctx, {
    path: SERVERS,
    description: 'list servers of the project (all projects with --all-projects, admin only)',
    statusHelp: 'only servers in this status (ACTIVE, SHUTOFF, ERROR, ...)',
    status: (text) => text.toUpperCase(),
    table: serverTable,
  });

  addShowCommand(group, ctx, SERVERS, serverRecord);

  addDeleteCommand(group, ctx, {
    path: SERVERS,
    description: 'delete servers (their volumes are detached first)',
    watch: watchServer,
    phase: (s) => (!s || s.status === 'DELETED' ? 'done' : s.status === 'ERROR' ? 'error' : 'pending'),
  });

  withJson(withWait(group.command('reboot')))
    .description('reboot (soft: ask the guest; --hard: reset)')
    .argument('<server>', 'id or name')
    .option('--hard', 'hard reboot')
    .action(async (ref: string, flags: WaitFlags & { hard?: boolean }, command: Command) => {
      await runAction(ctx, command, ref, flags, { reboot: { type: flags.hard ? 'HARD' : 'SOFT' } }, [
        'ACTIVE',
      ]);
    });

  for (const [name, body, expected, help] of ACTIONS) {
    withJson(withWait(group.command(name)))
      .description(help)
      .argument('<server>', 'id or name')
      .action(async (ref: string, flags: WaitFlags, command: Command) => {
        await runAction(ctx, command, ref, flags, body(flags as Record<string, unknown>), expected);
      });
  }

  for (const [name, body, help] of [
    ['lock', { lock: null }, 'refuse actions from non-admin users until unlocked'],
    ['unlock', { unlock: null }, 'allow actions again'],
  ] as const) {
    withJson(group.command(name))
      .description(help)
      .argument('<server>', 'id or name')
      .action(async (ref: string, flags: { json?: boolean }, command: Command) => {
        const client = await connect(ctx, command);
        const server = await getServer(client, ref);
        await client.request('compute', 'POST', `/servers/${server.id}/action`, { body });
        const after = await getServer(client, server.id);
        emit(ctx.io, Boolean(flags.json), after, () => serverRecord(after));
      });
  }

  withJson(group.command('console'))
    .description("print the server's console log")
    .argument('<server>', 'id or name')
    .option('--lines <n>', 'only the last N lines')
    .action(async (ref: string, flags: { json?: boolean; lines?: string }, command: Command) => {
      const client = await connect(ctx, command);
      const server = await getServer(client, ref);
      const length = flags.lines === undefined ? undefined : positiveInt(flags.lines, '--lines');
      const { body } = await client.request<{ output: string }>(
        'compute',
        'POST',
        `/servers/${server.id}/action`,
        {
          body: { 'os-getConsoleOutput': length === undefined ? {} : { length } },
        },
      );
      emit(ctx.io, Boolean(flags.json), body, () =>
        body.output.endsWith('\n') ? body.output : `${body.output}\n`,
      );
    });

  withJson(withWait(group.command('attach')))
    .description('attach a volume to a server (volume attaching → in-use)')
    .argument('<server>', 'server id or name')
    .argument('<volume>', 'volume id or name')
    .option('--device <path>', 'device inside the guest, e.g. /dev/vdb (default: the next free one)')
    .action(
      async (
        serverRef: string,
        volumeRef: string,
        flags: WaitFlags & { device?: string },
        command: Command,
      ) => {
        const client = await connect(ctx, command);
        const server = await getServer(client, serverRef);
        const volume = await getVolume(client, volumeRef);
        const { body } = await client.request<{ volumeAttachment: Record<string, unknown> }>(
          'compute',
          'POST',
          `/servers/${server.id}/os-volume_attachments`,
          {
            body: {
              volumeAttachment: { volumeId: volume.id, ...(flags.device ? { device: flags.device } : {}) },
            },
          },
        );
        let result: unknown = body.volumeAttachment;
        if (flags.wait) {
          result = await waitVolume(ctx, client, flags, volume, statusPhase(['attaching'], ['in-use']));
        }
        emit(
          ctx.io,
          Boolean(flags.json),
          result,
          () =>
            `attached volume ${volume.name ?? volume.id} to server ${server.name}${body.volumeAttachment.device ? ` as ${String(body.volumeAttachment.device)}` : ''}${flags.wait ? '' : ' (in progress)'}\n`,
        );
      },
    );

  withJson(withWait(group.command('detach')))
    .description('detach a volume from a server (volume detaching → available)')
    .argument('<server>', 'server id or name')
    .argument('<volume>', 'volume id or name')
    .action(async (serverRef: string, volumeRef: string, flags: WaitFlags, command: Command) => {
      const client = await connect(ctx, command);
      const server = await getServer(client, serverRef);
      const volume = await getVolume(client, volumeRef);
      await client.request('compute', 'DELETE', `/servers/${server.id}/os-volume_attachments/${volume.id}`);
      let result: unknown = { serverId: server.id, volumeId: volume.id };
      if (flags.wait) {
        result = await waitVolume(ctx, client, flags, volume, statusPhase(['detaching'], ['available']));
      }
      emit(
        ctx.io,
        Boolean(flags.json),
        result,
        () =>
          `detached volume ${volume.name ?? volume.id} from server ${server.name}${flags.wait ? '' : ' (in progress)'}\n`,
      );
    });

  withJson(group.command('volumes'))
    .description('list the volumes attached to a server')
    .argument('<server>', 'id or name')
    .action(async (ref: string, flags: { json?: boolean }, command: Command) => {
      const client = await connect(ctx, command);
      const server = await getServer(client, ref);
      const { body } = await client.request<{
        volumeAttachments: { volumeId: string; device?: string; id?: string }[];
      }>('compute', 'GET', `/servers/${server.id}/os-volume_attachments`);
      emit(ctx.io, Boolean(flags.json), body.volumeAttachments, () =>
        renderTable(body.volumeAttachments, [
          { header: 'volume', value: (a) => a.volumeId },
          { header: 'device', value: (a) => a.device },
        ]),
      );
    });

  withJson(withConnection(program.command('flavor').description('instance sizes')).command('list'))
    .description('list flavors')
    .action(async (flags: { json?: boolean }, command: Command) => {
      const client = await connect(ctx, command);
      const { flavors } = (
        await client.request<{ flavors: FlavorBody[] }>('compute', 'GET', '/flavors/detail')
      ).body;
      emit(ctx.io, Boolean(flags.json), flavors, () =>
        renderTable(flavors, [
          { header: 'id', value: (f) => f.id },
          { header: 'name', value: (f) => f.name },
          { header: 'vcpus', value: (f) => f.vcpus },
          { header: 'ram', value: (f) => `${f.ram} MiB` },
          { header: 'disk', value: (f) => `${f.disk} GiB` },
        ]),
      );
    });

  withJson(withConnection(program.command('image').description('images servers boot from')).command('list'))
    .description('list images')
    .action(async (flags: { json?: boolean }, command: Command) => {
      const client = await connect(ctx, command);
      const { images } = (await client.request<{ images: ImageBody[] }>('image', 'GET', '/v2/images')).body;
      emit(ctx.io, Boolean(flags.json), images, () =>
        renderTable(images, [
          { header: 'id', value: (i) => i.id },
          { header: 'name', value: (i) => i.name },
          { header: 'status', value: (i) => i.status },
          { header: 'format', value: (i) => i.disk_format },
        ]),
      );
    });
}

async function runAction(
  ctx: CliContext,
  command: Command,
  ref: string,
  flags: WaitFlags,
  body: unknown,
  expected: readonly string[],
): Promise<void> {
  const client = await connect(ctx, command);
  const server = await getServer(client, ref);
  await client.request('compute', 'POST', `/servers/${server.id}/action`, { body });
  let after: ServerBody | undefined = await getServer(client, server.id);
  if (flags.wait) after = await waitServer(ctx, client, flags, after, expected);
  emit(ctx.io, Boolean(flags.json), after, () => serverRecord(after as ServerBody));
}

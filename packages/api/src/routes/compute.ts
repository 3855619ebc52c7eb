import { createHash } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  InvalidInputError,
  NotFoundError,
  QuotaExceededError,
  type RequestContext,
  schemaIssues,
} from '@stratus/core';
import type { Instance, VolumeAttachment } from '@stratus/manager-compute/client';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static, type TSchema } from 'typebox';
import { authenticate } from '../auth.js';
import type { FlavorEntry, ImageEntry } from '../config.js';
import { type ApiDeps, baseUrl } from '../deps.js';
import { sendFault } from '../faults.js';
import {
  cinderTime,
  fetchAllPages,
  Link,
  Loose,
  listedProjects,
  Nullable,
  nextPageLinks,
  novaTime,
  paginate,
  projectScopedContext,
  resourceLinks,
  servicesOfTopic,
  soleAction,
  summaryView,
  VersionBody,
} from './common.js';

/** The Compute microversion range served: the base 2.1 only. */
export const COMPUTE_MIN_VERSION = '2.1';
export const COMPUTE_MAX_VERSION = '2.1';
const MAX_LIMIT = 1000;

/** Nova's device name rule for `os-volume_attachments` (`/dev/vdb`, `/dev/sdc`, `/dev/xvdd`). */
const DEVICE = '^(/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$';

const ServerName = Type.String({ minLength: 1, maxLength: 255, pattern: '^\\S(.*\\S)?$' });
const Ref = Type.String({ minLength: 1, maxLength: 1024 });

const ServerCreate = Type.Object(
  {
    server: Type.Object(
      {
        name: ServerName,
        imageRef: Ref,
        flavorRef: Ref,
        min_count: Type.Optional(
          Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]),
        ),
        max_count: Type.Optional(
          Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]),
        ),
        return_reservation_id: Type.Optional(Type.Boolean()),
        networks: Type.Optional(
          Type.Union([Type.Array(Type.Record(Type.String(), Type.Unknown())), Type.String()]),
        ),
        security_groups: Type.Optional(Type.Array(Type.Object({ name: Type.String() }))),
        metadata: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 255 }))),
        availability_zone: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        key_name: Type.Optional(Nullable(Type.String())),
        user_data: Type.Optional(Nullable(Type.String({ maxLength: 65535 }))),
        config_drive: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
        adminPass: Type.Optional(Type.String()),
        accessIPv4: Type.Optional(Type.String()),
        accessIPv6: Type.Optional(Type.String()),
        'OS-DCF:diskConfig': Type.Optional(Type.Union([Type.Literal('AUTO'), Type.Literal('MANUAL')])),
        block_device_mapping: Type.Optional(Type.Array(Type.Unknown())),
        block_device_mapping_v2: Type.Optional(Type.Array(Type.Unknown())),
        personality: Type.Optional(Type.Array(Type.Unknown())),
      },
      { additionalProperties: false },
    ),
    'os:scheduler_hints': Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    'OS-SCH-HNT:scheduler_hints': Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
type ServerCreate = Static<typeof ServerCreate>;

const ServerAction = Type.Record(Type.String(), Type.Unknown(), { minProperties: 1 });
const NullOrEmpty = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })]);
const RebootArgs = Type.Object(
  {
    type: Type.Union([
      Type.Literal('HARD'),
      Type.Literal('Hard'),
      Type.Literal('hard'),
      Type.Literal('SOFT'),
      Type.Literal('Soft'),
      Type.Literal('soft'),
    ]),
  },
  { additionalProperties: false },
);
const RescueArgs = Type.Union([
  Type.Null(),
  Type.Object(
    {
      adminPass: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
      rescue_image_ref: Type.Optional(Type.String({ minLength: 1 })),
    },
    { additionalProperties: false },
  ),
]);
const ConsoleArgs = Type.Union([
  Type.Null(),
  Type.Object(
    {
      length: Type.Optional(
        Type.Union([Type.Integer({ minimum: -1 }), Type.String({ pattern: '^-?[0-9]+$' }), Type.Null()]),
      ),
    },
    { additionalProperties: false },
  ),
]);
const LockArgs = Type.Union([
  Type.Null(),
  Type.Object(
    { locked_reason: Type.Optional(Type.String({ maxLength: 255 })) },
    { additionalProperties: false },
  ),
]);

const AttachBody = Type.Object(
  {
    volumeAttachment: Type.Object(
      {
        volumeId: Type.String({ minLength: 1, maxLength: 36 }),
        device: Type.Optional(Nullable(Type.String({ maxLength: 255, pattern: DEVICE }))),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const ServerParams = Type.Object({ server_id: Type.String({ minLength: 1, maxLength: 255 }) });
const AttachmentParams = Type.Object({
  server_id: Type.String({ minLength: 1, maxLength: 255 }),
  volume_id: Type.String({ minLength: 1, maxLength: 255 }),
});

const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 0 })),
    marker: Type.Optional(Type.String({ minLength: 1 })),
    all_tenants: Type.Optional(Type.String()),
    name: Type.Optional(Type.String({ maxLength: 255 })),
    status: Type.Optional(Type.String()),
    host: Type.Optional(Type.String()),
    image: Type.Optional(Type.String()),
    flavor: Type.Optional(Type.String()),
    project_id: Type.Optional(Type.String()),
    tenant_id: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
type ListQuery = Static<typeof ListQuery>;

const RefBody = Type.Object({ id: Type.String(), links: Type.Array(Link) });

export const ServerBody = Loose({
  id: Type.String(),
  name: Type.String(),
  status: Type.String(),
  tenant_id: Nullable(Type.String()),
  user_id: Nullable(Type.String()),
  hostId: Type.String(),
  image: RefBody,
  flavor: RefBody,
  created: Type.String(),
  updated: Type.String(),
  addresses: Type.Record(Type.String(), Type.Unknown()),
  metadata: Type.Record(Type.String(), Type.String()),
  links: Type.Array(Link),
  'OS-EXT-STS:vm_state': Type.String(),
  'OS-EXT-STS:task_state': Nullable(Type.String()),
  'OS-EXT-STS:power_state': Type.Integer(),
  'os-extended-volumes:volumes_attached': Type.Array(Type.Object({ id: Type.String() })),
});

const ServerSummary = Type.Object({ id: Type.String(), name: Type.String(), links: Type.Array(Link) });

const AttachmentBody = Type.Object({
  id: Type.String(),
  serverId: Type.String(),
  volumeId: Type.String(),
  device: Type.String(),
});

export const FlavorBody = Loose({
  id: Type.String(),
  name: Type.String(),
  ram: Type.Integer(),
  vcpus: Type.Integer(),
  disk: Type.Integer(),
  swap: Type.Union([Type.Integer(), Type.Literal('')]),
  'OS-FLV-EXT-DATA:ephemeral': Type.Integer(),
  'OS-FLV-DISABLED:disabled': Type.Boolean(),
  'os-flavor-access:is_public': Type.Boolean(),
  rxtx_factor: Type.Number(),
  links: Type.Array(Link),
});
const FlavorSummary = Type.Object({ id: Type.String(), name: Type.String(), links: Type.Array(Link) });

/** Nova's numeric power states. */
const POWER: Record<Instance['powerState'], number> = {
  nostate: 0,
  running: 1,
  paused: 3,
  shutdown: 4,
  crashed: 6,
  suspended: 7,
};

/** Nova's task_state names where Stratus words differ. */
const TASK_NAMES: Partial<Record<NonNullable<Instance['taskState']>, string>> = {
  stopping: 'powering-off',
  starting: 'powering-on',
};

/** The API status of an instance (`nova/api/openstack/common.py` `_STATE_MAP`). */
export function serverStatus(instance: Pick<Instance, 'vmState' | 'taskState'>): string {
  const { vmState, taskState } = instance;
  if ((vmState === 'active' || vmState === 'stopped') && taskState === 'rebooting') return 'REBOOT';
  if (['active', 'stopped', 'paused', 'error'].includes(vmState) && taskState === 'rebooting_hard') {
    return 'HARD_REBOOT';
  }
  switch (vmState) {
    case 'building':
      return 'BUILD';
    case 'active':
      return 'ACTIVE';
    case 'stopped':
      return 'SHUTOFF';
    case 'paused':
      return 'PAUSED';
    case 'suspended':
      return 'SUSPENDED';
    case 'rescued':
      return 'RESCUE';
    case 'error':
      return 'ERROR';
    case 'deleted':
      return 'DELETED';
    default:
      return 'UNKNOWN';
  }
}

/** The last path segment of a reference that may be a URL (`http://.../flavors/1` → `1`). */
function refId(ref: string): string {
  const trimmed = ref.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

function flavorView(flavor: FlavorEntry, root: string, bookmark: string) {
  return {
    id: flavor.id,
    name: flavor.name,
    ram: flavor.ramMiB,
    vcpus: flavor.vcpus,
    disk: flavor.diskGiB,
    swap: flavor.swapMiB === 0 ? ('' as const) : flavor.swapMiB,
    'OS-FLV-EXT-DATA:ephemeral': flavor.ephemeralGiB,
    'OS-FLV-DISABLED:disabled': false,
    'os-flavor-access:is_public': true,
    rxtx_factor: 1.0,
    links: resourceLinks(root, bookmark, 'flavors', flavor.id),
  };
}

/** Nova's hostId: an opaque per-project digest of the host, so tenants cannot learn host names. */
function hostId(instance: Instance): string {
  if (!instance.host) return '';
  return createHash('sha224')
    .update(`${instance.projectId ?? ''}${instance.host}`)
    .digest('hex');
}

/**
 * Compute v2.1 under `/v2.1`: servers (create, list, detail, show, delete, actions),
 * `os-volume_attachments`, flavors (from config), `os-services`, `limits`, and the version document.
 * Errors use Nova's fault bodies (`itemNotFound`, `conflictingRequest`, ...).
 */
export function computeRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.setErrorHandler((error, request, reply) => sendFault(request, reply, error, 'compute'));
    app.addHook('onSend', async (request, reply) => {
      reply.header('OpenStack-API-Version', `compute ${COMPUTE_MAX_VERSION}`);
      reply.header('X-OpenStack-Nova-API-Version', COMPUTE_MAX_VERSION);
      reply.header('Vary', 'OpenStack-API-Version, X-OpenStack-Nova-API-Version');
      reply.header('X-Compute-Request-Id', request.id);
    });
    app.addHook('preHandler', async (request) => {
      if (request.routeOptions.config.public) return;
      await authenticate(deps, request);
    });

    const urls = (request: FastifyRequest) => {
      const base = baseUrl(deps.config, request);
      return { root: `${base}/v2.1`, bookmark: base };
    };

    const flavorOfInstance = (instance: Instance): FlavorEntry | undefined =>
      deps.config.flavors.find((f) => f.name === instance.flavor.name);

    function serverView(
      instance: Instance,
      request: FastifyRequest,
      attachments: readonly VolumeAttachment[],
    ) {
      const { root: rootUrl, bookmark } = urls(request);
      const flavorId = flavorOfInstance(instance)?.id ?? instance.flavor.name;
      const admin = request.ctx.isAdmin;
      return {
        id: instance.id,
        name: instance.name,
        status: serverStatus(instance),
        tenant_id: instance.projectId,
        user_id: instance.userId,
        metadata: {},
        hostId: hostId(instance),
        image: {
          id: instance.imageRef,
          links: [{ href: `${bookmark}/images/${instance.imageRef}`, rel: 'bookmark' }],
        },
        flavor: { id: flavorId, links: [{ href: `${bookmark}/flavors/${flavorId}`, rel: 'bookmark' }] },
        created: novaTime(instance.createdAt),
        updated: novaTime(instance.updatedAt),
        addresses: {},
        accessIPv4: '',
        accessIPv6: '',
        key_name: null,
        config_drive: '',
        progress: 0,
        security_groups: [{ name: 'default' }],
        links: resourceLinks(rootUrl, bookmark, 'servers', instance.id),
        'OS-DCF:diskConfig': 'MANUAL',
        'OS-EXT-AZ:availability_zone': 'nova',
        'OS-EXT-STS:vm_state': instance.vmState,
        'OS-EXT-STS:task_state':
          instance.taskState === null ? null : (TASK_NAMES[instance.taskState] ?? instance.taskState),
        'OS-EXT-STS:power_state': POWER[instance.powerState],
        'OS-SRV-USG:launched_at': instance.launchedAt ? cinderTime(instance.launchedAt) : null,
        'OS-SRV-USG:terminated_at': instance.terminatedAt ? cinderTime(instance.terminatedAt) : null,
        'os-extended-volumes:volumes_attached': attachments.map((a) => ({ id: a.volumeId })),
        // Where an instance runs is for admins only, as with Nova's default policy.
        ...(admin
          ? {
              'OS-EXT-SRV-ATTR:host': instance.host,
              'OS-EXT-SRV-ATTR:hypervisor_hostname': instance.host,
              'OS-EXT-SRV-ATTR:instance_name': `instance-${instance.id}`,
            }
          : {}),
        ...(instance.vmState === 'error' && instance.errorReason
          ? { fault: { code: 500, message: instance.errorReason, created: novaTime(instance.updatedAt) } }
          : {}),
      };
    }

    /** The servers the caller may list (its project's; all for an admin with `all_tenants`), filtered. */
    async function listServers(request: FastifyRequest, query: ListQuery) {
      const ctx = request.ctx;
      const listed = listedProjects(ctx, query.all_tenants, query.project_id ?? query.tenant_id);
      const flavorName =
        query.flavor === undefined ? undefined : deps.config.flavors.find((f) => f.id === query.flavor)?.name;
      const items = (await allInstances(deps, ctx)).filter(
        (i) =>
          listed(i.projectId) &&
          (query.name === undefined || i.name.includes(query.name)) &&
          (query.status === undefined || serverStatus(i) === query.status.toUpperCase()) &&
          (query.host === undefined || (ctx.isAdmin && i.host === query.host)) &&
          (query.image === undefined || i.imageRef === refId(query.image)) &&
          (query.flavor === undefined || i.flavor.name === flavorName),
      );
      // Nova lists newest first.
      items.reverse();
      const limit = query.limit === undefined ? undefined : Math.min(query.limit, MAX_LIMIT);
      const result = paginate(items, limit, query.marker);
      if (!result.markerFound) {
        throw new InvalidInputError(`marker [${query.marker}] not found`, [
          { path: '/marker', message: 'is not a server of this listing; start without a marker' },
        ]);
      }
      return result;
    }

    const serversLinks = (
      request: FastifyRequest,
      path: string,
      query: ListQuery,
      next: string | undefined,
    ) => nextPageLinks('servers', `${urls(request).root}/${path}`, query.limit, next);
    app.get(
      '/',
      { config: { public: true }, schema: { response: { 200: Type.Object({ version: VersionBody }) } } },
      async (request) => ({
        version: {
          id: 'v2.1',
          status: 'CURRENT',
          version: COMPUTE_MAX_VERSION,
          min_version: COMPUTE_MIN_VERSION,
          updated: '2013-07-23T11:33:21Z',
          links: [
            { href: `${urls(request).root}/`, rel: 'self' },
            { href: 'http://docs.openstack.org/', rel: 'describedby', type: 'text/html' },
          ],
          'media-types': [
            { base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' },
          ],
        },
      }),
    );

    // --- flavors ---

    app.get(
      '/flavors',
      {
        schema: { querystring: ListQuery, response: { 200: Loose({ flavors: Type.Array(FlavorSummary) }) } },
      },
      async (request) => {
        const { root: rootUrl, bookmark } = urls(request);
        return {
          flavors: deps.config.flavors.map((f) => summaryView(f, rootUrl, bookmark, 'flavors')),
        };
      },
    );

    app.get(
      '/flavors/detail',
      { schema: { querystring: ListQuery, response: { 200: Loose({ flavors: Type.Array(FlavorBody) }) } } },
      async (request) => {
        const { root: rootUrl, bookmark } = urls(request);
        return { flavors: deps.config.flavors.map((f) => flavorView(f, rootUrl, bookmark)) };
      },
    );

    app.get(
      '/flavors/:flavor_id',
      {
        schema: {
          params: Type.Object({ flavor_id: Type.String({ minLength: 1, maxLength: 255 }) }),
          response: { 200: Type.Object({ flavor: FlavorBody }) },
        },
      },
      async (request) => {
        const flavor = deps.config.flavors.find((f) => f.id === request.params.flavor_id);
        if (!flavor) throw new NotFoundError('Flavor', request.params.flavor_id);
        const { root: rootUrl, bookmark } = urls(request);
        return { flavor: flavorView(flavor, rootUrl, bookmark) };
      },
    );

    app.get(
      '/flavors/:flavor_id/os-extra_specs',
      {
        schema: {
          params: Type.Object({ flavor_id: Type.String({ minLength: 1, maxLength: 255 }) }),
          response: { 200: Type.Object({ extra_specs: Type.Record(Type.String(), Type.String()) }) },
        },
      },
      async (request) => {
        if (!deps.config.flavors.some((f) => f.id === request.params.flavor_id)) {
          throw new NotFoundError('Flavor', request.params.flavor_id);
        }
        return { extra_specs: {} };
      },
    );

    // --- servers ---

    app.post(
      '/servers',
      {
        schema: {
          body: ServerCreate,
          response: {
            202: Type.Object({
              server: Loose({
                id: Type.String(),
                links: Type.Array(Link),
                'OS-DCF:diskConfig': Type.String(),
              }),
            }),
          },
        },
      },
      async (request, reply) => {
        const { flavor, image } = checkCreate(deps, request.body);
        await checkInstanceQuota(deps, request.ctx, flavor);
        const instance = await deps.compute.run(request.ctx, {
          name: request.body.server.name,
          flavor: flavor.name,
          imageRef: image.id,
        });
        const { root: rootUrl, bookmark } = urls(request);
        reply.code(202).header('Location', `${rootUrl}/servers/${instance.id}`);
        return {
          server: {
            id: instance.id,
            links: resourceLinks(rootUrl, bookmark, 'servers', instance.id),
            'OS-DCF:diskConfig': 'MANUAL',
            security_groups: [{ name: 'default' }],
          },
        };
      },
    );

    app.get(
      '/servers',
      {
        schema: { querystring: ListQuery, response: { 200: Loose({ servers: Type.Array(ServerSummary) }) } },
      },
      async (request) => {
        const { page, next } = await listServers(request, request.query);
        const { root: rootUrl, bookmark } = urls(request);
        return {
          servers: page.map((i) => summaryView(i, rootUrl, bookmark, 'servers')),
          ...serversLinks(request, 'servers', request.query, next),
        };
      },
    );

    app.get(
      '/servers/detail',
      { schema: { querystring: ListQuery, response: { 200: Loose({ servers: Type.Array(ServerBody) }) } } },
      async (request) => {
        const { page, next } = await listServers(request, request.query);
        const servers = [];
        for (const instance of page) {
          servers.push(
            serverView(instance, request, await deps.compute.listAttachments(request.ctx, instance.id)),
          );
        }
        return { servers, ...serversLinks(request, 'servers/detail', request.query, next) };
      },
    );

    app.get(
      '/servers/:server_id',
      { schema: { params: ServerParams, response: { 200: Type.Object({ server: ServerBody }) } } },
      async (request) => {
        const instance = await deps.compute.get(request.ctx, request.params.server_id);
        const attachments = await deps.compute.listAttachments(request.ctx, instance.id);
        return { server: serverView(instance, request, attachments) };
      },
    );

    app.delete('/servers/:server_id', { schema: { params: ServerParams } }, async (request, reply) => {
      await deps.compute.terminate(request.ctx, request.params.server_id);
      return reply.code(204).send();
    });

    app.post(
      '/servers/:server_id/action',
      { schema: { params: ServerParams, body: ServerAction } },
      async (request, reply) => {
        const action = soleAction(request.body);
        const args = request.body[action];
        const ctx = request.ctx;
        const id = request.params.server_id;
        switch (action) {
          case 'reboot': {
            const { type } = argsOf(RebootArgs, args, action);
            await deps.compute.reboot(ctx, id, type.toUpperCase() as 'SOFT' | 'HARD');
            break;
          }
          case 'os-stop':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.stop(ctx, id);
            break;
          case 'os-start':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.start(ctx, id);
            break;
          case 'pause':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.pause(ctx, id);
            break;
          case 'unpause':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.unpause(ctx, id);
            break;
          case 'suspend':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.suspend(ctx, id);
            break;
          case 'resume':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.resume(ctx, id);
            break;
          case 'unrescue':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.unrescue(ctx, id);
            break;
          case 'lock':
            argsOf(LockArgs, args, action);
            await deps.compute.lock(ctx, id);
            break;
          case 'unlock':
            argsOf(NullOrEmpty, args, action);
            await deps.compute.unlock(ctx, id);
            break;
          case 'rescue': {
            const rescue = argsOf(RescueArgs, args, action);
            const imageRef = rescue?.rescue_image_ref;
            if (imageRef !== undefined && !deps.config.images.some((i) => i.id === refId(imageRef))) {
              throw new InvalidInputError(`Image ${imageRef} could not be found.`, [
                { path: '/rescue/rescue_image_ref', message: 'is not a known image id' },
              ]);
            }
            const password = rescue?.adminPass;
            const result = await deps.compute.rescue(ctx, id, password === undefined ? {} : { password });
            return reply.code(200).send({ adminPass: result.password });
          }
          case 'os-getConsoleOutput': {
            const console = argsOf(ConsoleArgs, args, action);
            const output = await deps.compute.getConsoleOutput(ctx, id);
            const length =
              console?.length === undefined || console.length === null ? -1 : Number(console.length);
            const lines = output.split('\n');
            const tail = length < 0 ? output : lines.slice(Math.max(0, lines.length - length)).join('\n');
            return reply.code(200).send({ output: tail });
          }
          default:
            // Validate the server first, so another project's server is still a 404.
            await deps.compute.get(ctx, id);
            throw new InvalidInputError(`There is no such action: ${action}`, [
              { path: `/${action}`, message: 'is not a server action Stratus supports' },
            ]);
        }
        return reply.code(202).send();
      },
    );

    // --- volume attachments ---

    const attachmentView = (a: VolumeAttachment) => ({
      id: a.volumeId,
      serverId: a.instanceId,
      volumeId: a.volumeId,
      device: a.mountpoint,
    });

    app.get(
      '/servers/:server_id/os-volume_attachments',
      {
        schema: {
          params: ServerParams,
          querystring: ListQuery,
          response: { 200: Type.Object({ volumeAttachments: Type.Array(AttachmentBody) }) },
        },
      },
      async (request) => {
        const attachments = await deps.compute.listAttachments(request.ctx, request.params.server_id);
        const { page } = paginate(
          attachments.map((a) => ({ ...a, id: a.volumeId })),
          request.query.limit,
          request.query.marker,
        );
        return { volumeAttachments: page.map(attachmentView) };
      },
    );

    app.post(
      '/servers/:server_id/os-volume_attachments',
      {
        schema: {
          params: ServerParams,
          body: AttachBody,
          response: { 200: Type.Object({ volumeAttachment: AttachmentBody }) },
        },
      },
      async (request) => {
        const { volumeId, device } = request.body.volumeAttachment;
        const serverId = request.params.server_id;
        let mountpoint = device ?? undefined;
        if (mountpoint === undefined) {
          const used = new Set(
            (await deps.compute.listAttachments(request.ctx, serverId)).map((a) => a.mountpoint),
          );
          mountpoint = nextDevice(used);
        }
        const attachment = await deps.compute.attachVolume(request.ctx, serverId, { volumeId, mountpoint });
        return { volumeAttachment: attachmentView(attachment) };
      },
    );

    app.get(
      '/servers/:server_id/os-volume_attachments/:volume_id',
      {
        schema: {
          params: AttachmentParams,
          response: { 200: Type.Object({ volumeAttachment: AttachmentBody }) },
        },
      },
      async (request) => {
        const attachments = await deps.compute.listAttachments(request.ctx, request.params.server_id);
        const found = attachments.find((a) => a.volumeId === request.params.volume_id);
        if (!found) throw new NotFoundError('Volume attachment', request.params.volume_id);
        return { volumeAttachment: attachmentView(found) };
      },
    );

    app.delete(
      '/servers/:server_id/os-volume_attachments/:volume_id',
      { schema: { params: AttachmentParams } },
      async (request, reply) => {
        const { server_id: serverId, volume_id: volumeId } = request.params;
        const attachments = await deps.compute.listAttachments(request.ctx, serverId);
        if (!attachments.some((a) => a.volumeId === volumeId)) {
          throw new NotFoundError('Volume attachment', volumeId);
        }
        await deps.compute.detachVolume(request.ctx, serverId, volumeId);
        return reply.code(202).send();
      },
    );

    // --- services, limits ---

    app.get(
      '/os-services',
      {
        schema: {
          querystring: Type.Object(
            { host: Type.Optional(Type.String()), binary: Type.Optional(Type.String()) },
            { additionalProperties: true },
          ),
          response: {
            200: Type.Object({
              services: Type.Array(Loose({ id: Type.Integer(), binary: Type.String(), host: Type.String() })),
            }),
          },
        },
      },
      async (request) =>
        servicesOfTopic(
          deps,
          request.ctx,
          deps.config.computeTopic,
          request.query,
          'os_compute_api:os-services:list',
        ),
    );

    app.get(
      '/limits',
      {
        schema: {
          response: {
            200: Type.Object({
              limits: Type.Object({
                rate: Type.Array(Type.Unknown()),
                absolute: Type.Record(Type.String(), Type.Integer()),
              }),
            }),
          },
        },
      },
      async (request) => {
        const projectId = request.ctx.projectId;
        const used =
          projectId === null ? [] : await allInstances(deps, projectScopedContext(request.ctx, projectId));
        const { quotas } = deps.config;
        return {
          limits: {
            rate: [],
            absolute: {
              maxTotalInstances: quotas.instances,
              maxTotalCores: quotas.cores,
              maxTotalRAMSize: quotas.ram,
              maxServerMeta: 128,
              maxImageMeta: 128,
              maxPersonality: 5,
              maxPersonalitySize: 10240,
              maxTotalKeypairs: 0,
              maxServerGroups: 0,
              maxServerGroupMembers: 0,
              maxSecurityGroups: 0,
              maxSecurityGroupRules: 0,
              maxTotalFloatingIps: 0,
              totalInstancesUsed: used.length,
              totalCoresUsed: used.reduce((sum, i) => sum + i.flavor.vcpus, 0),
              totalRAMUsed: used.reduce((sum, i) => sum + i.flavor.memoryMiB, 0),
              totalServerGroupsUsed: 0,
              totalSecurityGroupsUsed: 0,
              totalFloatingIpsUsed: 0,
            },
          },
        };
      },
    );
  };
}

function argsOf<T extends TSchema>(schema: T, value: unknown, action: string): Static<T> {
  const issues = schemaIssues(schema, value);
  if (issues.length) {
    throw new InvalidInputError(
      `Invalid input for ${action}`,
      issues.map((i) => ({ path: `/${action}${i.path}`, message: i.message })),
    );
  }
  return value as Static<T>;
}

/** The first free `/dev/vdX` (vda is the root disk). */
export function nextDevice(used: ReadonlySet<string>): string {
  for (let c = 'b'.charCodeAt(0); c <= 'z'.charCodeAt(0); c++) {
    const device = `/dev/vd${String.fromCharCode(c)}`;
    if (!used.has(device)) return device;
  }
  throw new InvalidInputError('No free device name', [
    { path: '/volumeAttachment/device', message: 'every /dev/vdb../dev/vdz is taken; name a device' },
  ]);
}

/** Every instance `ctx` sees, through all the pages of the listing. */
function allInstances(deps: ApiDeps, ctx: RequestContext): Promise<Instance[]> {
  return fetchAllPages((page) => deps.compute.list(ctx, page), MAX_LIMIT);
}

/** Resolve `flavorRef` and `imageRef` and refuse what Stratus cannot honour, as Nova answers: 400. */
function checkCreate(deps: ApiDeps, body: ServerCreate): { flavor: FlavorEntry; image: ImageEntry } {
  const server = body.server;
  const refuse = (field: string, message: string) =>
    new InvalidInputError('Unsupported server option', [{ path: `/server/${field}`, message }]);
  const count = (v: number | string | undefined) => (v === undefined ? 1 : Number(v));
  if (count(server.min_count) > 1 || count(server.max_count) > 1) {
    throw refuse('max_count', 'Stratus creates one server per request; send one request per server');
  }
  if (server.key_name !== undefined && server.key_name !== null) {
    throw refuse('key_name', 'Stratus has no keypairs; leave key_name out');
  }
  for (const field of ['block_device_mapping', 'block_device_mapping_v2', 'personality'] as const) {
    if ((server[field]?.length ?? 0) > 0) throw refuse(field, 'is not supported by Stratus; leave it out');
  }
  if (server.metadata && Object.keys(server.metadata).length > 0) {
    throw refuse('metadata', 'server metadata is not stored by Stratus; leave it out');
  }
  if (server.availability_zone !== undefined && server.availability_zone !== 'nova') {
    throw refuse(
      'availability_zone',
      `availability zone ${server.availability_zone} does not exist; use nova`,
    );
  }
  const flavorId = refId(server.flavorRef);
  const flavor = deps.config.flavors.find((f) => f.id === flavorId);
  if (!flavor) {
    throw new InvalidInputError(`Flavor ${flavorId} could not be found.`, [
      {
        path: '/server/flavorRef',
        message: `is not a flavor id (known: ${deps.config.flavors.map((f) => `${f.id} ${f.name}`).join(', ')})`,
      },
    ]);
  }
  const imageId = refId(server.imageRef);
  const image = deps.config.images.find((i) => i.id === imageId);
  if (!image) {
    throw new InvalidInputError(`Image ${imageId} could not be found.`, [
      { path: '/server/imageRef', message: 'is not an image id; list them with GET /image/v2/images' },
    ]);
  }
  return { flavor, image };
}

/**
 * Instances, cores and RAM of the caller's project against the configured quotas. A check before
 * the insert (two concurrent requests can both pass it); ComputeApi has no quota of its own yet.
 */
async function checkInstanceQuota(deps: ApiDeps, ctx: RequestContext, flavor: FlavorEntry): Promise<void> {
  if (ctx.projectId === null) return;
  const used = await allInstances(deps, projectScopedContext(ctx, ctx.projectId));
  const { quotas } = deps.config;
  const checks: [string, number, number, number][] = [
    ['instances', used.length, 1, quotas.instances],
    ['cores', used.reduce((s, i) => s + i.flavor.vcpus, 0), flavor.vcpus, quotas.cores],
    ['ram', used.reduce((s, i) => s + i.flavor.memoryMiB, 0), flavor.ramMiB, quotas.ram],
  ];
  for (const [resource, inUse, requested, limit] of checks) {
    if (inUse + requested > limit) {
      throw new QuotaExceededError(
        `Quota exceeded for ${resource}: Requested ${requested}, but already used ${inUse} of ${limit} ${resource}. Delete servers or ask an administrator to raise the quota.`,
        { details: { projectId: ctx.projectId, resource, limit, inUse, requested } },
      );
    }
  }
}

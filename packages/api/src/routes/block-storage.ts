import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import {
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  type RequestContext,
  schemaIssues,
} from '@stratus/core';
import type { Snapshot, Volume } from '@stratus/manager-volume/client';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { authenticate } from '../auth.js';
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
  paginate,
  projectScopedContext,
  resourceLinks,
  servicesOfTopic,
  soleAction,
  summaryView,
  truthy,
  VersionBody,
} from './common.js';

/** The Block Storage microversion range served: 3.0 only (the base v3 API). */
export const VOLUME_MIN_VERSION = '3.0';
export const VOLUME_MAX_VERSION = '3.0';
/** Cinder's default volume type name. */
const DEFAULT_TYPE = '__DEFAULT__';
/** Cinder's `osapi_max_limit`: the largest page. */
const MAX_LIMIT = 1000;

const Str255 = Type.String({ maxLength: 255 });
const OptionalNullable = <T extends Parameters<typeof Nullable>[0]>(schema: T) =>
  Type.Optional(Nullable(schema));

const VolumeCreate = Type.Object(
  {
    volume: Type.Object(
      {
        size: OptionalNullable(
          Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]),
        ),
        name: OptionalNullable(Str255),
        description: OptionalNullable(Str255),
        display_name: OptionalNullable(Str255),
        display_description: OptionalNullable(Str255),
        snapshot_id: OptionalNullable(Type.String({ minLength: 1, maxLength: 36 })),
        source_volid: OptionalNullable(Type.String()),
        imageRef: OptionalNullable(Type.String()),
        backup_id: OptionalNullable(Type.String()),
        volume_type: OptionalNullable(Type.String()),
        availability_zone: OptionalNullable(Type.String()),
        consistencygroup_id: OptionalNullable(Type.String()),
        group_id: OptionalNullable(Type.String()),
        metadata: OptionalNullable(Type.Record(Type.String(), Type.String())),
        multiattach: OptionalNullable(Type.Boolean()),
      },
      { additionalProperties: true },
    ),
    'OS-SCH-HNT:scheduler_hints': OptionalNullable(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

const VolumeUpdate = Type.Object(
  {
    volume: Type.Object(
      {
        name: OptionalNullable(Str255),
        description: OptionalNullable(Str255),
        display_name: OptionalNullable(Str255),
        display_description: OptionalNullable(Str255),
        metadata: OptionalNullable(Type.Record(Type.String(), Type.String())),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const ForceFlag = Type.Union([Type.Boolean(), Type.String({ maxLength: 10 })]);

const SnapshotCreate = Type.Object(
  {
    snapshot: Type.Object(
      {
        volume_id: Type.String({ minLength: 1, maxLength: 36 }),
        name: OptionalNullable(Str255),
        description: OptionalNullable(Str255),
        display_name: OptionalNullable(Str255),
        display_description: OptionalNullable(Str255),
        force: OptionalNullable(ForceFlag),
        metadata: OptionalNullable(Type.Record(Type.String(), Type.String())),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const VolumeAction = Type.Record(Type.String(), Type.Unknown(), { minProperties: 1 });
const ExtendArgs = Type.Object(
  { new_size: Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[0-9]+$' })]) },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 0 })),
    marker: Type.Optional(Type.String({ minLength: 1 })),
    all_tenants: Type.Optional(Type.String()),
    project_id: Type.Optional(Type.String()),
    name: Type.Optional(Type.String()),
    status: Type.Optional(Type.String()),
    volume_id: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);
type ListQuery = Static<typeof ListQuery>;

const ProjectParams = Type.Object({ project_id: Type.String({ minLength: 1, maxLength: 64 }) });
const VolumeParams = Type.Object({
  project_id: Type.String({ minLength: 1, maxLength: 64 }),
  volume_id: Type.String({ minLength: 1, maxLength: 255 }),
});
const SnapshotParams = Type.Object({
  project_id: Type.String({ minLength: 1, maxLength: 64 }),
  snapshot_id: Type.String({ minLength: 1, maxLength: 255 }),
});
const QuotaParams = Type.Object({
  project_id: Type.String({ minLength: 1, maxLength: 64 }),
  target_id: Type.String({ minLength: 1, maxLength: 64 }),
});

const Attachment = Loose({
  id: Type.String(),
  attachment_id: Type.String(),
  volume_id: Type.String(),
  server_id: Type.String(),
  device: Nullable(Type.String()),
});

export const VolumeBody = Loose({
  id: Type.String(),
  name: Nullable(Type.String()),
  description: Nullable(Type.String()),
  size: Type.Integer(),
  status: Type.String(),
  availability_zone: Type.String(),
  bootable: Type.String(),
  encrypted: Type.Boolean(),
  multiattach: Type.Boolean(),
  attachments: Type.Array(Attachment),
  metadata: Type.Record(Type.String(), Type.String()),
  created_at: Type.String(),
  updated_at: Nullable(Type.String()),
  user_id: Nullable(Type.String()),
  volume_type: Nullable(Type.String()),
  snapshot_id: Nullable(Type.String()),
  source_volid: Nullable(Type.String()),
  links: Type.Array(Link),
});

const VolumeSummary = Type.Object({
  id: Type.String(),
  name: Nullable(Type.String()),
  links: Type.Array(Link),
});

export const SnapshotBody = Loose({
  id: Type.String(),
  name: Nullable(Type.String()),
  description: Nullable(Type.String()),
  volume_id: Type.String(),
  size: Type.Integer(),
  status: Type.String(),
  created_at: Type.String(),
  updated_at: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.String()),
});

const ServiceBody = Loose({
  binary: Type.String(),
  host: Type.String(),
  zone: Type.String(),
  status: Type.Union([Type.Literal('enabled'), Type.Literal('disabled')]),
  state: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  updated_at: Nullable(Type.String()),
  disabled_reason: Nullable(Type.String()),
});

const QuotaValue = Type.Union([
  Type.Integer(),
  Type.Object({
    limit: Type.Integer(),
    in_use: Type.Integer(),
    reserved: Type.Integer(),
    allocated: Type.Integer(),
  }),
]);
const QuotaSet = Type.Object({
  quota_set: Type.Record(Type.String(), Type.Union([Type.String(), QuotaValue])),
});

const Absolute = Type.Record(Type.String(), Type.Integer());
const LimitsBody = Type.Object({
  limits: Type.Object({ rate: Type.Array(Type.Unknown()), absolute: Absolute }),
});

/** Cinder's version document for `/v3/` and the root. */
function volumeVersion(base: string) {
  return {
    id: 'v3.0',
    status: 'CURRENT',
    version: VOLUME_MAX_VERSION,
    min_version: VOLUME_MIN_VERSION,
    updated: '2016-02-08T12:20:21Z',
    links: [
      { href: 'https://docs.openstack.org/', type: 'text/html', rel: 'describedby' },
      { href: `${base}/volume/v3/`, rel: 'self' },
    ],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  };
}

/** A volume in Cinder's v3 view (`volume-show-response.json`). */
export function volumeView(volume: Volume, root: string, bookmarkRoot: string, ctx: RequestContext) {
  const attached = volume.instanceId !== null && ['in-use', 'detaching'].includes(volume.status);
  return {
    id: volume.id,
    name: volume.name,
    description: volume.description,
    size: volume.sizeGiB,
    status: volume.status,
    availability_zone: 'nova',
    bootable: 'false',
    encrypted: false,
    multiattach: false,
    attachments: attached
      ? [
          {
            id: volume.id,
            attachment_id: volume.id,
            volume_id: volume.id,
            server_id: volume.instanceId as string,
            host_name: null,
            device: volume.mountpoint,
            attached_at: cinderTime(volume.updatedAt),
          },
        ]
      : [],
    metadata: {},
    created_at: cinderTime(volume.createdAt),
    updated_at: cinderTime(volume.updatedAt),
    user_id: volume.userId,
    volume_type: DEFAULT_TYPE,
    snapshot_id: volume.sourceSnapshotId,
    source_volid: null,
    consistencygroup_id: null,
    replication_status: null,
    migration_status: null,
    'os-vol-tenant-attr:tenant_id': volume.projectId,
    'os-vol-mig-status-attr:migstat': null,
    'os-vol-mig-status-attr:name_id': null,
    // Only admins see where a volume lives, as with Cinder's default policy.
    ...(ctx.isAdmin ? { 'os-vol-host-attr:host': volume.host } : {}),
    links: resourceLinks(root, bookmarkRoot, 'volumes', volume.id),
  };
}

/** A snapshot in Cinder's v3 view. */
export function snapshotView(snapshot: Snapshot) {
  return {
    id: snapshot.id,
    name: snapshot.name,
    description: snapshot.description,
    volume_id: snapshot.volumeId,
    size: snapshot.volumeSizeGiB,
    status: snapshot.status,
    created_at: cinderTime(snapshot.createdAt),
    updated_at: cinderTime(snapshot.updatedAt),
    metadata: {},
    'os-extended-snapshot-attributes:progress': snapshot.status === 'available' ? '100%' : '0%',
    'os-extended-snapshot-attributes:project_id': snapshot.projectId,
  };
}

function pick(primary: string | null | undefined, legacy: string | null | undefined): string | undefined {
  const value = primary ?? legacy;
  return value === null || value === undefined ? undefined : value;
}

function unsupported(field: string, why: string): InvalidInputError {
  return new InvalidInputError('Unsupported volume option', [{ path: field, message: why }]);
}

function parseForce(value: boolean | string | null | undefined): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  const text = value.toLowerCase();
  if (['true', 't', '1', 'yes', 'y', 'on'].includes(text)) return true;
  if (['false', 'f', '0', 'no', 'n', 'off'].includes(text)) return false;
  throw new InvalidInputError('Invalid snapshot', [
    { path: '/snapshot/force', message: `${JSON.stringify(value)} is not a boolean (use true or false)` },
  ]);
}

/**
 * Block Storage v3 under `{prefix}/v3/{project_id}`: volumes, snapshots, `os-services`,
 * `limits`, `os-quota-sets`, and the version documents at `{prefix}/` and `{prefix}/v3/`.
 * With `bare`, only the project routes (mounted at `/v3/{project_id}`, Cinder's own paths).
 */
export function blockStorageRoutes(deps: ApiDeps, options: { bare?: boolean } = {}): FastifyPluginAsync {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.setErrorHandler((error, request, reply) => sendFault(request, reply, error, 'volume'));
    app.addHook('onSend', async (_request, reply) => {
      reply.header('OpenStack-API-Version', `volume ${VOLUME_MAX_VERSION}`);
      reply.header('Vary', 'OpenStack-API-Version');
    });
    app.addHook('preHandler', async (request) => {
      if (request.routeOptions.config.public) return;
      await authenticate(deps, request);
      const { project_id: urlProject } = request.params as { project_id?: string };
      // Cinder refuses a URL naming another project than the token's.
      if (urlProject !== undefined && urlProject !== request.ctx.projectId) {
        throw new InvalidInputError('Malformed request url', [
          {
            path: '/project_id',
            message: `the URL names project ${urlProject} but the token is scoped to ${request.ctx.projectId ?? 'no project'}; use the catalog URL of your token`,
          },
        ]);
      }
    });

    if (!options.bare) {
      const versions = Type.Object({ versions: Type.Array(VersionBody) });
      app.get(
        '/',
        { config: { public: true }, schema: { response: { 300: versions } } },
        async (request, reply) => {
          reply.code(300);
          return { versions: [volumeVersion(baseUrl(deps.config, request))] };
        },
      );
      for (const path of ['/v3', '/v3/']) {
        app.get(
          path,
          { config: { public: true }, schema: { response: { 200: versions } } },
          async (request) => ({
            versions: [volumeVersion(baseUrl(deps.config, request))],
          }),
        );
      }
    }

    const roots = (request: FastifyRequest, projectId: string) => {
      const base = baseUrl(deps.config, request);
      return { root: `${base}/volume/v3/${projectId}`, bookmark: `${base}/volume/${projectId}` };
    };

    function listAllVolumes(ctx: RequestContext): Promise<Volume[]> {
      return fetchAllPages((page) => deps.volumes.list(ctx, page), MAX_LIMIT);
    }

    /** Every volume the caller may list: its project's; with `all_tenants`, an admin's sees all. */
    async function listVolumes(request: FastifyRequest, query: ListQuery): Promise<Volume[]> {
      const listed = listedProjects(request.ctx, query.all_tenants, query.project_id);
      return (await listAllVolumes(request.ctx)).filter(
        (v) =>
          listed(v.projectId) &&
          (query.name === undefined || v.name === query.name) &&
          (query.status === undefined || v.status === query.status),
      );
    }

    function page<T extends { id: string }>(items: T[], query: ListQuery) {
      const limit = query.limit === undefined ? undefined : Math.min(query.limit, MAX_LIMIT);
      const result = paginate(items, limit, query.marker);
      if (!result.markerFound) throw new NotFoundError('Marker', query.marker as string);
      return result;
    }

    const volumesLinks = (rootUrl: string, collection: string, query: ListQuery, next: string | undefined) =>
      nextPageLinks(collection, `${rootUrl}/${collection}`, query.limit, next);

    app.get(
      '/v3/:project_id/volumes',
      {
        schema: {
          params: ProjectParams,
          querystring: ListQuery,
          response: { 200: Loose({ volumes: Type.Array(VolumeSummary) }) },
        },
      },
      async (request) => {
        const { root: rootUrl, bookmark } = roots(request, request.params.project_id);
        const { page: items, next } = page(await listVolumes(request, request.query), request.query);
        return {
          volumes: items.map((v) => summaryView(v, rootUrl, bookmark, 'volumes')),
          ...volumesLinks(rootUrl, 'volumes', request.query, next),
        };
      },
    );

    app.get(
      '/v3/:project_id/volumes/detail',
      {
        schema: {
          params: ProjectParams,
          querystring: ListQuery,
          response: { 200: Loose({ volumes: Type.Array(VolumeBody) }) },
        },
      },
      async (request) => {
        const { root: rootUrl, bookmark } = roots(request, request.params.project_id);
        const { page: items, next } = page(await listVolumes(request, request.query), request.query);
        return {
          volumes: items.map((v) => volumeView(v, rootUrl, bookmark, request.ctx)),
          ...volumesLinks(rootUrl, 'volumes', request.query, next),
        };
      },
    );

    app.post(
      '/v3/:project_id/volumes',
      {
        schema: {
          params: ProjectParams,
          body: VolumeCreate,
          response: { 202: Type.Object({ volume: VolumeBody }) },
        },
      },
      async (request, reply) => {
        const body = request.body.volume;
        for (const field of [
          'source_volid',
          'imageRef',
          'backup_id',
          'consistencygroup_id',
          'group_id',
        ] as const) {
          if (body[field] !== undefined && body[field] !== null) {
            throw unsupported(`/volume/${field}`, 'is not supported by Stratus; leave it out');
          }
        }
        if (body.volume_type != null && body.volume_type !== DEFAULT_TYPE) {
          throw unsupported('/volume/volume_type', `Stratus has a single volume type, ${DEFAULT_TYPE}`);
        }
        if (body.availability_zone != null && body.availability_zone !== 'nova') {
          throw unsupported(
            '/volume/availability_zone',
            `Availability zone '${body.availability_zone}' is invalid; use nova`,
          );
        }
        if (body.multiattach === true)
          throw unsupported('/volume/multiattach', 'multi-attach volumes are not supported');
        if (body.metadata && Object.keys(body.metadata).length > 0) {
          throw unsupported('/volume/metadata', 'volume metadata is not stored by Stratus; leave it out');
        }
        let size = body.size === undefined || body.size === null ? undefined : Number(body.size);
        const snapshotId = body.snapshot_id ?? undefined;
        if (size === undefined && snapshotId !== undefined) {
          size = (await deps.volumes.getSnapshot(request.ctx, snapshotId)).volumeSizeGiB;
        }
        if (size === undefined) {
          throw new InvalidInputError('Invalid volume', [
            { path: '/volume/size', message: 'is required (GiB, 1 or more)' },
          ]);
        }
        const name = pick(body.name, body.display_name);
        const description = pick(body.description, body.display_description);
        const volume = await deps.volumes.create(request.ctx, {
          size,
          ...(name !== undefined ? { name } : {}),
          ...(description !== undefined ? { description } : {}),
          ...(snapshotId !== undefined ? { snapshotId } : {}),
        });
        const { root: rootUrl, bookmark } = roots(request, request.params.project_id);
        reply.code(202);
        return { volume: volumeView(volume, rootUrl, bookmark, request.ctx) };
      },
    );

    app.get(
      '/v3/:project_id/volumes/:volume_id',
      { schema: { params: VolumeParams, response: { 200: Type.Object({ volume: VolumeBody }) } } },
      async (request) => {
        const volume = await deps.volumes.get(request.ctx, request.params.volume_id);
        const { root: rootUrl, bookmark } = roots(request, request.params.project_id);
        return { volume: volumeView(volume, rootUrl, bookmark, request.ctx) };
      },
    );

    app.put(
      '/v3/:project_id/volumes/:volume_id',
      {
        schema: {
          params: VolumeParams,
          body: VolumeUpdate,
          response: { 200: Type.Object({ volume: VolumeBody }) },
        },
      },
      async (request) => {
        const body = request.body.volume;
        if (body.metadata && Object.keys(body.metadata).length > 0) {
          throw unsupported('/volume/metadata', 'volume metadata is not stored by Stratus; leave it out');
        }
        const changes: { name?: string | null; description?: string | null } = {};
        if (body.name !== undefined || body.display_name !== undefined)
          changes.name = body.name ?? body.display_name ?? null;
        if (body.description !== undefined || body.display_description !== undefined) {
          changes.description = body.description ?? body.display_description ?? null;
        }
        const volume =
          Object.keys(changes).length === 0
            ? await deps.volumes.get(request.ctx, request.params.volume_id)
            : await deps.volumes.update(request.ctx, request.params.volume_id, changes);
        const { root: rootUrl, bookmark } = roots(request, request.params.project_id);
        return { volume: volumeView(volume, rootUrl, bookmark, request.ctx) };
      },
    );

    app.delete(
      '/v3/:project_id/volumes/:volume_id',
      { schema: { params: VolumeParams } },
      async (request, reply) => {
        await deps.volumes.delete(request.ctx, request.params.volume_id);
        return reply.code(202).send();
      },
    );

    app.post(
      '/v3/:project_id/volumes/:volume_id/action',
      { schema: { params: VolumeParams, body: VolumeAction } },
      async (request, reply) => {
        const action = soleAction(request.body);
        if (action !== 'os-extend') {
          throw new InvalidInputError(`There is no such action: ${action}`, [
            { path: `/${action}`, message: 'Stratus supports os-extend on volumes' },
          ]);
        }
        const args = request.body[action];
        const issues = schemaIssues(ExtendArgs, args);
        if (issues.length) {
          throw new InvalidInputError(
            'Invalid os-extend',
            issues.map((i) => ({ path: `/os-extend${i.path}`, message: i.message })),
          );
        }
        await deps.volumes.extend(
          request.ctx,
          request.params.volume_id,
          Number((args as { new_size: number | string }).new_size),
        );
        return reply.code(202).send();
      },
    );

    // --- snapshots ---

    function listAllSnapshots(ctx: RequestContext): Promise<Snapshot[]> {
      return fetchAllPages((page) => deps.volumes.listSnapshots(ctx, page), MAX_LIMIT);
    }

    async function listSnapshots(request: FastifyRequest, query: ListQuery): Promise<Snapshot[]> {
      const all = await listAllSnapshots(request.ctx);
      const listed = listedProjects(request.ctx, query.all_tenants, query.project_id);
      return all.filter(
        (s) =>
          listed(s.projectId) &&
          (query.name === undefined || s.name === query.name) &&
          (query.status === undefined || s.status === query.status) &&
          (query.volume_id === undefined || s.volumeId === query.volume_id),
      );
    }

    for (const path of ['/v3/:project_id/snapshots', '/v3/:project_id/snapshots/detail']) {
      app.get(
        path,
        {
          schema: {
            params: ProjectParams,
            querystring: ListQuery,
            response: { 200: Loose({ snapshots: Type.Array(SnapshotBody) }) },
          },
        },
        async (request) => {
          const { root: rootUrl } = roots(request, request.params.project_id);
          const { page: items, next } = page(await listSnapshots(request, request.query), request.query);
          return {
            snapshots: items.map(snapshotView),
            ...volumesLinks(rootUrl, 'snapshots', request.query, next),
          };
        },
      );
    }

    app.post(
      '/v3/:project_id/snapshots',
      {
        schema: {
          params: ProjectParams,
          body: SnapshotCreate,
          response: { 202: Type.Object({ snapshot: SnapshotBody }) },
        },
      },
      async (request, reply) => {
        const body = request.body.snapshot;
        if (body.metadata && Object.keys(body.metadata).length > 0) {
          throw new InvalidInputError('Unsupported snapshot option', [
            {
              path: '/snapshot/metadata',
              message: 'snapshot metadata is not stored by Stratus; leave it out',
            },
          ]);
        }
        const name = pick(body.name, body.display_name);
        const description = pick(body.description, body.display_description);
        const snapshot = await deps.volumes.createSnapshot(request.ctx, body.volume_id, {
          ...(name !== undefined ? { name } : {}),
          ...(description !== undefined ? { description } : {}),
          force: parseForce(body.force),
        });
        reply.code(202);
        return { snapshot: snapshotView(snapshot) };
      },
    );

    app.get(
      '/v3/:project_id/snapshots/:snapshot_id',
      { schema: { params: SnapshotParams, response: { 200: Type.Object({ snapshot: SnapshotBody }) } } },
      async (request) => ({
        snapshot: snapshotView(await deps.volumes.getSnapshot(request.ctx, request.params.snapshot_id)),
      }),
    );

    app.delete(
      '/v3/:project_id/snapshots/:snapshot_id',
      { schema: { params: SnapshotParams } },
      async (request, reply) => {
        await deps.volumes.deleteSnapshot(request.ctx, request.params.snapshot_id);
        return reply.code(202).send();
      },
    );

    // --- services, limits, quotas ---

    app.get(
      '/v3/:project_id/os-services',
      {
        schema: {
          params: ProjectParams,
          querystring: Type.Object(
            { host: Type.Optional(Type.String()), binary: Type.Optional(Type.String()) },
            { additionalProperties: true },
          ),
          response: { 200: Type.Object({ services: Type.Array(ServiceBody) }) },
        },
      },
      async (request) =>
        servicesOfTopic(
          deps,
          request.ctx,
          deps.config.volumeTopic,
          request.query,
          'volume_extension:services:index',
        ),
    );

    async function usage(ctx: RequestContext, projectId: string) {
      const scoped = projectScopedContext(ctx, projectId);
      const volumes = await listAllVolumes(scoped);
      const snapshots = await listAllSnapshots(scoped);
      return {
        volumes: volumes.length,
        gigabytes: volumes.reduce((sum, v) => sum + v.sizeGiB, 0),
        snapshots: snapshots.length,
      };
    }

    app.get(
      '/v3/:project_id/limits',
      { schema: { params: ProjectParams, response: { 200: LimitsBody } } },
      async (request) => {
        const used = await usage(request.ctx, request.params.project_id);
        const { quotas } = deps.config;
        return {
          limits: {
            rate: [],
            absolute: {
              maxTotalVolumes: quotas.volumes,
              maxTotalSnapshots: quotas.snapshots,
              maxTotalVolumeGigabytes: quotas.gigabytes,
              maxTotalBackups: 0,
              maxTotalBackupGigabytes: 0,
              totalVolumesUsed: used.volumes,
              totalGigabytesUsed: used.gigabytes,
              totalSnapshotsUsed: used.snapshots,
              totalBackupsUsed: 0,
              totalBackupGigabytesUsed: 0,
            },
          },
        };
      },
    );

    const quotaLimits = () => ({
      volumes: deps.config.quotas.volumes,
      gigabytes: deps.config.quotas.gigabytes,
      snapshots: deps.config.quotas.snapshots,
      backups: 0,
      backup_gigabytes: 0,
      groups: 0,
      per_volume_gigabytes: deps.config.maxVolumeSizeGiB,
    });

    app.get(
      '/v3/:project_id/os-quota-sets/:target_id',
      {
        schema: {
          params: QuotaParams,
          querystring: Type.Object({ usage: Type.Optional(Type.String()) }, { additionalProperties: true }),
          response: { 200: QuotaSet },
        },
      },
      async (request) => {
        const target = request.params.target_id;
        if (!request.ctx.isAdmin && target !== request.ctx.projectId) {
          throw new ForbiddenError(
            `Policy doesn't allow showing the quotas of project ${target}; ask for your own project's.`,
          );
        }
        const limits = quotaLimits();
        if (!truthy(request.query.usage ?? 'false')) return { quota_set: { id: target, ...limits } };
        const used = await usage(request.ctx, target);
        const withUsage = Object.fromEntries(
          Object.entries(limits).map(([key, limit]) => [
            key,
            { limit, in_use: (used as Record<string, number>)[key] ?? 0, reserved: 0, allocated: 0 },
          ]),
        );
        return { quota_set: { id: target, ...withUsage } };
      },
    );

    app.get(
      '/v3/:project_id/os-quota-sets/:target_id/defaults',
      { schema: { params: QuotaParams, response: { 200: QuotaSet } } },
      async (request) => ({ quota_set: { id: request.params.target_id, ...quotaLimits() } }),
    );
  };
}

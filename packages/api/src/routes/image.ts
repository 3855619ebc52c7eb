import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { NotFoundError } from '@stratus/core';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import { authenticate } from '../auth.js';
import type { ImageEntry } from '../config.js';
import { type ApiDeps, baseUrl } from '../deps.js';
import { sendFault } from '../faults.js';
import { Link, Loose, Nullable, paginate } from './common.js';

export const ImageBody = Loose({
  id: Type.String(),
  name: Type.String(),
  status: Type.Literal('active'),
  visibility: Type.String(),
  size: Type.Integer(),
  disk_format: Type.String(),
  container_format: Type.String(),
  min_disk: Type.Integer(),
  min_ram: Type.Integer(),
  checksum: Nullable(Type.String()),
  protected: Type.Boolean(),
  tags: Type.Array(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
  self: Type.String(),
  file: Type.String(),
  schema: Type.String(),
});

const ListQuery = Type.Object(
  {
    name: Type.Optional(Type.String()),
    id: Type.Optional(Type.String()),
    status: Type.Optional(Type.String()),
    visibility: Type.Optional(Type.String()),
    limit: Type.Optional(Type.Integer({ minimum: 0 })),
    marker: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: true },
);

const Versions = Type.Object({
  versions: Type.Array(Loose({ id: Type.String(), status: Type.String(), links: Type.Array(Link) })),
});

/** An image in Glance's v2 view. */
export function imageView(image: ImageEntry) {
  return {
    id: image.id,
    name: image.name,
    status: 'active' as const,
    visibility: 'public',
    protected: false,
    os_hidden: false,
    size: image.sizeBytes,
    virtual_size: null,
    disk_format: image.diskFormat,
    container_format: image.containerFormat,
    min_disk: image.minDiskGiB,
    min_ram: image.minRamMiB,
    checksum: image.checksum ?? null,
    os_hash_algo: null,
    os_hash_value: null,
    owner: null,
    tags: [],
    created_at: image.createdAt,
    updated_at: image.createdAt,
    self: `/v2/images/${image.id}`,
    file: `/v2/images/${image.id}/file`,
    schema: '/v2/schemas/image',
  };
}

/**
 * Image v2 under `/image`: the images listed in config (read-only), enough for clients to resolve
 * `--image NAME`. Errors are plain text, as Glance's.
 */
export function imageRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.setErrorHandler((error, request, reply) => sendFault(request, reply, error, 'image'));
    app.addHook('preHandler', async (request) => {
      if (request.routeOptions.config.public) return;
      await authenticate(deps, request);
    });

    const versions = (base: string) => ({
      versions: [
        {
          id: 'v2.9',
          status: 'CURRENT',
          links: [{ rel: 'self', href: `${base}/image/v2/` }],
        },
      ],
    });
    app.get(
      '/',
      { config: { public: true }, schema: { response: { 300: Versions } } },
      async (request, reply) => {
        reply.code(300);
        return versions(baseUrl(deps.config, request));
      },
    );
    app.get(
      '/versions',
      { config: { public: true }, schema: { response: { 200: Versions } } },
      async (request) => versions(baseUrl(deps.config, request)),
    );

    app.get(
      '/v2/images',
      {
        schema: {
          querystring: ListQuery,
          response: {
            200: Loose({ images: Type.Array(ImageBody), first: Type.String(), schema: Type.String() }),
          },
        },
      },
      async (request) => {
        const q = request.query;
        const matching = deps.config.images.filter(
          (i) =>
            (q.name === undefined || i.name === q.name) &&
            (q.id === undefined || i.id === q.id) &&
            (q.status === undefined || q.status === 'active') &&
            (q.visibility === undefined || q.visibility === 'public' || q.visibility === 'all'),
        );
        const { page, next, markerFound } = paginate(matching, q.limit, q.marker);
        if (!markerFound) throw new NotFoundError('Image', q.marker as string);
        return {
          images: page.map(imageView),
          first: '/v2/images',
          schema: '/v2/schemas/images',
          ...(next ? { next: `/v2/images?marker=${encodeURIComponent(next)}&limit=${q.limit}` } : {}),
        };
      },
    );

    app.get(
      '/v2/images/:image_id',
      {
        schema: {
          params: Type.Object({ image_id: Type.String({ minLength: 1, maxLength: 255 }) }),
          response: { 200: ImageBody },
        },
      },
      async (request) => {
        const image = deps.config.images.find((i) => i.id === request.params.image_id);
        if (!image) throw new NotFoundError('Image', request.params.image_id);
        return imageView(image);
      },
    );
  };
}

import { createHash } from 'node:crypto';
import { ForbiddenError, InvalidInputError, RequestContext, type ServiceRecord } from '@stratus/core';
import type { TSchema } from 'typebox';
import Type from 'typebox';
import type { ApiDeps } from '../deps.js';

/** `{ href, rel }` links of OpenStack bodies. */
export const Link = Type.Object({
  href: Type.String(),
  rel: Type.String(),
  type: Type.Optional(Type.String()),
});

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Any JSON object (responses whose shape is checked by a field subset). */
export const Loose = <T extends Record<string, TSchema>>(properties: T) =>
  Type.Object(properties, { additionalProperties: true });

/** An entry of a version document (`GET /volume/v3/`, `GET /v2.1`); media types and the rest pass. */
export const VersionBody = Loose({
  id: Type.String(),
  status: Type.String(),
  version: Type.String(),
  min_version: Type.String(),
  updated: Type.String(),
  links: Type.Array(Link),
});

/** Keystone's timestamps: `2019-11-09T13:21:08.000000Z` (microseconds, Z). */
export function keystoneTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Cinder's timestamps: `2018-11-29T06:50:07.770000` (microseconds, no zone; UTC). */
export function cinderTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000');
}

/** Nova's timestamps: `2013-09-03T04:01:32Z` (seconds, Z). */
export function novaTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A stable 32-hex id derived from a name (catalog services and endpoints, role ids). */
export function stableId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);
}

/** `?all_tenants=1|true|True|yes` as the OpenStack services read it. */
export function truthy(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  return ['1', 'true', 't', 'yes', 'y', 'on', ''].includes(String(value).toLowerCase());
}

/** Empty query schema that tolerates unknown keys, as the upstream list APIs do at these versions. */
export const AnyQuery = Type.Record(Type.String(), Type.Unknown());

/** A page of `items` after `marker` (an id), at most `limit` long; `next` is the last id when more follow. */
export function paginate<T extends { id: string }>(
  items: readonly T[],
  limit: number | undefined,
  marker: string | undefined,
): { page: T[]; next: string | undefined; markerFound: boolean } {
  let start = 0;
  let markerFound = true;
  if (marker !== undefined) {
    const at = items.findIndex((i) => i.id === marker);
    markerFound = at >= 0;
    start = at + 1;
  }
  const end = limit === undefined ? items.length : start + limit;
  const page = items.slice(start, end);
  const next = limit !== undefined && end < items.length ? page[page.length - 1]?.id : undefined;
  return { page, next, markerFound };
}

/** Every item of a listing the managers serve in pages: each page starts after the last id of the one before. */
export async function fetchAllPages<T extends { id: string }>(
  fetchPage: (page: { limit: number; marker?: string }) => Promise<readonly T[]>,
  pageSize: number,
): Promise<T[]> {
  const all: T[] = [];
  for (let marker: string | undefined; ; ) {
    const chunk = await fetchPage({ limit: pageSize, ...(marker ? { marker } : {}) });
    all.push(...chunk);
    if (chunk.length < pageSize) break;
    marker = chunk[chunk.length - 1]?.id;
  }
  return all;
}

/**
 * Which projects a listing shows: the caller's own; with `all_tenants` (admins only) every project,
 * or only `project` when the query names one.
 */
export function listedProjects(
  ctx: RequestContext,
  allTenants: string | undefined,
  project: string | undefined,
): (projectId: string | null) => boolean {
  const everyProject = ctx.isAdmin && truthy(allTenants);
  return (projectId) =>
    everyProject ? project === undefined || projectId === project : projectId === ctx.projectId;
}

/** A context that sees exactly one project's resources (usage counts of that project). */
export function projectScopedContext(ctx: RequestContext, projectId: string): RequestContext {
  return new RequestContext({
    requestId: ctx.requestId,
    userId: ctx.userId,
    projectId,
    roles: [],
    isAdmin: false,
  });
}

/** The `self` and `bookmark` links of a resource at `{root}/{collection}/{id}`. */
export function resourceLinks(root: string, bookmark: string, collection: string, id: string) {
  return [
    { href: `${root}/${collection}/${id}`, rel: 'self' },
    { href: `${bookmark}/${collection}/${id}`, rel: 'bookmark' },
  ];
}

/** A resource as the lists without details show it: its id, its name and its links. */
export function summaryView<T extends { id: string; name: string | null }>(
  item: T,
  root: string,
  bookmark: string,
  collection: string,
): { id: string; name: T['name']; links: ReturnType<typeof resourceLinks> } {
  return { id: item.id, name: item.name, links: resourceLinks(root, bookmark, collection, item.id) };
}

/** `{name}_links` with the link to the page after `next` (same `limit`); nothing on the last page. */
export function nextPageLinks(
  name: string,
  url: string,
  limit: number | undefined,
  next: string | undefined,
) {
  return next === undefined
    ? {}
    : {
        [`${name}_links`]: [
          {
            rel: 'next',
            href: `${url}?${new URLSearchParams({
              ...(limit !== undefined ? { limit: String(limit) } : {}),
              marker: next,
            })}`,
          },
        ],
      };
}

/** The one action a `POST .../action` body names (`{"os-stop": null}`); 400 when it names several. */
export function soleAction(body: Record<string, unknown>): string {
  const names = Object.keys(body);
  if (names.length !== 1) {
    throw new InvalidInputError('Malformed request body', [
      { path: '/', message: `name exactly one action, got ${names.join(', ')}` },
    ]);
  }
  return names[0] as string;
}

/** A registry record in the shape of Cinder's and Nova's `os-services`. */
export function serviceView(record: ServiceRecord) {
  return {
    id: record.id,
    binary: record.binary,
    host: record.host,
    zone: record.availabilityZone,
    status: record.disabled ? ('disabled' as const) : ('enabled' as const),
    state: record.up ? ('up' as const) : ('down' as const),
    updated_at: cinderTime(record.updatedAt),
    disabled_reason: record.disabledReason,
  };
}

/** `os-services`: the services of `topic` (disabled ones too), by `host` and `binary`; admins only. */
export async function servicesOfTopic(
  deps: ApiDeps,
  ctx: RequestContext,
  topic: string,
  query: { host?: string | undefined; binary?: string | undefined },
  policy: string,
) {
  if (!ctx.isAdmin) throw new ForbiddenError(`Policy doesn't allow ${policy} to be performed.`);
  const records = await deps.registry.list({ topic, includeDisabled: true });
  return {
    services: records
      .filter(
        (s) =>
          (query.host === undefined || s.host === query.host) &&
          (query.binary === undefined || s.binary === query.binary),
      )
      .map(serviceView),
  };
}

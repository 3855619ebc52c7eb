import { createHash } from 'node:crypto';
import type { TSchema } from 'typebox';
import Type from 'typebox';

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

import Type, { type Static } from 'typebox';

/**
 * The operator's settings for this driver (`services.<name>.driver.config`). Every `description`
 * is documentation: keep `additionalProperties: false` so a typo is reported, not ignored.
 */
export const __Backend__DriverConfig = Type.Object(
  {
    // TODO: replace with your backend's settings (pool name, API endpoint, credentials file...).
    capacityGiB: Type.Integer({
      minimum: 1,
      default: 100,
      description: 'Capacity of the backend, in GiB (the in-memory skeleton pretends to have this much).',
    }),
    backendName: Type.String({
      minLength: 1,
      default: '__backend__',
      description: 'Backend name reported in volume stats (for placement).',
    }),
  },
  { additionalProperties: false },
);
export type __Backend__DriverConfig = Static<typeof __Backend__DriverConfig>;

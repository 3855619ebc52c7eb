import Type, { type Static } from 'typebox';

/** Config of the file-backed volume driver. Every field has a default, so `{}` is a valid config. */
export const FilesDriverConfig = Type.Object(
  {
    directory: Type.String({
      minLength: 1,
      default: 'volumes',
      description:
        "Folder holding the images (volumes/<name>.img, snapshots/<volume>/<name>.img); relative to the deployment's dataDir.",
    }),
    capacityGiB: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          "Space this backend may use, like a directory quota. Default: the size of the filesystem holding 'directory'.",
      }),
    ),
    maxOverSubscriptionRatio: Type.Number({
      minimum: 1,
      default: 1,
      description:
        'Images are sparse: how far the sum of their sizes may exceed capacity (1 = never promise more than there is).',
    }),
    backendName: Type.String({
      minLength: 1,
      default: 'files',
      description: 'Backend name reported in volume stats (for placement).',
    }),
  },
  { additionalProperties: false },
);
export type FilesDriverConfig = Static<typeof FilesDriverConfig>;

import Type, { type Static } from 'typebox';

/** A project users can be scoped to (Keystone's project, in the single `Default` domain). */
export const ProjectEntry = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[^/\\s][^/]*$' }),
    id: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]{1,64}$',
        description: 'Fixed id; a random 32-hex id is generated when absent',
      }),
    ),
    description: Type.Optional(Type.String({ maxLength: 255 })),
  },
  { additionalProperties: false },
);
export type ProjectEntry = Static<typeof ProjectEntry>;

/** A user created at start when missing. Passwords are never written in config, only their hash. */
export const UserEntry = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 255 }),
    id: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })),
    passwordHash: Type.String({
      pattern: '^scrypt\\$',
      description: 'From `stratus user hash-password` / hashPassword(): scrypt$N$r$p$salt$hash',
    }),
    /** Default project (name); created when missing. */
    project: Type.String({ minLength: 1, maxLength: 64 }),
    /** Roles on `project`, e.g. ["member"] or ["admin"]. */
    roles: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,63}$' }), { default: ['member'] }),
  },
  { additionalProperties: false },
);
export type UserEntry = Static<typeof UserEntry>;

/** A Nova flavor. */
export const FlavorEntry = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z0-9._-]{1,255}$' }),
    name: Type.String({ minLength: 1, maxLength: 255 }),
    vcpus: Type.Integer({ minimum: 1 }),
    ramMiB: Type.Integer({ minimum: 1 }),
    diskGiB: Type.Integer({ minimum: 0 }),
    ephemeralGiB: Type.Integer({ minimum: 0, default: 0 }),
    swapMiB: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
);
export type FlavorEntry = Static<typeof FlavorEntry>;

/** A Glance image, as listed by Image v2 (nothing is stored or served: it names what drivers boot). */
export const ImageEntry = Type.Object(
  {
    id: Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' }),
    name: Type.String({ minLength: 1, maxLength: 255 }),
    sizeBytes: Type.Integer({ minimum: 0, default: 0 }),
    diskFormat: Type.String({ default: 'qcow2' }),
    containerFormat: Type.String({ default: 'bare' }),
    minDiskGiB: Type.Integer({ minimum: 0, default: 0 }),
    minRamMiB: Type.Integer({ minimum: 0, default: 0 }),
    checksum: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$' })),
    createdAt: Type.String({ default: '2024-01-01T00:00:00Z' }),
  },
  { additionalProperties: false },
);
export type ImageEntry = Static<typeof ImageEntry>;

/** Per-project limits, applied to every project. */
export const ApiQuotas = Type.Object(
  {
    volumes: Type.Integer({ minimum: 0, default: 10 }),
    gigabytes: Type.Integer({ minimum: 0, default: 1000 }),
    snapshots: Type.Integer({ minimum: 0, default: 10 }),
    instances: Type.Integer({ minimum: 0, default: 10 }),
    cores: Type.Integer({ minimum: 0, default: 20 }),
    ram: Type.Integer({ minimum: 0, default: 51200, description: 'MiB' }),
  },
  { additionalProperties: false, default: {} },
);
export type ApiQuotas = Static<typeof ApiQuotas>;

export const DEFAULT_FLAVORS: readonly FlavorEntry[] = [
  { id: '1', name: 'm1.tiny', vcpus: 1, ramMiB: 512, diskGiB: 1, ephemeralGiB: 0, swapMiB: 0 },
  { id: '2', name: 'm1.small', vcpus: 1, ramMiB: 2048, diskGiB: 20, ephemeralGiB: 0, swapMiB: 0 },
  { id: '3', name: 'm1.medium', vcpus: 2, ramMiB: 4096, diskGiB: 40, ephemeralGiB: 0, swapMiB: 0 },
  { id: '4', name: 'm1.large', vcpus: 4, ramMiB: 8192, diskGiB: 80, ephemeralGiB: 0, swapMiB: 0 },
  { id: '5', name: 'm1.xlarge', vcpus: 8, ramMiB: 16384, diskGiB: 160, ephemeralGiB: 0, swapMiB: 0 },
];

/** The id of the default `cirros` image; fixed so configs and tests can name it. */
export const CIRROS_IMAGE_ID = '6b2b6f1e-3c55-4a8e-9a35-2a3b4c5d6e7f';

export const DEFAULT_IMAGES: readonly ImageEntry[] = [
  {
    id: CIRROS_IMAGE_ID,
    name: 'cirros',
    sizeBytes: 21430272,
    diskFormat: 'qcow2',
    containerFormat: 'bare',
    minDiskGiB: 0,
    minRamMiB: 0,
    createdAt: '2024-01-01T00:00:00Z',
  },
];

/** `services.api.manager.config` of `@stratus/api`. */
export const ApiConfig = Type.Object(
  {
    listen: Type.Object(
      {
        host: Type.String({ default: '127.0.0.1', description: 'Address to listen on' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8776, description: '0 picks a free port' }),
      },
      { additionalProperties: false, default: {} },
    ),
    publicUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description:
          'Base URL clients reach this API at (catalog endpoints); default: from the request Host header',
      }),
    ),
    region: Type.String({ default: 'RegionOne', description: 'Region of every catalog endpoint' }),
    tokenTtlSec: Type.Integer({ minimum: 60, default: 3600, description: 'Token lifetime' }),
    bodyLimitBytes: Type.Integer({ minimum: 1024, default: 1048576, description: 'Largest request body' }),
    maxVolumeSizeGiB: Type.Integer({ minimum: 1, default: 1000 }),
    projects: Type.Array(ProjectEntry, { default: [] }),
    users: Type.Array(UserEntry, { default: [] }),
    flavors: Type.Array(FlavorEntry, { default: DEFAULT_FLAVORS.map((f) => ({ ...f })) }),
    images: Type.Array(ImageEntry, { default: DEFAULT_IMAGES.map((i) => ({ ...i })) }),
    quotas: ApiQuotas,
    volumeTopic: Type.String({ default: 'volume', pattern: '^[a-z][a-z0-9_-]*$' }),
    computeTopic: Type.String({ default: 'compute', pattern: '^[a-z][a-z0-9_-]*$' }),
  },
  { additionalProperties: false },
);
export type ApiConfig = Static<typeof ApiConfig>;

import Type, { type Static } from 'typebox';
import { RpcSigningConfig } from '../rpc/signing.js';

/** A plugin named in config: its spec (package name, `pkg#export` or path) and its own config section. */
export const PluginRef = Type.Object(
  {
    plugin: Type.String({
      minLength: 1,
      description:
        'Package name (e.g. "@stratus/driver-lvm"), "package#export", or a path relative to the config file',
    }),
    config: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "The plugin's own settings; see its README",
      }),
    ),
  },
  { additionalProperties: false },
);
export type PluginRef = Static<typeof PluginRef>;

/** One service this deployment can run: a manager, and the driver that manager loads. */
export const ServiceConfig = Type.Object(
  {
    manager: PluginRef,
    driver: Type.Optional(PluginRef),
    topic: Type.Optional(
      Type.String({
        pattern: '^[a-z][a-z0-9_-]*$',
        description: "RPC topic; defaults to the service's name",
      }),
    ),
    enabled: Type.Optional(
      Type.Boolean({ description: 'Started by `stratus up` and the Launcher unless false (default true)' }),
    ),
  },
  { additionalProperties: false },
);
export type ServiceConfig = Static<typeof ServiceConfig>;

export const LogLevelSchema = Type.Union(
  [
    Type.Literal('fatal'),
    Type.Literal('error'),
    Type.Literal('warn'),
    Type.Literal('info'),
    Type.Literal('debug'),
    Type.Literal('trace'),
    Type.Literal('silent'),
  ],
  { default: 'info', description: 'Log level (changes live on SIGHUP)' },
);

/** The configuration of one Stratus deployment, as read from stratus.config.json/.yaml. */
export const StratusConfig = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    host: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,253}$',
        description:
          "This host's name in the service registry and its direct RPC queues; defaults to the OS hostname",
      }),
    ),
    dataDir: Type.String({
      default: '.stratus',
      description: 'Folder for local state (the embedded SQLite database); relative to the config file',
    }),
    database: Type.Object(
      {
        url: Type.Optional(
          Type.String({
            pattern: '^(sqlite:|postgres://|postgresql://)',
            description:
              'sqlite:<path>, sqlite::memory: or postgres://user@host:5432/db; default sqlite:<dataDir>/stratus.db',
          }),
        ),
        sqliteSynchronous: Type.Optional(
          Type.Union([Type.Literal('normal'), Type.Literal('full')], {
            default: 'normal',
            description:
              'SQLite commit durability (WAL). normal: no commit is lost to a process crash, an OS crash or power loss may drop the last ones; full: an fsync per commit survives power loss too, at a few hundred commits/s on ordinary disks. Ignored for PostgreSQL',
          }),
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    transport: Type.Object(
      {
        plugin: Type.String({
          default: '@stratus/core#memoryTransportPlugin',
          description: 'Transport plugin; the default is the in-process MemoryTransport',
        }),
        config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      },
      { additionalProperties: false, default: {} },
    ),
    log: Type.Object({ level: LogLevelSchema }, { additionalProperties: false, default: {} }),
    reportInterval: Type.Number({ minimum: 0.01, default: 10, description: 'Seconds between heartbeats' }),
    serviceDownTime: Type.Number({
      minimum: 0.01,
      default: 60,
      description: 'Seconds without a heartbeat after which a service counts as down',
    }),
    periodicInterval: Type.Number({
      minimum: 0.01,
      default: 60,
      description: 'Default spacing, in seconds, of periodic tasks that set none',
    }),
    gracefulShutdownTimeout: Type.Number({
      minimum: 0,
      default: 30,
      description: 'Seconds stop() waits for in-flight requests',
    }),
    rpcResponseTimeout: Type.Number({
      minimum: 0.01,
      default: 60,
      description: 'Seconds an RPC call waits for its reply',
    }),
    maxConcurrency: Type.Integer({
      minimum: 1,
      default: 64,
      description: 'RPC handlers a service runs at once; the rest wait in the queue',
    }),
    rootHelper: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description:
        'argv prefix for commands drivers run as root, e.g. ["sudo", "-n"]; empty when already root',
    }),
    rpcSigning: Type.Optional(RpcSigningConfig),
    services: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]*$' }), ServiceConfig, {
      default: {},
      description: 'Services by name (volume, compute, ...)',
    }),
  },
  { additionalProperties: false },
);
export type StratusConfig = Static<typeof StratusConfig>;

import {
  type Logger,
  openDatabase,
  RequestContext,
  RpcClient,
  type Store,
  silentLogger,
} from '@stratus/core';
import { ComputeApi } from '@stratus/manager-compute/client';
import { VolumeApi } from '@stratus/manager-volume/client';
import { AmqpTransport, type AmqpTransportConfigInput } from '@stratus/transport-amqp';

/** A client of a deployment (what the API process holds): the shared store, its own AMQP connection, the typed APIs. */
export interface DeploymentClient {
  readonly store: Store;
  readonly transport: AmqpTransport;
  readonly rpc: RpcClient;
  readonly volumes: VolumeApi;
  readonly compute: ComputeApi;
  close(): Promise<void>;
}

export interface ClientOptions {
  readonly databaseUrl: string;
  readonly transportConfig: AmqpTransportConfigInput;
  readonly logger?: Logger;
  /** Seconds a call waits for its reply; default 20. */
  readonly callTimeoutSec?: number;
}

/** The project every request of the deployment test runs in. */
export function demoContext(): RequestContext {
  return new RequestContext({ userId: 'deploy-user', projectId: 'deploy-project', roles: ['member'] });
}

/**
 * Connect to a running deployment. The services must have started first: they migrate the store,
 * the client does not.
 */
export async function connectClient(options: ClientOptions): Promise<DeploymentClient> {
  const logger = options.logger ?? silentLogger();
  const store = await openDatabase(options.databaseUrl, { logger });
  const transport = new AmqpTransport(options.transportConfig, {
    logger,
    connectionName: `stratus:deploy-client:${process.pid}`,
  });
  try {
    await transport.connect();
  } catch (error) {
    await store.close();
    throw error;
  }
  const callTimeoutMs = (options.callTimeoutSec ?? 20) * 1000;
  const rpc = new RpcClient(transport, { defaultTimeoutMs: callTimeoutMs, logger });
  // Quotas well above what a run creates: the fault cases create many volumes, some ending in error.
  const volumes = new VolumeApi({
    store,
    rpc,
    callTimeoutMs,
    quotas: { volumes: 10_000, gigabytes: 100_000, snapshots: 1000 },
  });
  const compute = new ComputeApi({ store, rpc, callTimeoutMs, volumeApi: volumes });
  return {
    store,
    transport,
    rpc,
    volumes,
    compute,
    close: async () => {
      await transport.close().catch(() => {});
      await store.close().catch(() => {});
    },
  };
}
